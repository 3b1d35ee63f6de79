"""ui/refresh.py: live panels redraw every second for one watcher and share a fixed budget when a class watches."""
from types import SimpleNamespace

import pytest

from ui import refresh


@pytest.fixture
def sessions(monkeypatch):
    """ask(session) -> the interval that session gets; the clock is the test's."""
    clock = {"now": 1000.0}
    monkeypatch.setattr(refresh, "_asked", {})
    monkeypatch.setattr(refresh.time, "monotonic", lambda: clock["now"])

    def ask(session: str) -> float:
        monkeypatch.setattr(refresh, "get_script_run_ctx", lambda: SimpleNamespace(session_id=session))
        return refresh.interval()
    ask.clock = clock
    return ask


def test_one_watcher_sees_every_second(sessions):
    assert sessions("a") == refresh.FASTEST == 1.0


def test_a_class_shares_the_budget_and_the_interval_is_capped(sessions):
    for i in range(9):
        sessions(f"s{i}")
    assert sessions("s9") == 2.0  # 10 watchers, 5 redraws a second
    for i in range(10, 40):
        sessions(f"s{i}")
    assert sessions("s40") == refresh.SLOWEST


def test_sessions_that_stopped_watching_no_longer_count(sessions):
    for i in range(10):
        sessions(f"s{i}")
    sessions.clock["now"] += refresh.WATCHING_FOR + 1
    assert sessions("s0") == 1.0


def test_outside_a_server_session_it_is_the_fastest(monkeypatch):
    monkeypatch.setattr(refresh, "_asked", {})
    monkeypatch.setattr(refresh, "get_script_run_ctx", lambda: None)
    assert refresh.interval() == 1.0
