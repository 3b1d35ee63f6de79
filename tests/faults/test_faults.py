"""Faults an operator meets: the database stopped, hung and restarted mid-run; a worker killed with two steps
running; a worker told to stop; MLflow down and back. Each test asserts that nothing is lost, nothing is stuck,
and a retry (where one is needed) completes; and that no password shows anywhere.

Workers are real `python -m engine worker` processes over the suite's own PostgreSQL cluster (tests/faults/
conftest.py). Waits are by condition with generous deadlines: a loaded 2-core machine must not fail them.
"""
from __future__ import annotations

import json
import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from engine import Step, pipeline
from engine.lab import Lab
from tests.conftest import (
    ROOT,
    alive,
    cli_env,
    descendants_of,
    engine_cli,
    kill_group,
    make_settings,
    start_worker,
    suites_of,
    wait_until,
)
from tests.faults.conftest import MLFLOW_PASSWORD, PG_PASSWORD

CI = [s.name for s in pipeline.STEPS if s.stage == "CI"]
RUN_DEADLINE = 300  # seconds for a CI run to rest on a loaded machine


@pytest.fixture
def pg_lab(cluster, tmp_path, mlflow_template):
    """A Lab over a fresh database on the suite's cluster (its URL carries a password)."""
    lab = Lab(make_settings(tmp_path / "lab", cluster.new_database(), mlflow_template))
    yield lab
    lab.close()


@pytest.fixture
def worker(tmp_path):
    """start(env) -> a `python -m engine worker` process (own process group), killed after the test."""
    procs = []

    def start(env: dict, name: str = "worker"):
        proc = start_worker(env, tmp_path / f"{name}.log")
        proc.log_path = tmp_path / f"{name}.log"
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        kill_group(proc)


def log_of(proc) -> str:
    return Path(proc.log_path).read_text(errors="replace")


def step_of(lab, run_id: int, name: str) -> Step:
    return lab.store.step(run_id, name)


def rested(lab, run_id: int) -> str | None:
    from engine.states import RESTING, RunStatus
    status = lab.store.get_run(run_id).status
    return status if RunStatus(status) in RESTING else None


def wait_rest(lab, run_id: int) -> str:
    return wait_until(lambda: rested(lab, run_id), timeout=RUN_DEADLINE, interval=0.5, what=f"run {run_id} to rest")


def assert_ci_ran_once(lab, run_id: int) -> None:
    """CI completed and every CI step succeeded on its first attempt: no result was thrown away."""
    run = lab.run(run_id)
    assert run.status == "ci_complete", [(s.name, s.status, s.error) for s in run.steps]
    assert {s.name: (s.status, s.attempt) for s in run.steps if s.stage == "CI"} == {
        name: ("succeeded", 1) for name in CI}


# ---- the database goes away mid-run ----------------------------------------------------------------------------
def test_database_stopped_and_restarted_mid_run_keeps_every_result(cluster, pg_lab, worker):
    proc = worker(cli_env(pg_lab.settings))
    run_id = pg_lab.commit(seed=71, message="outage")
    wait_until(lambda: step_of(pg_lab, run_id, "ci_tests").status == "running", timeout=RUN_DEADLINE,
               what="ci_tests to run")
    cluster.stop("fast")  # every connection cut, as in a crash or a restart
    try:
        wait_until(lambda: "is unreachable" in log_of(proc), timeout=120, what="the worker to notice")
    finally:
        cluster.start()
    assert wait_rest(pg_lab, run_id) == "ci_complete"
    assert_ci_ran_once(pg_lab, run_id)
    wait_until(lambda: "answers again" in log_of(proc), timeout=60, what="the worker to say it is back")
    text = log_of(proc)
    assert text.count("is unreachable") == 1 and text.count("answers again") == 1, text[-3000:]
    assert "Traceback" not in text and PG_PASSWORD not in text
    assert proc.poll() is None  # still working


def test_database_hung_by_sigstop_fails_commands_fast_and_the_run_completes(cluster, pg_lab, worker):
    env = cli_env(pg_lab.settings)
    proc = worker(env)
    run_id = pg_lab.commit(seed=72, message="hang")
    wait_until(lambda: step_of(pg_lab, run_id, "ci_tests").status == "running", timeout=RUN_DEADLINE,
               what="ci_tests to run")
    cluster.pause()
    try:
        status = engine_cli(env, "status", timeout=120)  # a fresh connection: the postmaster never answers
    finally:
        cluster.resume()
    assert status.returncode == 1, status.stderr
    assert f"postgres:***@127.0.0.1:{cluster.port}" in status.stderr and "did not answer" in status.stderr
    assert PG_PASSWORD not in status.stderr + status.stdout
    assert wait_rest(pg_lab, run_id) == "ci_complete"
    assert_ci_ran_once(pg_lab, run_id)
    assert "Traceback" not in log_of(proc) and PG_PASSWORD not in log_of(proc)


# ---- a worker dies -----------------------------------------------------------------------------------------------
def test_kill_9_with_two_steps_running_interrupts_the_runs_whole_and_retry_completes(pg_lab, worker, tmp_path):
    # Each run's ci_tests suite holds (tests/engine/hold_ci_suite.py) until it is killed, so the worker surely has
    # both its slots busy with a step and its subprocess when it dies: no step can finish between the look and
    # the kill (it did under load, when quicker steps still ran beside the suite).
    proc = worker({**cli_env(pg_lab.settings), "PYTEST_ADDOPTS": "-p tests.engine.hold_ci_suite",
                   "LAB_TEST_HOLD_FILE": str(tmp_path / "held")})
    run_ids = [pg_lab.commit(seed=73 + i, message=f"crash {i}") for i in range(2)]

    def both_suites_held():
        running = [s for r in run_ids for s in pg_lab.store.steps_of(r) if s.status == "running"]
        return [s.name for s in running] == ["ci_tests", "ci_tests"] and len(suites_of(proc)) == 2
    wait_until(both_suites_held, timeout=RUN_DEADLINE, interval=0.05,
               what="both runs' ci_tests running, each with its held suite")
    children = descendants_of(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)  # the worker only: its step subprocesses must die with it
    proc.wait(30)
    wait_until(lambda: not any(alive(c) for c in children), timeout=30, what="the step subprocesses to die")

    # No live worker is left, so a short stale window cannot mistake one for dead.
    reaper = Lab(replace(pg_lab.settings, stale_seconds=10.0))
    try:
        def reaped():
            reaper.runner.reap_stale()
            return all(rested(pg_lab, r) for r in run_ids)
        wait_until(reaped, timeout=120, interval=0.3, what="the dead worker's runs to be interrupted")
    finally:
        reaper.close()
    for run_id in run_ids:
        assert pg_lab.store.get_run(run_id).status == "interrupted"
        statuses = {s.name: s.status for s in pg_lab.store.steps_of(run_id)}
        assert statuses["ci_tests"] == "interrupted", statuses
        assert not [n for n, s in statuses.items() if s in ("queued", "running", "pending")], statuses
        pg_lab.retry(run_id, by="ops")  # this process's suites do not hold
    pg_lab.runner.run_until_idle()
    assert [pg_lab.store.get_run(r).status for r in run_ids] == ["ci_complete", "ci_complete"]


def test_sigterm_lets_the_worker_release_its_step_and_exit_cleanly(pg_lab, worker):
    env = {**cli_env(pg_lab.settings), "LAB_SHUTDOWN_GRACE_SECONDS": "0.1"}
    proc = worker(env)
    run_id = pg_lab.commit(seed=75, message="shutdown")
    wait_until(lambda: step_of(pg_lab, run_id, "ci_tests").status == "running" and suites_of(proc),
               timeout=RUN_DEADLINE, interval=0.05, what="ci_tests running with its suite")
    children = descendants_of(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(60) == 0, log_of(proc)
    wait_until(lambda: not any(alive(c) for c in children), timeout=30, what="the step subprocesses to die")
    text = log_of(proc)
    assert "SIGTERM: stopping" in text and "Traceback" not in text
    assert pg_lab.workers() == []  # it deregistered
    step = step_of(pg_lab, run_id, "ci_tests")
    assert step.status in ("queued", "succeeded"), step  # released to the queue, or finished in the grace
    if step.status == "queued":
        assert "released to other workers: " in text and "ci_tests" in text
    pg_lab.runner.run_until_idle()
    assert wait_rest(pg_lab, run_id) == "ci_complete"
    statuses = {s.name: s.status for s in pg_lab.store.steps_of(run_id) if s.stage == "CI"}
    assert set(statuses.values()) == {"succeeded"}, statuses


# ---- MLflow goes away, and no password shows anywhere --------------------------------------------------------
PAGES = ("", "runs", "registry", "drift", "demo")  # "" is the dashboard, the default page


def page_dump(at) -> str:
    """Everything an AppTest run rendered (every element's protobuf as text: values, labels, helps, links)."""
    out, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        stack.extend(getattr(node, "children", {}).values())
    return "\n".join(out)


def rendered_pages(settings, monkeypatch) -> list[str]:
    """Each page of the dashboard, rendered headless over `settings`, as text."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.ui.conftest import open_page
    for key, value in {**cli_env(settings), "LAB_TICK_SECONDS": "3600"}.items():
        monkeypatch.setenv(key, value)
    st.cache_resource.clear()
    st.cache_data.clear()
    dumps = []
    try:
        for path in PAGES:
            at = open_page(path, timeout=120) if path else \
                AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120).run()
            assert not at.exception, (path, at.exception)
            dumps.append(page_dump(at))
    finally:
        from ui.common import get_lab
        get_lab().close()
        st.cache_resource.clear()
        st.cache_data.clear()
    return dumps


def test_mlflow_down_and_back_with_passwords_in_both_urls_never_shows_them(cluster, tmp_path, mlflow_template,
                                                                             mlflow_server, worker, monkeypatch):
    settings = make_settings(tmp_path / "lab", cluster.new_database(), mlflow_template,
                             tracking_uri=mlflow_server.uri)
    assert PG_PASSWORD in settings.database_url and MLFLOW_PASSWORD in settings.tracking_uri
    env = cli_env(settings)
    lab = Lab(settings)
    proc = worker(env)
    try:
        wait_until(lambda: [w for w in lab.workers() if w["alive"]], timeout=120, what="the worker to register")
        first = lab.commit(seed=76, message="mlflow up")
        assert wait_rest(lab, first) == "ci_complete"

        mlflow_server.stop()
        second = lab.commit(seed=77, message="mlflow down")
        assert wait_rest(lab, second) == "failed"
        failed = step_of(lab, second, "mlflow_log_ci")
        masked = f"http://lab:***@127.0.0.1:{mlflow_server.port}"
        assert failed.status == "failed" and masked in failed.error, failed.error

        mlflow_server.start()
        assert lab.retry(second, by="ops") == "mlflow_log_ci"
        assert wait_rest(lab, second) == "ci_complete"
        assert step_of(lab, second, "mlflow_log_ci").outputs["tracking_uri"] == masked

        shown = [engine_cli(env, *args) for args in (("status", str(first)), ("status", str(second)), ("runs",),
                                                      ("runs", "--csv"), ("workers",), ("failures",))]
        assert all(p.returncode == 0 for p in shown), [p.stderr for p in shown]
        everything = [p.stdout + p.stderr for p in shown] + [log_of(proc), json.dumps(lab.audit(), default=str)]
        for run_id in (first, second):
            everything.append(json.dumps(lab.run(run_id), default=str))
            everything += [line["message"] for line in lab.logs(run_id)]
        pages = rendered_pages(settings, monkeypatch)
    finally:
        lab.close()
    leaks = [text for text in everything + pages if PG_PASSWORD in text or MLFLOW_PASSWORD in text]
    assert leaks == []
    assert any(masked in text for text in everything)
    assert masked in pages[0]  # the dashboard names the tracking server, masked
