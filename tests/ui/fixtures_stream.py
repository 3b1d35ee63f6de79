"""Fixtures for the Claims panel and Drift page tests: a lab with a champion whose stream only the test drives.

Built on fixtures_history's played lifecycle (champion v1, staging v2). The app's stream job waits an hour before
its first tick, so claims exist only where a test made them with `producer.stream.produce(n)`.
"""
from __future__ import annotations

import pytest


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
