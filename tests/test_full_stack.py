"""The compose topology, run natively: PostgreSQL, an S3 server, an MLflow server and two engine workers.

Docker cannot run here, so each compose service gets its closest native stand-in: the PostgreSQL server the
project already uses (one fresh database for MLflow's backend store, one for the lab's state), moto's S3 server
for MinIO, `mlflow server` started with compose's own flags, and two `python -m engine worker` processes that
share the lab database (scale-out). The test drives one run from commit to promotion through them and checks
that every piece of state ended up where compose puts it: the model in the bucket, the registry and its aliases
in MLflow's PostgreSQL, the pipeline in the lab's PostgreSQL. The workers get no S3 settings at all: artifacts
travel through the MLflow server, as in compose.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import HEARTBEAT, STALE, TICK, free_port, fresh_pg_database, kill_group, wait_serving, wait_until

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "mlflow"
S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
# Settings that would let a process reach S3 (or another MLflow) by itself; scrubbed from every child's env.
SCRUB_PREFIXES = ("AWS_", "MLFLOW_", "DATABASE_URL", "LAB_")

pytestmark = [pytest.mark.postgres, pytest.mark.timeout(300)]


def _clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUB_PREFIXES)}
    return {**env, "PYTHONPATH": str(ROOT), **extra}


def _tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _compose_mlflow() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]["mlflow"]


def _compose_mlflow_env() -> dict:
    """The MLflow server's environment in compose, minus S3 settings (the test points those at moto)."""
    return {k: str(v) for k, v in _compose_mlflow()["environment"].items()
            if not k.startswith("AWS_") and k != "MLFLOW_S3_ENDPOINT_URL"}


def _compose_mlflow_args() -> list[str]:
    """The MLflow server flags compose uses, minus the ones only the container network decides."""
    command = _compose_mlflow()["command"]
    assert command[:2] == ["mlflow", "server"], command
    args, out, i = command[2:], [], 0
    while i < len(args):
        flag = args[i]
        takes_value = i + 1 < len(args) and not args[i + 1].startswith("--")
        if flag not in ("--host", "--port", "--workers", "--backend-store-uri"):
            out += args[i:i + 2] if takes_value else [flag]
        i += 2 if takes_value else 1
    return out


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on a free loopback port, with the artifact bucket created (MinIO + minio-init)."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEYS["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=S3_KEYS["AWS_SECRET_ACCESS_KEY"],
                              region_name=S3_KEYS["AWS_DEFAULT_REGION"])
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mlflow_db(pg_server):
    """A fresh PostgreSQL database for MLflow's backend store (compose: the `mlflow` database)."""
    with fresh_pg_database(pg_server) as url:
        yield url


@pytest.fixture(scope="module")
def mlflow_server(s3, mlflow_db, tmp_path_factory):
    """`mlflow server` with compose's flags: PostgreSQL backend, artifacts proxied to s3://mlflow."""
    endpoint, _ = s3
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", mlflow_db, *_compose_mlflow_args()]
    workdir = tmp_path_factory.mktemp("mlflow-server")
    log = workdir / "mlflow-server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                env=_clean_env(**_compose_mlflow_env(), MLFLOW_S3_ENDPOINT_URL=endpoint, **S3_KEYS))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_serving(f"{url}/health", proc, log)  # the first start migrates the backend store
        yield url, port, log
    finally:
        kill_group(proc, signal.SIGTERM)


@pytest.fixture
def lab_env(pg_url, mlflow_server, tmp_path) -> dict:
    """The engine's environment in compose's app/worker, with native addresses."""
    url, _, _ = mlflow_server
    return {"DATABASE_URL": pg_url, "MLFLOW_TRACKING_URI": url, "LAB_DATA_DIR": str(tmp_path / "data"),
            "LAB_TICK_SECONDS": str(TICK), "LAB_HEARTBEAT_SECONDS": str(HEARTBEAT), "LAB_STALE_SECONDS": str(STALE),
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}


@pytest.fixture
def workers(lab_env, tmp_path):
    """Two `python -m engine worker` processes on the same, still empty, lab database (compose: --scale worker=2).

    They start together, as compose starts app and workers, so both create the schema at once.
    """
    procs = []
    try:
        for n in (1, 2):
            log = tmp_path / f"worker-{n}.log"
            with log.open("wb") as out:
                procs.append((subprocess.Popen([sys.executable, "-m", "engine", "worker"], cwd=ROOT, stdout=out,
                                               stderr=subprocess.STDOUT, start_new_session=True,
                                               env=_clean_env(**lab_env)), log))
        yield procs
    finally:
        for proc, _ in procs:
            kill_group(proc, signal.SIGTERM, timeout=60)  # SIGTERM: the worker lets a running step finish, then exits


def _wait_rest(lab, run_id: int, workers, timeout: float = 300) -> str:
    from engine.states import RESTING, RunStatus

    def rested():
        for proc, log in workers:
            if proc.poll() is not None:
                pytest.fail(f"worker {proc.pid} exited with {proc.returncode}:\n{_tail(log)}")
        status = lab.store.get_run(run_id).status
        return status if RunStatus(status) in RESTING else None
    return wait_until(rested, timeout=timeout, interval=0.25, what=f"run {run_id} to rest")


def _describe(lab, run_id: int) -> str:
    run = lab.run(run_id)
    lines = [f"run {run_id}: {run.status}"]
    for s in run.steps:
        lines.append(f"  {s.name}: {s.status} attempt={s.attempt} worker={s.worker} "
                     f"error={(s.error or '')[:400]}")
    errors = [r["message"] for r in lab.logs(run_id) if r["level"] in ("ERROR", "DEBUG")]
    return "\n".join(lines + errors[-30:])


def _expect(lab, run_id: int, workers, want: str) -> None:
    got = _wait_rest(lab, run_id, workers)
    assert got == want, f"expected {want}, got {got}\n{_describe(lab, run_id)}"


def test_commit_to_promotion_through_postgres_s3_and_an_mlflow_server(s3, mlflow_server, mlflow_db, pg_url,
                                                                      lab_env, workers):
    from engine.config import CHAMPION, MODEL_NAME, Settings
    from engine.lab import Lab
    from engine.ml.claims import APPROVED, DENIED, FEATURES, generate_claims
    from engine.tracking import Tracking

    _, bucket = s3
    url, _, _ = mlflow_server
    lab = Lab(Settings.from_env(lab_env))  # drives actions only: its runner is never started
    try:
        run_id = lab.commit(message="full stack", seed=7, author="tester")
        _expect(lab, run_id, workers, "ci_complete")
        lab.continue_run(run_id, by="tester")
        _expect(lab, run_id, workers, "awaiting_approval")
        lab.approve(run_id, by="tester", comment="full-stack test")
        _expect(lab, run_id, workers, "promoted")

        # Every step ran exactly once, on one of the two worker processes (never on this test process).
        steps = lab.run(run_id).steps
        assert {s.status for s in steps} == {"succeeded"}, _describe(lab, run_id)
        assert all(s.attempt == 1 for s in steps), _describe(lab, run_id)
        pids = {str(proc.pid) for proc, _ in workers}
        assert {s.worker.split(":")[1] for s in steps} <= pids, [s.worker for s in steps]

        # The serving path: the champion alias resolves through the server and the model loads from S3.
        tracking = Tracking(url)
        assert tracking.alias_version(CHAMPION) == 1
        assert tracking.alias_version("staging") == 1 and tracking.alias_version("challenger") == 1
        claim = generate_claims(1, seed=11).iloc[0]
        decision = lab.score({f: (v.item() if hasattr(v, "item") else v) for f, v in claim[list(FEATURES)].items()})
        assert decision["version"] == 1 and decision["decision"] in (APPROVED, DENIED), decision
        tags = tracking.client.get_model_version(MODEL_NAME, "1").tags
        assert tags["approval"] == "approved" and tags["approval_by"] == "tester", tags
    finally:
        lab.close()

    # Artifacts are in the bucket (compose: MinIO), written by the server, not by the workers.
    keys = [o["Key"] for page in bucket.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            for o in page.get("Contents", [])]
    assert any(k.endswith("/MLmodel") for k in keys), keys[:50]
    assert any(k.endswith("shap/beeswarm.png") for k in keys), keys[:50]

    # MLflow's backend store is PostgreSQL: the alias row is there.
    mlflow_pg = sa.create_engine(mlflow_db)
    with mlflow_pg.connect() as c:
        aliases = dict(c.execute(sa.text("SELECT alias, version FROM registered_model_aliases WHERE name = :n"),
                                 {"n": MODEL_NAME}).all())
    mlflow_pg.dispose()
    assert aliases == {"challenger": 1, "staging": 1, "champion": 1}, aliases

    # The lab's state is in its own PostgreSQL database.
    lab_pg = sa.create_engine(pg_url)
    with lab_pg.connect() as c:
        assert c.execute(sa.text("SELECT status FROM runs WHERE id = :i"), {"i": run_id}).scalar() == "promoted"
        assert c.execute(sa.text("SELECT count(*) FROM steps WHERE run_id = :i AND status = 'succeeded'"),
                         {"i": run_id}).scalar() == len(steps)
        champion = c.execute(sa.text("SELECT version FROM alias_history WHERE alias = 'champion' "
                                     "AND until IS NULL")).scalar()
        approvals = c.execute(sa.text("SELECT actor FROM audit WHERE action = 'approve' AND run_id = :i"),
                              {"i": run_id}).scalars().all()
    lab_pg.dispose()
    assert champion == 1 and approvals == ["tester"]


def test_server_accepts_the_in_network_host_name(mlflow_server):
    """compose's app calls http://mlflow:5000; with compose's --allowed-hosts the server answers that Host."""
    url, port, _ = mlflow_server
    for host in ("mlflow:5000", f"localhost:{port}"):
        req = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1", headers={"Host": host})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200, host
    req = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search?max_results=1",
                                 headers={"Host": "evil.example:5000"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403
