"""One read per server, not per visitor: the lab as the dashboard's sessions see it, read through a shared cache.

Every session of a server shows the same lab, so a read (the run list, a run with its steps, the workers, the
stream's state) is made at most once per `ttl` seconds per server process, by whichever session asks first; the
others read memory. Concurrent askers of the same read wait for the one that makes it (single flight) instead of
each asking the database. Staleness is bounded: a value is at most `ttl` seconds old, and an action taken through
this process (commit, approve, ...) drops every cached value, so the person who acted sees its result at once.
Callers get their own copy of a value, so nothing one session does to it leaks into another's page.

A database outage is logged once when a read or an action first meets it and once when a read succeeds again
(DATABASE), however many visitors' pages and timers meet it meanwhile: ui/errors.py logs no database error itself.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable

from engine.outage import Outage, is_outage

# Reads the pages make, by the object they are made on ("" is the Lab itself).
READS = {
    "": frozenset({"runs", "run", "workers", "champion_history", "latest_change", "failure_modes", "rollback_target",
                   "allowed_actions", "logs", "steps_for_runs", "audit", "claims_sample"}),
    "stream": frozenset({"status", "state", "snapshots", "claims"}),
}
# Calls that neither read shared state nor change it (each visitor's own claim; MLflow reads the pages cache
# themselves, ui/common.py): straight through, nothing cleared.
PASSTHROUGH = frozenset({"score", "mlflow_runs", "mlflow_run", "artifact", "model_versions", "alias_version",
                         "mlflow_experiment_id"})  # MLflow reads: the pages cache those themselves
MAX_ENTRIES = 512  # distinct reads kept (log pages, run ids); the oldest go first
# The lab's database as this server's pages meet it: one warning when it goes, one when it is back.
DATABASE = Outage("the lab's database", meanwhile="pages say so and try again at their next refresh")


def watched(call: Callable[[], Any], began: float | None = None) -> Any:
    """`call()`, telling DATABASE whether the database answered it."""
    began = time.monotonic() if began is None else began
    try:
        value = call()
    except Exception as exc:
        if is_outage(exc):
            DATABASE.failed(exc)
        raise
    DATABASE.ok(began)
    return value


class ReadCache:
    """A process-wide memo with a time-to-live and one maker per key."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._values: dict[str, tuple[float, Any]] = {}
        self._making: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.made = 0  # reads that reached the lab (for tests and the benchmark)

    def get(self, key: str, make: Callable[[], Any]) -> Any:
        """A copy of the value under `key`, made by `make()` when missing or older than the ttl."""
        hit = self._fresh(key)
        if hit is None:
            with self._lock:
                maker = self._making.setdefault(key, threading.Lock())
            with maker:  # one session makes it; the rest wait here and find it made
                hit = self._fresh(key)
                if hit is None:
                    hit = (make(),)
                    self._store(key, hit[0])
        return copy.deepcopy(hit[0])

    def clear(self) -> None:
        """Forget every value (an action changed the lab)."""
        with self._lock:
            self._values.clear()

    def _fresh(self, key: str) -> tuple | None:
        entry = self._values.get(key)
        if entry is not None and time.monotonic() - entry[0] < self.ttl:
            return (entry[1],)
        return None

    def _store(self, key: str, value: Any) -> None:
        with self._lock:
            self.made += 1
            self._values[key] = (time.monotonic(), value)
            if len(self._values) > MAX_ENTRIES:
                for old in sorted(self._values, key=lambda k: self._values[k][0])[:MAX_ENTRIES // 4]:
                    del self._values[old]
                    self._making.pop(old, None)


class SharedLab:
    """A Lab whose reads go through a ReadCache; its actions go straight to the Lab and then clear the cache."""

    def __init__(self, lab, ttl: float = 1.0, cache: ReadCache | None = None, prefix: str = ""):
        self._target, self._prefix = (getattr(lab, prefix) if prefix else lab), prefix
        self._lab = lab
        self.cache = cache or ReadCache(ttl)

    def __getattr__(self, name: str):
        if not self._prefix and name in READS:
            return SharedLab(self._lab, cache=self.cache, prefix=name)
        value = getattr(self._target, name)
        if not callable(value):
            return value
        if name in READS[self._prefix]:
            return lambda *args, **kwargs: self.cache.get(repr((self._prefix, name, args, sorted(kwargs.items()))),
                                                          lambda: watched(lambda: value(*args, **kwargs)))
        if name.startswith("_") or name in PASSTHROUGH:
            return value

        def act(*args, **kwargs):
            try:
                return watched(lambda: value(*args, **kwargs))
            finally:
                self.cache.clear()  # refused or not: the next read shows the lab as it is now
        return act

    @property
    def lab(self):
        """The Lab underneath (for what must not be cached)."""
        return self._lab
