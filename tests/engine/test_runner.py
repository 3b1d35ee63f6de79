"""The runner over the real CI steps, on SQLite and PostgreSQL, with a real MLflow SQLite store.

A pipeline run costs seconds, so each backend gets one lab for the module: one batch of commits (two healthy
ones with the same seed, one per failure mode) runs to rest once, the tests read snapshots of the result, and a
second fixture retries two of the failed runs. Tests that need the live state use runs nobody else changes.
Dead workers, lost results and failing ticks are staged on a fresh lab per test, with a heartbeat clock the test
sets (an old `heartbeat_at`), never by waiting for a window to pass.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from engine import pipeline
from engine.config import EXPERIMENT, RUN_TAGS
from engine.errors import BadInput, Refused
from engine.lab import Lab
from engine.outage import Outage
from engine.runner import StepContext
from engine.states import RESTING, RunStatus, StepStatus
from engine.store import steps as steps_table
from tests.conftest import ROOT, STALE, python_module, wait_until

CI = [s.name for s in pipeline.STEPS if s.stage == "CI"]
NOT_CI = [s.name for s in pipeline.STEPS if s.stage != "CI"]
SEED = 11
FAILING = ("schema_validation", "training_error", "mlflow_connection")


@pytest.fixture(scope="module")
def batch(mlab):
    """Run ids and snapshots (taken once everything rested) of the healthy and failing commits."""
    ids = {"ok": mlab.commit(seed=SEED, message="healthy"), "again": mlab.commit(seed=SEED, message="same seed")}
    for mode in FAILING:
        mlab.set_failure_mode(mode, True, by="tester")
        ids[mode] = mlab.commit(seed=5, message=f"with {mode}")
        mlab.set_failure_mode(mode, False, by="tester")
    mlab.runner.run_until_idle()
    return ids, {key: copy.deepcopy(mlab.run(run_id)) for key, run_id in ids.items()}


@pytest.fixture(scope="module")
def retried(mlab, batch):
    """The mlflow_connection and schema_validation runs retried with every mode off; (started-from, snapshots)."""
    ids, _ = batch
    started = {key: mlab.retry(ids[key], by="tester") for key in ("mlflow_connection", "schema_validation")}
    mlab.runner.run_until_idle()
    return started, {key: copy.deepcopy(mlab.run(ids[key])) for key in started}


def _steps(run: dict) -> dict[str, dict]:
    return {s.name: s for s in run.steps}


# ---- a healthy commit ---------------------------------------------------------------------------------------
def test_commit_reaches_ci_complete_with_every_ci_step_succeeded_once(batch):
    run = batch[1]["ok"]
    assert run.status == RunStatus.CI_COMPLETE.value
    assert run.finished_at is not None and run.finished_at >= run.created_at
    steps = _steps(run)
    for name in CI:
        s = steps[name]
        assert (s.status, s.attempt, s.error) == ("succeeded", 1, None), name
        assert s.started_at <= s.finished_at, name
    for name in NOT_CI:  # CD waits for someone to continue
        assert (steps[name].status, steps[name].attempt) == ("pending", 0), name


def test_each_step_needs_its_upstream_to_finish_first(batch):
    steps = _steps(batch[1]["ok"])
    for spec in pipeline.STEPS[:5]:
        for need in spec.needs:
            assert steps[need].finished_at <= steps[spec.name].started_at, (need, spec.name)


def test_every_ci_step_wrote_log_lines(mlab, batch):
    run = batch[1]["ok"]
    steps = _steps(run)
    for name in CI:
        lines = mlab.logs(run.id, name)
        assert len(lines) >= 2, name
        assert lines[0]["message"] == f"started {name} (attempt 1) on {steps[name].worker}"
        assert lines[-1]["message"].startswith(f"{name} finished in ")
        assert all(x["attempt"] == 1 and x["step"] == name for x in lines)
        assert not [x for x in lines if x["level"] == "ERROR"], name


def test_ci_step_outputs_are_real(batch):
    run = batch[1]["ok"]
    out = {name: s.outputs for name, s in _steps(run).items()}
    assert (out["commit_received"]["sha"], out["commit_received"]["seed"]) == (run.sha, SEED)
    assert len(run.sha) == 40 and int(run.sha, 16) >= 0
    tests = out["ci_tests"]
    assert tests["failed"] == 0 and tests["passed"] == len(tests["tests"]) > 0 and tests["exit_code"] == 0
    assert out["data_validation"]["passed"] is True
    assert all(c["passed"] for c in out["data_validation"]["checks"])
    metrics = out["ci_quick_train"]["metrics"]
    assert 0.7 < metrics["roc_auc"] <= 1.0


def test_mlflow_ci_run_carries_the_tags_and_the_dataset(mlab, batch):
    run = batch[1]["ok"]
    steps = _steps(run)
    logged = steps["mlflow_log_ci"].outputs
    detail = mlab.tracking.run_detail(logged["mlflow_run_id"])
    assert detail["status"] == "FINISHED"
    assert set(RUN_TAGS) <= set(detail["tags"])
    assert {k: detail["tags"][k] for k in RUN_TAGS} == {
        "commit_sha": run.sha, "stage": "CI", "dataset_window": run.dataset_window, "seed": str(SEED),
        "model_version": "unregistered", "pipeline_run_id": str(run.id)}  # CI registers no model
    assert logged["tags"] == {k: detail["tags"][k] for k in RUN_TAGS}
    mlflow_run = mlab.tracking.client.get_run(logged["mlflow_run_id"])
    assert mlab.tracking.client.get_experiment(mlflow_run.info.experiment_id).name == EXPERIMENT
    quick = steps["ci_quick_train"].outputs
    # The rows quick train really used, each part once: its sample split three ways, not the whole feed.
    assert {d["context"]: (json.loads(d["profile"])["num_rows"], d["digest"]) for d in detail["inputs"]} == {
        context: (part["rows"], part["digest"]) for context, part in quick["datasets"].items()}
    assert quick["train_rows"] + quick["validation_rows"] + quick["holdout_rows"] == \
        pipeline.spec("ci_quick_train").params()["sample_rows"]
    assert logged["dataset_digest"] == quick["datasets"]["training"]["digest"]
    assert all(run.dataset_window in d["name"] for d in detail["inputs"])
    assert detail["params"]["decision_threshold"] == str(quick["decision_threshold"])
    for name, value in quick["metrics"].items():
        if isinstance(value, (int, float)):
            assert detail["metrics"][name] == pytest.approx(value), name
    assert detail["params"]["train_rows"] == str(quick["train_rows"])


def test_same_seed_and_window_give_identical_quick_train_metrics(batch):
    first, second = batch[1]["ok"], batch[1]["again"]
    assert second.status == "ci_complete"
    assert first.sha != second.sha and first.seed == second.seed == SEED
    assert first.dataset_window == second.dataset_window
    a, b = _steps(first), _steps(second)
    assert a["ci_quick_train"].outputs["metrics"] == b["ci_quick_train"].outputs["metrics"]
    assert a["mlflow_log_ci"].outputs["dataset_digest"] == b["mlflow_log_ci"].outputs["dataset_digest"]


# ---- failure modes ------------------------------------------------------------------------------------------
def _assert_stopped_at(run: dict, failed: str, downstream: list[str]) -> dict:
    """The run failed at `failed`; everything after it was skipped; nothing is left waiting."""
    assert run.status == RunStatus.FAILED.value
    assert run.finished_at is not None
    steps = _steps(run)
    assert steps["commit_received"].status == "succeeded"
    assert [n for n, s in steps.items() if s.status == "failed"] == [failed]
    for name in downstream + NOT_CI:
        assert steps[name].status == "skipped", name
    assert not [n for n, s in steps.items() if s.status in ("pending", "queued", "running")]
    return steps[failed]


def test_schema_validation_fails_data_validation_naming_the_column(batch):
    run = batch[1]["schema_validation"]
    assert run.failure_modes == ["schema_validation"]
    step = _assert_stopped_at(run, "data_validation", ["ci_quick_train", "mlflow_log_ci"])
    assert "diagnosis_group" in step.error
    columns = next(c for c in step.outputs["checks"] if c["name"] == "required_columns")
    assert columns["passed"] is False and "missing column: diagnosis_group" in columns["examples"]


def test_training_error_fails_ci_tests_with_the_real_error(mlab, batch):
    run = batch[1]["training_error"]
    step = _assert_stopped_at(run, "ci_tests", [])  # nothing in CI needs ci_tests: its siblings may finish
    outputs = step.outputs
    assert outputs["failed"] >= 1 and outputs["exit_code"] != 0
    bad = [t for t in outputs["tests"] if t["outcome"] == "failed"]
    assert bad and "could not convert string to float" in bad[0]["message"]
    assert bad[0]["name"] in step.error and "could not convert string to float" in step.error
    errors = [x["message"] for x in mlab.logs(run.id, "ci_tests") if x["level"] == "ERROR"]
    assert any("could not convert string to float" in line for line in errors)


def test_mlflow_connection_fails_mlflow_log_ci_naming_the_address(mlab, batch):
    run = batch[1]["mlflow_connection"]
    step = _assert_stopped_at(run, "mlflow_log_ci", [])
    address = mlab.settings.unreachable_mlflow_uri
    assert address == "http://127.0.0.1:9"
    assert address in step.error
    for name in ("ci_tests", "data_validation", "ci_quick_train"):
        assert _steps(run)[name].status == "succeeded"


def test_failure_modes_apply_only_to_runs_committed_while_on(batch):
    snaps = batch[1]
    assert snaps["ok"].failure_modes == [] and snaps["again"].failure_modes == []
    assert {k: snaps[k].failure_modes for k in FAILING} == {k: [k] for k in FAILING}


# ---- retry --------------------------------------------------------------------------------------------------
def test_retry_reruns_from_the_failed_step_keeping_upstream_outputs(batch, retried):
    started, after = retried
    assert started["mlflow_connection"] == "mlflow_log_ci"
    run, before = after["mlflow_connection"], _steps(batch[1]["mlflow_connection"])
    assert run.status == "ci_complete" and run.failure_modes == []
    steps = _steps(run)
    for name in ("commit_received", "ci_tests", "data_validation", "ci_quick_train"):
        assert steps[name].attempt == 1, name
        assert steps[name].outputs == before[name].outputs, name
        assert steps[name].finished_at == before[name].finished_at, name
    assert (steps["mlflow_log_ci"].status, steps["mlflow_log_ci"].attempt) == ("succeeded", 2)
    assert steps["mlflow_log_ci"].error is None
    assert steps["mlflow_log_ci"].outputs["tracking_uri"] != "http://127.0.0.1:9"
    for name in NOT_CI:  # reset from skipped, waiting for continue again
        assert steps[name].status == "pending", name


def test_retry_after_a_gate_failure_reruns_the_gate_and_what_follows(batch, retried):
    started, after = retried
    assert started["schema_validation"] == "data_validation"
    steps = _steps(after["schema_validation"])
    assert after["schema_validation"].status == "ci_complete"
    assert {n: steps[n].attempt for n in CI} == {"commit_received": 1, "ci_tests": 1, "data_validation": 2,
                                                     "ci_quick_train": 1, "mlflow_log_ci": 1}
    assert steps["ci_tests"].outputs == _steps(batch[1]["schema_validation"])["ci_tests"].outputs
    assert all(steps[n].status == "succeeded" for n in CI)


def test_retry_logs_both_attempts_and_is_audited(mlab, batch, retried):
    run_id = batch[0]["mlflow_connection"]
    lines = mlab.logs(run_id, "mlflow_log_ci")
    assert {x["attempt"] for x in lines} == {1, 2}
    assert [x["message"].split(" on ")[0] for x in lines if x["message"].startswith("started ")] == [
        "started mlflow_log_ci (attempt 1)", "started mlflow_log_ci (attempt 2)"]
    trail = mlab.audit(run_id=run_id)
    assert [(a.action, a.actor, a.comment) for a in trail] == [
        ("retry", "tester", "from mlflow_log_ci"), ("commit", "cli", "with mlflow_connection")]


def test_retry_of_a_ci_complete_run_is_refused(mlab, batch):
    run_id = batch[0]["ok"]
    before = mlab.run(run_id)
    with pytest.raises(Refused, match="ci_complete"):
        mlab.retry(run_id)
    assert mlab.run(run_id) == before


def test_retry_from_a_step_after_the_failed_one_is_bad_input(mlab, batch):
    run_id = batch[0]["training_error"]  # never retried: still failed at ci_tests
    before = mlab.run(run_id)
    assert before.status == "failed"
    with pytest.raises(BadInput, match="ci_tests"):
        mlab.retry(run_id, from_step="data_validation")
    with pytest.raises(BadInput, match="ci_tests"):
        mlab.retry(run_id, from_step="mlflow_log_ci")
    assert mlab.run(run_id) == before


def test_retry_of_an_unknown_run_is_bad_input(mlab):
    with pytest.raises(BadInput, match="no run 9999"):
        mlab.retry(9999)


# ---- the background scheduler --------------------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_background_scheduler_runs_a_commit_to_ci_complete(lab):
    lab.start()
    run_id = lab.commit(seed=3)
    status = wait_until(lambda: (s := lab.store.get_run(run_id).status) in RESTING and s,
                        interval=0.2, what=f"run {run_id} to rest")
    assert status == "ci_complete"
    steps = _steps(lab.run(run_id))
    assert all(steps[n].status == "succeeded" and steps[n].worker == lab.runner.worker_id for n in CI)


# ---- dead workers and lost results (a fresh lab per test, both backends) --------------------------------------
def _age_heartbeat(lab: Lab, step_id: int, seconds: float) -> None:
    """Move a step's last heartbeat `seconds` into the past: the clock of a worker that stopped beating."""
    with lab.store.tx() as c:
        c.execute(sa.update(steps_table).where(steps_table.c.id == step_id)
                  .values(heartbeat_at=steps_table.c.heartbeat_at - seconds))


def test_reaping_interrupts_only_the_step_whose_heartbeat_is_stale(lab):
    dead_run, live_run = lab.commit(seed=1), lab.commit(seed=2)
    dead = lab.store.claim_step("dead-host:1:aaaaaa")
    live = lab.store.claim_step("live-host:2:bbbbbb")
    assert (dead.run_id, live.run_id) == (dead_run, live_run)
    _age_heartbeat(lab, dead.id, STALE + 60)

    assert lab.runner.reap_stale() == 1
    step = lab.store.step(dead_run, "commit_received")
    assert step.status == "interrupted" and step.finished_at is not None
    assert step.error.startswith("worker dead-host:1:aaaaaa stopped heartbeating ")
    assert step.error.endswith("retry the run to re-run it")
    assert lab.store.get_run(dead_run).status == "interrupted"
    assert {s.status for s in lab.store.steps_of(dead_run)[1:]} == {"skipped"}
    notices = [x for x in lab.logs(dead_run, "commit_received") if x["level"] == "ERROR"]
    assert [x["message"] for x in notices] == [f"interrupted: {step.error} (noticed by {lab.runner.worker_id})"]
    # the live worker's step and run are untouched, and a second look finds nothing more to reap
    assert lab.store.step(live_run, "commit_received").status == "running"
    assert lab.store.get_run(live_run).status == "running"
    assert lab.runner.reap_stale() == 0


def test_a_result_finished_after_the_step_was_reaped_is_discarded(lab):
    run_id = lab.commit(seed=3)
    step = lab.store.claim_step(lab.runner.worker_id)
    _age_heartbeat(lab, step.id, STALE + 60)  # this worker looked dead to a runner meanwhile
    assert lab.runner.reap_stale() == 1
    reaped = lab.store.step(run_id, "commit_received")

    lab.runner.execute(step)  # the step itself succeeds, but its result comes too late
    assert lab.store.step(run_id, "commit_received") == reaped
    assert lab.store.get_run(run_id).status == "interrupted"
    assert [s.status for s in lab.store.steps_of(run_id)[1:3]] == ["skipped", "skipped"]  # nothing queued
    lines = lab.logs(run_id, "commit_received")
    discarded = [x["message"] for x in lines if x["level"] == "WARNING"]
    assert len(discarded) == 1 and discarded[0].startswith("result discarded: ")
    assert not [x for x in lines if x["message"].startswith("commit_received finished in")]


def test_a_failure_reported_after_the_step_was_reaped_is_discarded(lab):
    lab.set_failure_mode("schema_validation", True, by="tester")
    run_id = lab.commit(seed=4)
    lab.runner.execute(lab.store.claim_step(lab.runner.worker_id))  # commit_received queues two steps
    assert lab.store.claim_step("other-host:3:cccccc").name == "ci_tests"  # alive elsewhere
    step = lab.store.claim_step(lab.runner.worker_id)
    assert step.name == "data_validation"
    _age_heartbeat(lab, step.id, STALE + 60)
    assert lab.runner.reap_stale() == 1
    reaped = lab.store.step(run_id, "data_validation")

    lab.runner.execute(step)  # fails on the missing column, after it was reaped
    assert lab.store.step(run_id, "data_validation") == reaped
    assert reaped.status == "interrupted" and "stopped heartbeating" in reaped.error
    assert lab.store.get_run(run_id).status == "interrupted"
    lines = lab.logs(run_id, "data_validation")
    assert any(x["level"] == "ERROR" and "diagnosis_group" in x["message"] for x in lines)  # reported...
    assert [x["message"][:17] for x in lines if x["level"] == "WARNING"] == ["result discarded:"]  # ...not kept


def test_a_failing_tick_is_logged_and_the_next_tick_works(lab, monkeypatch, caplog):
    # A bug (not a database outage, which tests/faults covers: one warning per outage) in one tick.
    run_id = lab.commit(seed=5)

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug in claiming")

    monkeypatch.setattr(lab.store, "claim_step", broken)  # this lab's store only
    with caplog.at_level(logging.ERROR, logger="engine.runner"):
        lab.runner.tick()  # must not raise: an exception would end the scheduler's job
    assert [r.getMessage() for r in caplog.records] == ["runner tick failed"]
    assert "a bug in claiming" in caplog.text
    assert lab.store.step(run_id, "commit_received").status == "queued"

    monkeypatch.undo()
    lab.runner.tick()  # claims the step and hands it to a worker thread
    wait_until(lambda: lab.store.step(run_id, "commit_received").status == "succeeded",
               what="the next tick to run the step")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_failing_heartbeat_is_logged_and_beating_goes_on(lab, monkeypatch, caplog):
    calls = []

    def heartbeat(step_ids):
        calls.append(list(step_ids))
        if len(calls) == 1:
            raise RuntimeError("a bug in the heartbeat")  # not an outage: logged with its traceback
        if len(calls) == 3:
            lab.runner._stopping.set()  # the runner stops after this beat: the loop ends
        return set(step_ids)

    monkeypatch.setattr(lab.store, "heartbeat", heartbeat)
    with caplog.at_level(logging.ERROR, logger="engine.runner"):
        lab.runner._heartbeat()  # the runner's one heartbeat loop, in this thread
    assert len(calls) == 3  # it went on beating after the failure
    assert [r.getMessage() for r in caplog.records] == ["heartbeat failed"]
    assert "a bug in the heartbeat" in caplog.text


def test_a_call_that_began_before_an_outage_does_not_end_it(caplog):
    # Seen under load: one thread's call failed (the outage began), then a slower call of another thread that had
    # begun before the database went away returned fine and was taken as "answers again"; the next failure warned
    # a second time. Only a call that began after the outage did may end it.
    outage = Outage("the database")
    down = ConnectionRefusedError("connection refused")
    with caplog.at_level(logging.WARNING, logger="engine.outage"):
        in_flight = time.monotonic()  # began while the database still answered
        outage.failed(down)
        outage.ok(in_flight)
        outage.failed(down)  # still the same outage: no second warning
        assert outage.since is not None
        outage.ok(time.monotonic())
    assert [r.getMessage().split(" (")[0].split(" after ")[0] for r in caplog.records] == [
        "the database is unreachable", "the database answers again"]
    assert outage.since is None


# ---- interruption is per run and atomic (a killed worker had two steps running) ------------------------------
DEAD = "deadhost:4242:abcdef"


def _two_steps_of_a_dead_worker(lab) -> int:
    """A run whose commit_received succeeded and whose ci_tests and data_validation run on a worker that died."""
    run_id = lab.commit(seed=17, message="two steps on a dead worker")
    lab.runner.execute(lab.store.claim_step(DEAD))  # the real commit_received: it queues its two successors
    claimed = {lab.store.claim_step(DEAD).name for _ in range(2)}
    assert claimed == {"ci_tests", "data_validation"}
    return run_id


def _set_silence(lab, run_id: int, silent: dict[str, float]) -> None:
    """Set steps' last heartbeats to `silent[name]` seconds ago, on the database's clock."""
    from engine.store import db_now, steps
    with lab.store.tx() as c:
        for name, seconds in silent.items():
            c.execute(sa.update(steps).where(steps.c.run_id == run_id, steps.c.name == name)
                      .values(heartbeat_at=db_now(lab.store.engine.dialect.name) - seconds))


def _statuses(lab, run_id: int) -> dict[str, str]:
    return {s.name: s.status for s in lab.store.steps_of(run_id)}


def test_one_stale_step_interrupts_the_whole_run_and_its_live_sibling_at_once(lab):
    run_id = _two_steps_of_a_dead_worker(lab)
    _set_silence(lab, run_id, {"ci_tests": 3600, "data_validation": 0})  # the gap seen live: one looks alive
    assert lab.runner.reap_stale() == 1
    statuses = _statuses(lab, run_id)
    assert lab.store.get_run(run_id).status == "interrupted"
    assert (statuses["ci_tests"], statuses["data_validation"]) == ("interrupted", "interrupted")
    assert not [n for n, s in statuses.items() if s in ("queued", "running", "pending")], statuses
    assert lab.runner.reap_stale() == 0  # nothing left to reap


def test_retry_after_two_stale_heartbeats_leaves_claimable_steps_and_completes(lab):
    run_id = _two_steps_of_a_dead_worker(lab)
    _set_silence(lab, run_id, {"ci_tests": 3600, "data_validation": 1800})
    lab.runner.reap_stale()
    assert lab.retry(run_id, by="tester") == "ci_tests"  # the first step that did not succeed
    statuses = _statuses(lab, run_id)
    ready = pipeline.ready("CI", {**statuses, "ci_tests": "pending", "data_validation": "pending"})
    assert [n for n, s in statuses.items() if s == "queued"] == ready == ["ci_tests", "data_validation"]
    lab.runner.run_until_idle()
    run = lab.run(run_id)
    assert run.status == "ci_complete"
    assert {s.name: s.attempt for s in run.steps if s.stage == "CI"} == {
        "commit_received": 1, "ci_tests": 2, "data_validation": 2, "ci_quick_train": 1, "mlflow_log_ci": 1}


def test_retry_refuses_while_a_step_of_the_run_still_runs(lab):
    """The end state of the old bug (run interrupted, a sibling still `running`): refused with the reason."""
    run_id = _two_steps_of_a_dead_worker(lab)
    with lab.store.tx() as c:  # written the old way: one step and the run interrupted, the sibling not
        lab.store.set_step_status(c, lab.store.step(run_id, "ci_tests", c), StepStatus.INTERRUPTED)
        lab.store.set_run_status(c, run_id, "running", RunStatus.INTERRUPTED)
    before = lab.run(run_id)
    with pytest.raises(Refused, match=f"data_validation of run {run_id} is still running on {DEAD}"):
        lab.retry(run_id)
    assert lab.run(run_id) == before
    _set_silence(lab, run_id, {"data_validation": 3600})
    assert lab.runner.reap_stale() == 1
    assert lab.retry(run_id) == "ci_tests"
    lab.runner.run_until_idle()
    assert lab.store.get_run(run_id).status == "ci_complete"


def test_a_runner_never_interrupts_its_own_live_step(lab):
    run_id = lab.commit(seed=18)
    step = lab.store.claim_step(lab.runner.worker_id)
    lab.runner._live[step.id] = StepContext(lab.store, lab.settings, lab.store.get_run(run_id), step)
    _set_silence(lab, run_id, {"commit_received": 3600})  # as after a database outage
    assert lab.runner.reap_stale() == 0
    assert lab.store.step(run_id, "commit_received").status == "running"
    del lab.runner._live[step.id]  # once it is not live here any more, it is an orphan like any other
    assert lab.runner.reap_stale() == 1


# ---- MLflow's schema on a fresh PostgreSQL backend: workers starting together --------------------------------
@pytest.mark.postgres
def test_workers_racing_on_a_fresh_mlflow_postgres_backend_all_start(pg_url, tmp_path):
    """Three processes create MLflow's schema at once; the advisory lock lets one migrate, the others wait."""
    (tmp_path / "race_probe.py").write_text(
        "import sys\nfrom engine.tracking import prepare_mlflow_backend\nfrom engine.tracking import Tracking\n"
        "prepare_mlflow_backend(sys.argv[1])\nTracking(sys.argv[1]).experiment_id()\nprint('ok')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    procs = [python_module("race_probe", [pg_url], env, tmp_path / f"out{i}", tmp_path / f"err{i}") for i in range(3)]
    codes = [p.wait(timeout=300) for p in procs]
    assert codes == [0, 0, 0], [(tmp_path / f"err{i}").read_text()[-2000:] for i in range(3)]
    assert all((tmp_path / f"out{i}").read_text().strip() == "ok" for i in range(3))
    from engine.tracking import Tracking
    assert [e.name for e in Tracking(pg_url).client.search_experiments()].count(EXPERIMENT) == 1


# ---- a step's subprocesses die with the step -------------------------------------------------------------------
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_step_interrupted_elsewhere_has_its_subprocess_group_killed(lab, tmp_path):
    """Another runner marks the run interrupted; this runner's heartbeat notices and kills the step's processes."""
    run_id = lab.commit(seed=19)
    step = lab.store.claim_step(lab.runner.worker_id)
    ctx = StepContext(lab.store, lab.settings, lab.store.get_run(run_id), step)
    (tmp_path / "test_hold.py").write_text("import threading\ndef test_hold():\n    threading.Event().wait()\n")
    child = ctx.pytest([str(tmp_path / "test_hold.py"), "-p", "no:cacheprovider"],
                       {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, tmp_path / "out.log")
    assert os.getpgid(child.pid) == child.pid != os.getpgid(0)  # a process group of its own
    lab.runner._live[step.id] = ctx
    lab.runner._start_heartbeat()
    with lab.store.tx() as c:
        lab.store.interrupt_run(c, run_id, "reaped by another runner")
    assert child.wait(timeout=60) == -signal.SIGKILL


def test_a_process_exiting_with_a_started_runner_logs_no_scheduler_traceback(tmp_path):
    """A server stopped with Ctrl-C exits with its runner still ticking. From the moment the interpreter exits,
    concurrent.futures refuses new work; the scheduler must be stopped first, or every tick due while the process
    winds down logs "cannot schedule new futures after shutdown". The child keeps exiting for 2 s (an atexit
    handler), 40 ticks of 0.05 s: without the stop, some would surely fire."""
    script = f"""
import atexit, logging, time
logging.basicConfig(level=logging.WARNING)
from engine.config import Settings
from engine.lab import Lab
data = {str(tmp_path)!r}
lab = Lab(Settings.from_env({{}}, data_dir=data, database_url=f"sqlite:///{{data}}/lab.db",
                            tracking_uri=f"sqlite:///{{data}}/mlflow.db", tick_seconds=0.05)).start()
atexit.register(time.sleep, 2)
print("started", flush=True)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0 and done.stdout.strip() == "started", done.stderr
    assert "cannot schedule new futures" not in done.stderr and "Traceback" not in done.stderr, done.stderr
