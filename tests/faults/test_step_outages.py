"""Outages inside a step: its store reads and its registry moves wait out a database that stops or hangs, a hung
server never blocks a pooled connection for ever, a step that fails after registering leaves no orphaned version,
and a busy scheduler does not flood the log.

The database is one of the fault suite's own cluster (tests/faults/conftest.py), stopped (every connection cut) or
hung (SIGSTOP to every server process, so open connections are never answered). Steps run in this process through
the runner's own StepContext, so the test knows exactly when the outage meets the call.
"""
from __future__ import annotations

import logging
import threading

import pytest
import sqlalchemy as sa

from engine.config import MODEL_NAME
from engine.runner import Runner, StepContext
from tests.conftest import make_settings, wait_until
from tests.faults.test_faults import RUN_DEADLINE

OUTAGES = ["stopped", "hung"]


@pytest.fixture
def pg_lab(cluster, tmp_path, mlflow_template):
    from engine.lab import Lab
    settings = make_settings(tmp_path / "lab", cluster.new_database(), mlflow_template, db_connect_timeout=2.0,
                             db_statement_timeout=2.0)
    lab = Lab(settings)
    yield lab
    lab.close()


def outage(cluster, kind: str):
    """Begin an outage of `kind`; return the function that ends it."""
    if kind == "stopped":
        cluster.stop("fast")
        return cluster.start
    pids = cluster.hang()
    return lambda: cluster.unhang(pids)


def context_for(lab, runner: Runner, run_id: int, name: str) -> StepContext:
    """The context the runner would give step `name` of `run_id`."""
    return StepContext(lab.store, lab.settings, lab.store.get_run(run_id), lab.store.step(run_id, name),
                       patiently=runner._patiently)


def through_outage(cluster, kind: str, runner: Runner, call):
    """Start `call` in a thread, end the outage once the runner has met it, and return what `call` returned."""
    answer: dict = {}

    def target():
        try:
            answer["value"] = call()
        except BaseException as exc:  # reported below
            answer["error"] = exc
    end = outage(cluster, kind)
    try:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        wait_until(lambda: runner.outage.since is not None, timeout=120, what="the call to meet the outage")
    finally:
        end()
    thread.join(RUN_DEADLINE)
    assert not thread.is_alive(), "the call is still blocked after the database came back"
    assert "error" not in answer, answer.get("error")
    return answer["value"]


@pytest.mark.parametrize("kind", OUTAGES)
def test_a_step_reading_the_store_rides_out_the_outage(cluster, pg_lab, kind):
    runner = Runner(pg_lab.store, pg_lab.settings, parallel=1)
    run_id = pg_lab.commit(seed=73, message="a blip while reading upstream")
    runner.execute(pg_lab.store.claim_step(runner.worker_id))  # commit_received, for real
    expected = pg_lab.store.step(run_id, "commit_received").outputs
    ctx = context_for(pg_lab, runner, run_id, "ci_tests")
    assert through_outage(cluster, kind, runner, lambda: ctx.upstream("commit_received")) == expected


@pytest.mark.parametrize("kind", OUTAGES)
def test_a_registry_move_rides_out_the_outage_and_is_recorded_once(cluster, pg_lab, kind):
    runner = Runner(pg_lab.store, pg_lab.settings, parallel=1)
    run_id = pg_lab.commit(seed=74, message="a blip while moving an alias")
    client = pg_lab.tracking.client
    client.create_registered_model(MODEL_NAME)
    version = int(client.create_model_version(MODEL_NAME, source=str(pg_lab.settings.data_dir)).version)
    ctx = context_for(pg_lab, runner, run_id, "cd_full_train")
    previous = through_outage(cluster, kind, runner,
                              lambda: ctx.move_alias("challenger", version, "trained through an outage"))
    assert previous is None
    assert pg_lab.tracking.alias_version("challenger") == version
    history = pg_lab.store.alias_history_of("challenger")
    assert [(h["version"], h["run_id"]) for h in history] == [(version, run_id)]


def test_a_hung_server_fails_a_pooled_read_instead_of_blocking_it(cluster, pg_lab):
    pg_lab.store.list_runs()  # a connection in the pool, answered once
    end = outage(cluster, "hung")
    try:
        with pytest.raises(sa.exc.OperationalError, match="no answer"):
            pg_lab.store.list_runs()
    finally:
        end()
    assert pg_lab.store.list_runs() == []  # the broken connection was thrown away; a new one answers


def test_a_step_that_fails_after_registering_leaves_no_version_behind(pg_lab):
    runner = Runner(pg_lab.store, pg_lab.settings, parallel=1)
    run_id = pg_lab.commit(seed=75, message="fails after registering")
    ctx = context_for(pg_lab, runner, run_id, "cd_full_train")
    from engine.ml.claims import generate_claims
    from engine.ml.model import train
    claims = generate_claims(400, 75, pg_lab.store.get_run(run_id).dataset_window)
    version = ctx.register(ctx.tracking.start_run("orphan", ctx.tags("CD")), train(claims, {"n_estimators": 5}),
                           claims, threshold=0.5)
    assert [int(v.version) for v in pg_lab.tracking.client.search_model_versions(f"name='{MODEL_NAME}'")] == [version]
    ctx.discard_registered()  # what the runner does when the step then fails
    assert pg_lab.tracking.client.search_model_versions(f"name='{MODEL_NAME}'") == []
    lines = [line["message"] for line in pg_lab.store.logs_of(run_id, "cd_full_train")]
    assert any(f"version {version} removed" in line for line in lines)


def test_scheduler_skip_notices_never_reach_the_log(caplog):
    import engine.runner  # noqa: F401  (installs the filter)
    with caplog.at_level(logging.WARNING, logger="apscheduler.scheduler"):
        for _ in range(5):
            logging.getLogger("apscheduler.scheduler").warning(
                'Execution of job "Runner.tick" skipped: maximum number of running instances reached (1)')
        logging.getLogger("apscheduler.scheduler").warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]
