"""The shared reads: one read per server process per interval, single flight, copies, cleared by an action."""
from __future__ import annotations

import threading

from engine.shared import ReadCache, SharedLab


class FakeStream:
    def __init__(self):
        self.calls = 0

    def status(self):
        self.calls += 1
        return {"on": False, "calls": self.calls}


class FakeLab:
    """Counts reads; `commit` is an action."""

    def __init__(self):
        self.reads, self.stream, self.settings = 0, FakeStream(), object()
        self.gate = threading.Event()
        self.gate.set()

    def runs(self, limit=50):
        self.gate.wait(30)
        self.reads += 1
        return [{"id": 1, "status": "queued", "limit": limit}]

    def commit(self, message=""):
        return 2

    def score(self, claim):
        return {"p": 0.5}


def test_sessions_share_one_read_until_the_ttl_passes():
    fake = FakeLab()
    shared = SharedLab(fake, ttl=3600)
    first = shared.runs(limit=50)
    for _ in range(10):
        assert shared.runs(limit=50) == first
    assert fake.reads == 1
    shared.runs(limit=5)  # other arguments are another read
    assert fake.reads == 2
    expired = SharedLab(fake, ttl=0)
    expired.runs(), expired.runs()
    assert fake.reads == 4


def test_a_session_gets_its_own_copy():
    shared = SharedLab(FakeLab(), ttl=3600)
    shared.runs()[0]["status"] = "scribbled on by one session"
    assert shared.runs()[0]["status"] == "queued"


def test_concurrent_askers_wait_for_one_read():
    fake = FakeLab()
    shared = SharedLab(fake, ttl=3600)
    fake.gate.clear()
    got = []
    threads = [threading.Thread(target=lambda: got.append(shared.runs())) for _ in range(8)]
    for t in threads:
        t.start()
    fake.gate.set()
    for t in threads:
        t.join(30)
    assert len(got) == 8 and fake.reads == 1


def test_an_action_clears_every_cached_read_and_a_score_clears_nothing():
    fake = FakeLab()
    shared = SharedLab(fake, ttl=3600)
    shared.runs(), shared.stream.status()
    assert shared.score({}) == {"p": 0.5}
    shared.runs(), shared.stream.status()
    assert (fake.reads, fake.stream.calls) == (1, 1)
    assert shared.commit(message="x") == 2
    shared.runs(), shared.stream.status()
    assert (fake.reads, fake.stream.calls) == (2, 2)
    assert shared.settings is fake.settings  # attributes pass through


def test_the_cache_stays_bounded():
    cache = ReadCache(ttl=3600)
    for i in range(2000):
        cache.get(str(i), lambda: i)
    assert len(cache._values) <= 512


def test_a_database_outage_is_logged_once_when_it_goes_and_once_when_it_is_back(monkeypatch, caplog):
    import logging

    import sqlalchemy as sa

    from engine import shared
    from engine.outage import Outage
    monkeypatch.setattr(shared, "DATABASE", Outage("the lab's database", meanwhile="pages say so"))
    fake = FakeLab()
    down = {"now": True}

    def runs(limit=50):
        if down["now"]:
            raise sa.exc.OperationalError("SELECT 1", {}, Exception("could not connect to server"))
        return []
    fake.runs = runs
    lab = SharedLab(fake, ttl=0)
    with caplog.at_level(logging.WARNING, logger="engine.outage"):
        for _ in range(20):  # twenty page refreshes of several visitors meet it
            try:
                lab.runs()
            except sa.exc.OperationalError:
                pass
        down["now"] = False
        for _ in range(5):
            assert lab.runs() == []
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2, messages
    assert messages[0].startswith("the lab's database is unreachable") and "answers again" in messages[1]
