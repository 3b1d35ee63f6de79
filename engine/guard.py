"""The public demo's guard (LAB_DEMO=1): one cap on active runs, pacing per visitor, and the operator key.

Strangers share one lab, so three things hold for all of them at once, whichever app process serves them:
- every action that queues work counts the active (queued or running) runs inside its own transaction, with the
  same count, and is refused at the cap;
- a visitor (their client address, else their browser session: ui/common.visitor) is paced per action, and the
  pacing lives in the store, so a page reload or another app process does not start it over;
- an action that changes the lab for everybody (failure modes, rollback, the stream's controls, stopping
  someone else's autopilot), done on a visitor's behalf, needs the operator key; wrong keys are limited per
  visitor and compared in constant time.
The CLI acts with no visitor: whoever runs it already has the server.
"""
from __future__ import annotations

import hashlib
import hmac
import math

from engine.errors import BadInput, Limited, Refused

OPERATOR_TRIES = 5          # wrong operator keys one visitor may try per OPERATOR_WINDOW
OPERATOR_WINDOW = 60.0      # seconds
MAX_KEY_LENGTH = 512
MAX_VISITOR_LENGTH = 120    # the store's column
WRONG_KEY = "wrong operator key"  # the visitor event a failed guess leaves
WHERE_THE_KEY_GOES = "enter it under Operator on the Demo autopilot page"


class Guard:
    """The demo's limits over one store; every check is a no-op outside demo mode."""

    def __init__(self, store, settings):
        self.store, self.settings = store, settings

    @property
    def on(self) -> bool:
        """Whether this lab is a public demo."""
        return self.settings.demo

    def capacity(self, conn) -> None:
        """Refused when the demo's active runs are at the cap; call inside the transaction that queues work."""
        if not self.on:
            return
        self.store.lock(conn, "active-runs")  # PostgreSQL: actions racing for the last slot count one at a time
        active = self.store.count_active_runs(conn)
        limit = self.settings.demo_max_active_runs
        if active >= limit:
            raise Limited(f"this demo runs at most {limit} queued or running pipeline runs at once and {active} "
                          "are in progress; wait for one to finish, then try again")

    def pace(self, conn, visitor: str | None, action: str, interval: float) -> None:
        """At most one `action` per `interval` seconds per visitor, recorded in the caller's transaction."""
        if not self.on or visitor is None:
            return
        visitor = _check_visitor(visitor)
        self.store.lock(conn, f"visitor:{visitor}")
        wait = self.store.visitor_wait(conn, visitor, action, 1, interval)
        if wait:
            raise Limited(f"this demo allows one {action} every {interval:g} s per visitor; "
                          f"try again in {math.ceil(wait)} s")
        self.store.add_visitor_event(conn, visitor, action)

    def operator(self, visitor: str | None, key: str | None, what: str) -> None:
        """Done for a visitor in demo mode, `what` changes the lab for everybody: Refused without the operator key."""
        if not self.on or visitor is None:
            return
        if not self.settings.operator_key:
            raise Refused(f"in this public demo {what} changes the lab for every visitor, so only the operator may "
                          "do it, and this deployment has no operator key (LAB_OPERATOR_KEY)")
        if not key:
            raise Refused(f"in this public demo {what} changes the lab for every visitor, so it needs the operator "
                          f"key: {WHERE_THE_KEY_GOES}")
        self.check_key(visitor, key)

    def check_key(self, visitor: str, key: str) -> None:
        """Refused unless `key` is the operator key; wrong keys are limited per visitor (OPERATOR_TRIES a window)."""
        visitor = _check_visitor(visitor)
        expected = self.settings.operator_key
        if not expected:
            raise Refused("this deployment has no operator key: set LAB_OPERATOR_KEY in the server's environment "
                          "to a long random value and restart it")
        if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
            raise BadInput(f"give the operator key as text of 1 to {MAX_KEY_LENGTH} characters")
        with self.store.tx() as c:
            self.store.lock(c, f"visitor:{visitor}")
            wait = self.store.visitor_wait(c, visitor, WRONG_KEY, OPERATOR_TRIES, OPERATOR_WINDOW)
            if wait:
                raise Refused(f"too many wrong operator keys: this demo allows {OPERATOR_TRIES} a minute per "
                              f"visitor; try again in {math.ceil(wait)} s")
            # Constant time, so the time a wrong guess takes says nothing about how much of it was right.
            if hmac.compare_digest(key.encode(), expected.encode()):
                return
            self.store.add_visitor_event(c, visitor, WRONG_KEY)  # committed: a refused guess still counts
        raise Refused(f"that is not the operator key, so nothing changed; this demo allows {OPERATOR_TRIES} wrong "
                      "keys a minute per visitor")


def _check_visitor(visitor: str) -> str:
    if not isinstance(visitor, str) or not 0 < len(visitor) <= MAX_VISITOR_LENGTH:
        raise BadInput(f"a visitor id is text of 1 to {MAX_VISITOR_LENGTH} characters")
    return visitor


def address_visitor(address: str) -> str:
    """The visitor id of a client address: hashed, so the store keeps who did what for an hour without the address."""
    return "ip:" + hashlib.sha256(address.encode()).hexdigest()[:24]
