"""A busy server says so: at most a few full page runs at once, and a visitor whose page waits for one is told;
and page runs yield the CPU to the steps of the worker the server supervises (yield_to_steps).

Page runs share one interpreter. Thirty arrivals drawn all at once take turns on the GIL and every visitor sees
a blank page until the slowest finishes; drawn a couple at a time, each is done in a fraction of a second, and the
ones in line see why they wait instead of nothing. Fragment reruns (live panels) do not take a slot: they are
short, and a live panel must not stall behind arrivals.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

import streamlit as st
from streamlit.logger import get_logger

from ui import icons

AT_ONCE = 2            # full page runs drawn together (one per core of the machine we size for)
NOTICE_EVERY = 1.0     # seconds between updates of the waiting notice (each update lets a rerun request stop it)
FIRST_RUN = "_first_page_run_done"
FIRST_RUN_LOG = "first page run of a session:"  # the line's fixed start, which bench/visitors.py looks for
log = get_logger("lab.busy")
_slots = threading.BoundedSemaphore(AT_ONCE)
_waiting = 0
_count_lock = threading.Lock()


@contextmanager
def page_slot():
    """Hold one of the server's page-run slots while the page draws; show a notice while waiting for one. A
    session's first page run is timed in the server log (bench/visitors.py reads it)."""
    began = time.monotonic()
    notice = None if _slots.acquire(blocking=False) else _wait_for_slot()
    waited = time.monotonic() - began
    try:  # from here the slot is held: whatever happens, it is given back
        if notice is not None:
            notice.empty()
        yield
    finally:
        _slots.release()
    if FIRST_RUN not in st.session_state:
        st.session_state[FIRST_RUN] = True
        log.info("%s %.3f s (%.3f s in line for a slot)", FIRST_RUN_LOG, time.monotonic() - began, waited)


def _wait_for_slot():
    """Block until a slot is free, telling the visitor why; returns the notice to clear. A rerun request stops
    the wait at the next notice update (Streamlit raises there), before a slot is taken."""
    global _waiting
    with _count_lock:
        _waiting += 1
    notice = st.empty()
    try:
        while not _slots.acquire(timeout=NOTICE_EVERY):
            notice.info(f"The lab is busy drawing pages for {_waiting + AT_ONCE - 1} other visitors; yours is in "
                        "line and starts in a moment. Nothing is lost: keep this tab open.", icon=icons.HOURGLASS)
    finally:
        with _count_lock:
            _waiting -= 1
    return notice


def yield_to_steps(nice: int) -> None:
    """Give this thread, and every thread it starts from now on, the CPU priority `nice` (Linux threads inherit
    their creator's). Called on the server's event loop once its worker's supervisor runs: the loop starts every
    page run's thread, so all pages then run below the worker's steps, while the supervisor's own thread, started
    before, keeps starting the worker at full priority. On a core both want, a step keeps most of it (a watched
    run is not slowed by its watchers) and pages wait; on an idle core pages run as before."""
    if nice > 0:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, max(nice, os.getpriority(os.PRIO_PROCESS, thread)))
