"""Whether the database answers: what counts as an outage, and one warning when it goes and one when it is back.

The runner (engine/runner.py) waits out an outage with the backoff below; the dashboard's shared reads (engine/
shared.py) only report it, once per outage, however many visitors' pages meet it.
"""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

log = logging.getLogger(__name__)
MAX_BACKOFF = 30.0


def is_outage(exc: BaseException) -> bool:
    """Whether `exc` means the database did not answer (as opposed to a bug or a refused change)."""
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)) or bool(
        getattr(exc, "connection_invalidated", False))


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (driver errors run to many lines)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


class Outage:
    """Whether the database answers: one warning when it stops, one when it is back, and a backoff between."""

    def __init__(self, what: str, meanwhile: str = "retrying with backoff, running steps keep their results"):
        self.what, self.meanwhile = what, meanwhile
        self._lock = threading.Lock()
        self.since: float | None = None       # monotonic time the outage began (None: no outage)
        self.steady_since = time.monotonic()  # since when every call has succeeded
        self._delay = 0.0
        self._next_try = 0.0

    def failed(self, exc: BaseException) -> None:
        """Record a failed call; warn once per outage."""
        with self._lock:
            now = time.monotonic()
            if self.since is None:
                self.since, self._delay = now, 0.5
                log.warning("%s is unreachable (%s); %s", self.what, first_line(exc), self.meanwhile)
            else:
                self._delay = min(self._delay * 2, MAX_BACKOFF)
            self._next_try = now + self._delay

    def ok(self, began: float) -> None:
        """Record a successful call that began at monotonic time `began`; say once that the outage is over.

        A call that began before the outage did (a slow one in another thread) proves nothing about now."""
        with self._lock:
            if self.since is not None and began >= self.since:
                log.warning("%s answers again after %.0f s", self.what, time.monotonic() - self.since)
                self.since, self.steady_since, self._delay = None, time.monotonic(), 0.0

    def wait(self) -> float:
        """Seconds until the next attempt is due (0 when there is no outage)."""
        return max(0.0, self._next_try - time.monotonic()) if self.since is not None else 0.0

    def steady_for(self) -> float:
        """Seconds the database has answered without a break (0 during an outage)."""
        return 0.0 if self.since is not None else time.monotonic() - self.steady_since
