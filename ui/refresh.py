"""How often a live panel redraws: a budget of redraws a second for the whole server, shared by whoever watches.

A moving run's DAG and inspector redraw on a fragment timer in every session that shows them, and each redraw
costs the server the same whoever asks. One visitor sees it every second; when a class watches, the interval grows
so that the server spends at most BUDGET redraws a second on live panels (10 watchers: every 2 s; from 25 on: every
SLOWEST s), and the pipeline's own steps keep the CPU they need. A session counts as watching for WATCHING_FOR
seconds after it last asked.
"""
from __future__ import annotations

import math
import threading
import time

from streamlit.runtime.scriptrunner import get_script_run_ctx

BUDGET = 5.0          # live-panel redraws a second, summed over all sessions
FASTEST, SLOWEST = 1.0, 5.0
WATCHING_FOR = 15.0   # seconds a session counts as watching after it last asked

_lock = threading.Lock()
_asked: dict[str, float] = {}


def interval() -> float:
    """Seconds between two redraws of a live panel for the session of this script run."""
    ctx = get_script_run_ctx()
    session = ctx.session_id if ctx else None
    now = time.monotonic()
    with _lock:
        if session is not None:
            _asked[session] = now
        for key in [k for k, at in _asked.items() if now - at > WATCHING_FOR]:
            del _asked[key]
        watching = max(1, len(_asked))
    return min(SLOWEST, max(FASTEST, math.ceil(watching / BUDGET)))
