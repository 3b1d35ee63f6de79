"""Scale-out on PostgreSQL: `python -m engine worker` processes share one database.

Exactly once: two workers, five commits, every step runs once; their stale window is far longer than any
stall a loaded machine causes, so neither reaps the other's live steps. Crash: a worker whose ci_tests suite is
held (tests/engine/hold_ci_suite.py) is SIGKILLed with its suite; once no live worker is left, a runner with a
short stale window notices the stopped heartbeat, marks the step and run interrupted, and a retry finishes.
"""
from __future__ import annotations

import re
import signal
from collections import Counter
from dataclasses import replace

import pytest

from engine import pipeline
from engine.lab import Lab
from engine.states import RESTING
from tests.conftest import (
    alive,
    cli_env,
    group_members,
    kill_group,
    make_settings,
    start_worker,
    suites_of,
    wait_until,
)

pytestmark = pytest.mark.postgres
CI = [s.name for s in pipeline.STEPS if s.stage == "CI"]
STARTED = re.compile(r"^started (\w+) \(attempt (\d+)\) on (\S+)$")


@pytest.fixture
def pg_lab(pg_url, tmp_path, mlflow_template):
    """A Lab (runner not started) over a fresh PostgreSQL database; its settings are shared with workers."""
    lab = Lab(make_settings(tmp_path / "lab", pg_url, mlflow_template))
    yield lab
    lab.close()


@pytest.fixture
def workers(pg_lab, tmp_path):
    """Start `python -m engine worker` processes on the lab's database; all are killed afterwards."""
    started = []

    def start(n: int, **extra_env: str):
        env = {**cli_env(pg_lab.settings), **extra_env}
        for _ in range(n):
            started.append(start_worker(env, tmp_path / f"worker-{len(started)}.log"))
        return started[-n:]

    yield start
    for proc in started:
        kill_group(proc, signal.SIGTERM)
    for proc in started:  # its warm pytest helper was SIGKILLed with the group: wait for the kernel to end it
        wait_until(lambda: group_members(proc.pid) == [], timeout=30, what=f"the processes of worker {proc.pid} to end")


def _statuses(lab: Lab, run_ids: list[int]) -> list[str]:
    return [lab.store.get_run(r).status for r in run_ids]


def test_two_workers_run_every_step_exactly_once(pg_lab, workers, tmp_path):
    procs = workers(2)
    run_ids = [pg_lab.commit(seed=30 + i, message=f"scale-out {i}") for i in range(5)]
    wait_until(lambda: all(s in RESTING for s in _statuses(pg_lab, run_ids)), interval=0.5,
               what="5 runs to rest")
    assert all(p.poll() is None for p in procs), "a worker exited early: " + " | ".join(
        (tmp_path / f"worker-{i}.log").read_text()[-2000:] for i in range(2))
    assert _statuses(pg_lab, run_ids) == ["ci_complete"] * 5

    seen_workers = set()
    for run_id in run_ids:
        steps = {s.name: s for s in pg_lab.store.steps_of(run_id)}
        for name, step in steps.items():
            assert step.attempt == (1 if name in CI else 0), (run_id, name, step.attempt)
        starts = [m.groups() for line in pg_lab.logs(run_id) if (m := STARTED.match(line["message"]))]
        assert Counter(name for name, _, _ in starts) == Counter(CI), (run_id, starts)
        for name, attempt, worker in starts:
            assert attempt == "1" and worker == steps[name].worker, (run_id, name)
            seen_workers.add(worker)
    assert 1 <= len(seen_workers) <= 2
    if len(seen_workers) < 2:  # both usually take part; with 2 cores one may win every claim
        print(f"only one worker took part: {seen_workers}")


def test_a_killed_workers_step_is_interrupted_then_retried(pg_lab, workers, tmp_path):
    held = tmp_path / "suite-held"
    (proc,) = workers(1, PYTEST_ADDOPTS="-p tests.engine.hold_ci_suite", LAB_TEST_HOLD_FILE=str(held))
    run_id = pg_lab.commit(seed=41, message="crash")
    wait_until(held.exists, what="the ci_tests suite to start (and hold)")
    running = pg_lab.store.step(run_id, "ci_tests")
    suite = int(held.read_text())
    # ci_tests runs pytest in a child of the worker's warm helper, in a process group of its own: kill the
    # worker's group, as a crashed host would, and the helper and its child die with it
    assert running.status == "running" and suite in suites_of(proc)
    kill_group(proc, signal.SIGKILL)
    wait_until(lambda: group_members(proc.pid) == [] and not alive(suite), timeout=30,
               what="the worker's processes to die")

    # No live worker is left, so a short stale window cannot mistake one for dead.
    reaper = Lab(replace(pg_lab.settings, stale_seconds=2.0))
    try:
        def reaped():
            reaper.runner.tick()  # reaps stale steps (and may pick up anything the dead worker left queued)
            statuses = [s.status for s in pg_lab.store.steps_of(run_id)]
            return pg_lab.store.get_run(run_id).status == "interrupted" and "running" not in statuses
        wait_until(reaped, timeout=120, interval=0.2, what="the run and every step it was running interrupted")
        reaper.runner.run_until_idle()
    finally:
        reaper.close()

    step = pg_lab.store.step(run_id, "ci_tests")
    assert step.status == "interrupted" and step.attempt == 1
    assert running.worker in step.error and "stopped heartbeating" in step.error
    assert step.finished_at - step.heartbeat_at >= 2.0  # only once stale
    notices = [x["message"] for x in pg_lab.logs(run_id, "ci_tests") if x["message"].startswith("interrupted:")]
    assert notices and notices[0].endswith(f"(noticed by {reaper.runner.worker_id})")
    steps = {s.name: s.status for s in pg_lab.store.steps_of(run_id)}
    assert not [n for n, s in steps.items() if s in ("pending", "queued", "running")], steps

    assert pg_lab.retry(run_id, by="tester") == "ci_tests"
    pg_lab.runner.run_until_idle()
    run = pg_lab.run(run_id)
    assert run.status == "ci_complete"
    steps = {s.name: s for s in run.steps}
    assert (steps["ci_tests"].status, steps["ci_tests"].attempt) == ("succeeded", 2)
    assert steps["ci_tests"].worker == pg_lab.runner.worker_id
    assert steps["commit_received"].attempt == 1 and steps["commit_received"].worker == running.worker
    assert all(steps[n].status == "succeeded" for n in CI)
