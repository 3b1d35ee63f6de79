"""The embedded worker's supervisor: one real `python -m engine worker` per data directory, restarted when it
dies, ended with the supervisor, taken over when the supervisor that held it stops."""
from __future__ import annotations

import os
import signal

import pytest

from engine.supervisor import Supervisor
from tests.conftest import alive, cli_env, wait_until


@pytest.fixture
def supervised(tmp_path, mlflow_template):
    """Make supervisors over one lab (test settings); every one is stopped after the test."""
    from tests.conftest import make_settings
    settings = make_settings(tmp_path / "lab", None, mlflow_template)
    made: list[Supervisor] = []

    def make() -> Supervisor:
        made.append(Supervisor(settings, env=cli_env(settings)).start())
        return made[-1]

    yield make
    for sup in made:
        sup.stop()


def _live_workers(lab) -> list[dict]:
    return [w for w in lab.workers() if w["alive"]]


def _started(sup: Supervisor) -> int:
    wait_until(lambda: sup.proc is not None and sup.proc.poll() is None, what="the worker to start")
    return sup.proc.pid


def test_one_worker_per_data_directory_and_the_other_supervisor_takes_over(supervised):
    from engine import Lab
    first, second = supervised(), supervised()
    wait_until(lambda: first.holds_lock or second.holds_lock, what="a supervisor to take the lock")
    holder, waiting = (first, second) if first.holds_lock else (second, first)
    pid = _started(holder)
    lab = Lab(holder.settings)
    try:
        wait_until(lambda: _live_workers(lab), what="the worker to heartbeat")
        assert not waiting.holds_lock and waiting.proc is None
        assert [int(w["id"].split(":")[1]) for w in _live_workers(lab)] == [pid]

        holder.stop()  # the app holding the data directory stops: its worker ends, the other app starts one
        assert not alive(pid)
        new_pid = _started(waiting)
        assert new_pid != pid and waiting.holds_lock
    finally:
        lab.close()


def test_a_worker_that_dies_is_restarted_and_stop_ends_it(supervised):
    sup = supervised()
    pid = _started(sup)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: sup.starts == 2 and sup.proc.poll() is None, what="the worker to be restarted")
    restarted = sup.proc.pid
    assert restarted != pid
    sup.stop()
    assert not alive(restarted)
    assert not sup.holds_lock
