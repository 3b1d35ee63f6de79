"""Shared test setup, the one place for it: settings and environment, databases, polling, processes, and the
lifecycle stores that many tests read.

Liveness: every test lab heartbeats every HEARTBEAT s and treats a step as dead only after STALE s without a
heartbeat. No loaded machine starves a heartbeat thread for ten minutes, so a live worker is never reaped by
mistake. A test of reaping makes a step stale on purpose (its worker is killed and a reaper with a short window
looks once no live worker is left, or the test writes an old heartbeat: a clock it controls).

Databases: SQLite files live in tmp_path; PostgreSQL tests create their own database (`fresh_pg_database`, also
from a template) and drop it afterwards. When LAB_REQUIRE_POSTGRES=1 (CI sets it) a missing server fails those
tests instead of skipping them.

Lifecycle stores: a whole lifecycle costs a minute, so it is built once per session and never changed; a test
that changes state works on its own copy (`copy_store`).
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa

from engine.records import Run, Step

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("LAB_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
TICK, HEARTBEAT, STALE = 0.2, 0.5, 600.0


# ---- settings and environment ---------------------------------------------------------------------------------
def make_settings(data_dir: Path, db_url: str | None = None, mlflow_template: Path | None = None, **overrides):
    """Settings of a test lab in `data_dir` (state in `db_url`, default SQLite there; MLflow SQLite there)."""
    from engine.config import Settings
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    if mlflow_template is not None and not (data_dir / "mlflow.db").exists():
        shutil.copy(mlflow_template, data_dir / "mlflow.db")
    values = dict(data_dir=data_dir, database_url=db_url or f"sqlite:///{data_dir / 'lab.db'}",
                  tracking_uri=f"sqlite:///{data_dir / 'mlflow.db'}",
                  artifact_root=(data_dir / "mlartifacts").as_uri(), tick_seconds=TICK, heartbeat_seconds=HEARTBEAT,
                  stale_seconds=STALE)
    return Settings.from_env({}, **{**values, **overrides})


def lab_env(settings) -> dict[str, str]:
    """The environment variables that make a Lab built from the environment (app, CLI, worker) use `settings`."""
    return {"LAB_DATA_DIR": str(settings.data_dir), "DATABASE_URL": settings.database_url,
            "MLFLOW_TRACKING_URI": settings.tracking_uri, "MLFLOW_ARTIFACT_ROOT": settings.artifact_root,
            "LAB_TICK_SECONDS": str(settings.tick_seconds), "LAB_HEARTBEAT_SECONDS": str(settings.heartbeat_seconds),
            "LAB_STALE_SECONDS": str(settings.stale_seconds)}


def cli_env(settings) -> dict:
    """Environment that points `python -m engine` subprocesses at `settings`."""
    return {**os.environ, **lab_env(settings), "PYTHONPATH": str(ROOT)}


# ---- polling ----------------------------------------------------------------------------------------------------
# ---- records without a store -----------------------------------------------------------------------------------
def make_step(name: str = "commit_received", status: str = "pending", **fields) -> Step:
    """A step record as the store returns one, for tests that draw or judge a step without a store."""
    from engine import pipeline
    row = dict(id=pipeline.NAMES.index(name) + 1, run_id=1, name=name, position=pipeline.NAMES.index(name),
               stage=pipeline.spec(name).stage, status=status, attempt=0, queued_at=None, started_at=None,
               finished_at=None, heartbeat_at=None, worker=None, outputs=None, error=None)
    return Step.from_row({**row, **fields})


def make_run(status: str = "queued", steps=None, **fields) -> Run:
    """A run record as Lab.run returns one (with `steps` when given), for tests without a store."""
    row = dict(id=1, sha="abcdef1234", message="", author="", seed=0, dataset_window="2026-01-01..2026-01-31",
               failure_modes=[], status=status, created_at=0.0, updated_at=0.0, finished_at=None)
    run = Run.from_row({**row, **fields})
    return run if steps is None else dataclasses.replace(run, steps=tuple(steps))


def wait_until(predicate, timeout: float = 300, interval: float = 0.1, what: str = "condition"):
    """Poll `predicate` until it returns something truthy (returned); AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {value!r})")
        time.sleep(interval)


# ---- PostgreSQL ---------------------------------------------------------------------------------------------------
def _pg_available() -> str | None:
    try:
        eng = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return None
    except Exception as exc:  # the reason is reported by the skip/fail below
        return str(exc).splitlines()[0]


@contextmanager
def fresh_pg_database(admin_url: str, template: str | None = None):
    """A URL of a new PostgreSQL database (empty, or a copy of database `template`), dropped on exit."""
    name = f"lab_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_server():
    """The admin URL of a reachable PostgreSQL server (skip or fail otherwise)."""
    reason = _pg_available()
    if reason:
        msg = f"PostgreSQL not reachable at {PG_ADMIN_URL}: {reason}"
        if os.environ.get("LAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(msg + " (LAB_REQUIRE_POSTGRES=1 makes PostgreSQL tests mandatory)")
        pytest.skip(msg)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server):
    """A URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_pg_database(pg_server) as url:
        yield url


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh state store URL on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lab.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url):
    """A state store on each backend, disposed of afterwards."""
    from engine.store import Store
    s = Store(db_url)
    yield s
    s.dispose()


# ---- MLflow, settings, labs -------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory) -> Path:
    """An MLflow SQLite store with its schema migrated once; tests copy it (migrating costs ~1.5 s)."""
    from engine.tracking import Tracking
    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    Tracking(f"sqlite:///{path}").client.search_experiments()
    return path


@pytest.fixture
def settings(tmp_path, db_url, mlflow_template):
    """Settings for a lab in tmp_path over `db_url` and a fresh MLflow store."""
    return make_settings(tmp_path, db_url, mlflow_template)


@pytest.fixture
def lab(settings):
    """A Lab over `settings`; its runner is not started (tests drive it)."""
    from engine.lab import Lab
    lab = Lab(settings)
    yield lab
    lab.close()


@contextmanager
def module_store_url(request, tmp_path_factory):
    """A fresh store URL on the backend named by request.param ('sqlite' or 'postgres'), for wider scopes."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'lab.db'}"
    else:
        with fresh_pg_database(request.getfixturevalue("pg_server")) as url:
            yield url


@contextmanager
def lab_on(request, tmp_path_factory, mlflow_template, **overrides):
    """A Lab (runner not started) on the backend named by request.param, in a data dir of its own; closed, and
    its store dropped, on exit. For module-scoped fixtures that tell a story."""
    from engine.lab import Lab
    with module_store_url(request, tmp_path_factory) as url:
        lab = Lab(make_settings(tmp_path_factory.mktemp(f"lab-{request.param}"), url, mlflow_template, **overrides))
        try:
            yield lab
        finally:
            lab.close()


@pytest.fixture(scope="module", params=BACKENDS)
def mlab(request, tmp_path_factory, mlflow_template):
    """A Lab for one test module on one backend; its runner is not started (the module's fixtures drive it)."""
    with lab_on(request, tmp_path_factory, mlflow_template) as lab:
        yield lab


# ---- lifecycle stores ---------------------------------------------------------------------------------------------
def copy_store(source: Path, dest: Path) -> Path:
    """A private copy of a SQLite lab data dir: its state and MLflow databases (WAL files included).

    MLflow records absolute artifact URIs, so a copy keeps reading (and writing new, uniquely named runs into)
    the source's artifact dir; nothing ever rewrites an artifact there.
    """
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("mlartifacts", "runs"), dirs_exist_ok=True)
    return dest


def store_settings(source: Path, data_dir: Path, **overrides):
    """Settings of a copy of the lifecycle store `source` in `data_dir` (artifacts stay in the source)."""
    return make_settings(data_dir, artifact_root=(source / "mlartifacts").as_uri(), **overrides)


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A dir that `build(dir)` filled once for this whole test run: under pytest-xdist the first worker that needs
    it builds it and the others wait for it and share it (it is read only; tests work on copies)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        data = tmp_path_factory.mktemp(name)
        build(data)
        return data
    root = tmp_path_factory.getbasetemp().parent  # this run's, shared by its workers
    data, done = root / name, root / f"{name}.done"
    with _locked(root / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(data, ignore_errors=True)  # left half-built by a worker that died
            data.mkdir()
            build(data)
            done.touch()
    return data


@pytest.fixture(scope="session")
def played_lifecycle(tmp_path_factory, mlflow_template) -> Path:
    """A data dir where the demo autopilot played the whole lifecycle (runs 1 and 2 promoted as versions 1 and
    2, champion rolled back to 1), then run 3 failed in data_validation under schema_validation. Read only."""
    from engine.autopilot import Autopilot
    from engine.lab import Lab

    def play(data: Path) -> None:
        lab = Lab(make_settings(data, None, mlflow_template)).start()  # the autopilot waits on a worker, as in the app
        try:
            # Without the retrain act the Demo page plays (retrain=True): many tests number their runs from here.
            pilot = Autopilot(lab, seeds=(11, 12), poll=0.1, retrain=False)
            assert pilot.run() == "done", "playing the lifecycle failed"
            lab.set_failure_mode("schema_validation", True, by="seed")
            failed = lab.commit(message="seed: broken export", seed=13, author="seed")
            wait_until(lambda: lab.run(failed).status == "failed", what=f"run {failed} to fail")
            lab.set_failure_mode("schema_validation", False, by="seed")
        finally:
            lab.close()
    return built_once(tmp_path_factory, "played", play)


@pytest.fixture(scope="session")
def awaiting_lifecycle(played_lifecycle, tmp_path_factory) -> Path:
    """The played lifecycle plus run 4 (seed 14) through CI and CD, waiting at the manual gate with version 3.

    Approving it makes a second real promotion after the rollback (champion history 1, 2, rollback to 1, 3), so
    rolling back is possible again. Read only.
    """
    from engine.lab import Lab

    def wait_at_the_gate(data: Path) -> None:
        lab = Lab(store_settings(played_lifecycle, copy_store(played_lifecycle, data)))
        try:
            run_id = lab.commit(message="seed: deeper trees", seed=14, author="seed")
            lab.runner.run_until_idle()
            lab.continue_run(run_id, by="seed")
            lab.runner.run_until_idle()
            run = lab.run(run_id)
            assert (run_id, run.status) == (4, "awaiting_approval"), [(s.name, s.status) for s in run.steps]
        finally:
            lab.close()
    return built_once(tmp_path_factory, "awaiting", wait_at_the_gate)


@pytest.fixture
def lifecycle_copy(tmp_path):
    """Call with a lifecycle store to get Settings of a private copy of it (tick/heartbeat/stale overridable)."""
    def make(source: Path, **overrides):
        data = copy_store(source, tmp_path / f"copy-{uuid.uuid4().hex[:6]}")
        return store_settings(source, data, **overrides)
    return make


# ---- processes ----------------------------------------------------------------------------------------------------
# The CLI, workers and servers run as `python -m MODULE ...` in fresh children of a warm interpreter that imported
# the engine, MLflow, scikit-learn and Streamlit once (engine/warm.py): each its own process and process group, with
# its own environment, argv, stdout, stderr and exit code, without paying 0.5-4 s of imports per process.
# `cold=True` starts a new interpreter instead, to cover what happens before the CLI's own code runs.
_WARM = None  # made on first use, like every import of the engine here


def python_module(module: str, args: list[str], env: dict, output: Path, errors: Path | None = None, cwd: Path = ROOT):
    """Start `python -m MODULE ARGS` in a fresh child of this test process's warm interpreter (like Popen: pid,
    poll(), wait(timeout), returncode, kill()); stdout to `output`, stderr to `errors` (default: `output`)."""
    global _WARM
    from engine import warm
    if _WARM is None:
        _WARM = warm.Warm(("engine.lab", "engine.tracking", "engine.stream", "engine.ml.model", "streamlit.web.cli"))
    return _WARM.run(module, list(args), env, cwd, output, errors)


def engine_cli(env: dict, *args: str, timeout: float = 300, cold: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m engine ARGS` to completion: (args, returncode, stdout, stderr)."""
    if cold:
        return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=timeout)
    with tempfile.TemporaryDirectory(prefix="lab-cli-") as tmp:
        out, err = Path(tmp) / "stdout", Path(tmp) / "stderr"
        run = python_module("engine", list(args), env, out, err)
        try:
            run.wait(timeout)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait(60)
            raise
        return subprocess.CompletedProcess(["python", "-m", "engine", *args], run.returncode,
                                           out.read_text(errors="replace"), err.read_text(errors="replace"))


def start_worker(env: dict, log_path: Path):
    """Start `python -m engine worker` (its own process group, so its step subprocesses die with it), its output
    going to `log_path`."""
    return python_module("engine", ["worker"], env, log_path)


def kill_group(proc, sig: int = signal.SIGKILL, timeout: float = 30) -> None:
    """Send `sig` to a process group we started (a Popen, or a warm.Run from python_module) and reap its leader;
    SIGKILL whatever is left of the group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout)
    # children of the group (a step's pytest) may outlive a leader that exited on SIGTERM: kill the rest
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _live_processes():
    """(pid, parent pid, process group) of every live (non-zombie) process, read from /proc."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] not in ("Z", "X"):
            yield int(stat.parent.name), int(fields[1]), int(fields[2])


def children_of(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (a step's subprocess has its own process group, so it is found by
    parent, not by group)."""
    return [p for p, parent, _ in _live_processes() if parent == pid]


def descendants_of(pid: int) -> list[int]:
    """Live processes below `pid`: its children, their children, and so on."""
    processes = list(_live_processes())
    found, parents = [], {pid}
    while parents:
        parents = {p for p, parent, _ in processes if parent in parents}
        found += sorted(parents)
    return found


def suites_of(worker: subprocess.Popen) -> list[int]:
    """The ci_tests suites a worker process runs right now: children of its warm pytest helper (engine/warm.py)."""
    return [suite for child in children_of(worker.pid) for suite in children_of(child)]


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    return any(p == pid for p, _, _ in _live_processes())


def group_members(pgid: int) -> list[int]:
    """Live processes of process group `pgid`."""
    return [p for p, _, group in _live_processes() if group == pgid]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(env: dict[str, str], log: Path):
    """A dashboard server (`python -m streamlit run app.py`, a warm fork) on a free port over the lab `env` names;
    its own process group, ended with SIGTERM (then SIGKILL) whatever happens. Yields its base URL."""
    proc, url = start_serving(env, log)
    try:
        yield url
    finally:
        kill_group(proc, signal.SIGTERM, timeout=15)


def start_serving(env: dict[str, str], log: Path):
    """Start the dashboard server of serving() and wait for its health check: (process, base URL). The caller
    ends its process group."""
    port = free_port()
    proc = python_module("streamlit", ["run", "app.py", "--server.port", str(port), "--server.address", "127.0.0.1",
                                       "--server.headless", "true"], env, log)
    try:
        wait_serving(f"http://127.0.0.1:{port}/_stcore/health", proc, log)
    except BaseException:
        kill_group(proc, signal.SIGKILL)
        raise
    return proc, f"http://127.0.0.1:{port}/"


def wait_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    """Wait until `url` answers 200; fail at once, with the log's tail, if the server process exits first."""
    def answering() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[:4]} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False
    wait_until(answering, timeout=timeout, interval=0.3, what=f"{url} to answer")
