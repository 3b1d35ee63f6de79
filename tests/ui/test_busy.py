"""The busy server: page runs beyond the slots wait in line, are told why, and never leak a slot."""
from __future__ import annotations

import threading

import pytest

from tests.conftest import wait_until
from ui import busy


class Notice:
    def __init__(self, log):
        self.log = log

    def info(self, text, icon=None):
        self.log.append(text)

    def empty(self):
        self.log.append("cleared")


@pytest.fixture
def notices(monkeypatch):
    log: list[str] = []
    monkeypatch.setattr(busy.st, "empty", lambda: Notice(log))
    monkeypatch.setattr(busy, "NOTICE_EVERY", 0.05)
    return log


def _hold_all_slots(release: threading.Event) -> list[threading.Thread]:
    held = threading.Barrier(busy.AT_ONCE + 1)

    def hold():
        with busy.page_slot():
            held.wait()
            release.wait(60)
    threads = [threading.Thread(target=hold) for _ in range(busy.AT_ONCE)]
    for t in threads:
        t.start()
    held.wait(60)
    return threads


def test_a_page_run_beyond_the_slots_waits_says_why_and_then_draws(notices):
    release, drew = threading.Event(), threading.Event()
    holders = _hold_all_slots(release)

    def late_visitor():
        with busy.page_slot():
            drew.set()
    late = threading.Thread(target=late_visitor)
    late.start()
    wait_until(lambda: notices, what="the waiting notice")
    assert not drew.is_set()
    assert "The lab is busy drawing pages for 2 other visitors" in notices[0]
    release.set()
    late.join(60)
    assert drew.is_set() and notices[-1] == "cleared"
    for t in holders:
        t.join(60)
    assert busy._waiting == 0
    for _ in range(busy.AT_ONCE):  # every slot came back
        assert busy._slots.acquire(blocking=False)
    for _ in range(busy.AT_ONCE):
        busy._slots.release()


def test_a_page_that_fails_gives_its_slot_back(notices):
    for _ in range(busy.AT_ONCE + 1):
        with pytest.raises(RuntimeError):
            with busy.page_slot():
                raise RuntimeError("the page failed")
    assert notices == []


def _nice_of(thread_id: int) -> int:
    import os
    return os.getpriority(os.PRIO_PROCESS, thread_id)


def test_yielding_to_steps_lowers_the_thread_and_the_threads_it_starts_but_no_other():
    """The server's event loop yields once; every page run's thread, which the loop starts later, inherits it.
    Threads started before (the worker's supervisor, which starts the worker) keep their priority."""
    seen = {}

    def record(name: str) -> None:
        seen[name] = _nice_of(threading.get_native_id())

    def loop() -> None:
        before = threading.Thread(target=lambda: (started.wait(), record("started before")))
        before.start()
        busy.yield_to_steps(7)
        record("loop")
        after = threading.Thread(target=record, args=("started after",))
        after.start()
        after.join()
        started.set()
        before.join()

    started = threading.Event()
    base = _nice_of(threading.get_native_id())
    thread = threading.Thread(target=loop)
    thread.start()
    thread.join()
    assert seen == {"loop": max(7, base), "started after": max(7, base), "started before": base}
    assert _nice_of(threading.get_native_id()) == base  # the caller's own thread only, not the process


def test_page_nice_is_read_from_the_environment_and_zero_turns_it_off():
    from engine import BadInput
    from engine.config import Settings
    assert Settings.from_env({}).page_nice == 5
    assert Settings.from_env({"LAB_PAGE_NICE": "0"}).page_nice == 0
    assert Settings.from_env({"LAB_PAGE_NICE": "40"}).page_nice == 19  # the kernel's lowest priority
    with pytest.raises(BadInput, match="LAB_PAGE_NICE='-3' must be 0 or more"):
        Settings.from_env({"LAB_PAGE_NICE": "-3"})
    before = _nice_of(threading.get_native_id())
    busy.yield_to_steps(0)
    assert _nice_of(threading.get_native_id()) == before
