"""Fixtures for the Claims panel and Drift page tests: a lab with a champion whose stream only the test drives.

Built on fixtures_history's played lifecycle (champion v1, staging v2, and the claims and snapshots its demo
streamed, the stream stopped). The app's stream job waits an hour before its first tick, so new claims appear only
where a test makes them with `producer.stream.produce(n)`.
"""
from __future__ import annotations

import pytest

# A rate (claims/s) at which nothing is ever due: the app's stream job ticks once as the app starts, and a stream a
# test turned on at this rate gives it nothing to produce, so only `produce(n)` makes claims.
STILL = 0.001


@pytest.fixture
def quiet_stream(monkeypatch):
    """The app's stream job waits an hour before its first tick: only the test produces claims."""
    monkeypatch.setenv("LAB_STREAM_TICK_SECONDS", "3600")


@pytest.fixture
def producer(lifecycle_lab, quiet_stream):
    """A Lab on the test's copy of the played lifecycle, to produce claims and read the stream's state."""
    from engine.lab import Lab
    lab = Lab(lifecycle_lab)
    yield lab
    lab.close()
