"""Small helpers shared by the history, registry, demo and walkthrough pages: links, names, live refresh."""
from __future__ import annotations

import re
from typing import Callable

import streamlit as st

from engine.config import LIMITS
from engine.lab import MAX_RUN_ID
from ui import errors, icons

DASHBOARD = "pages/dashboard.py"
REFRESH_SECONDS = 1.0
NAME_KEY = "lab_user_name"  # not a widget key: widget state is dropped when its page is left, this is not


def dashboard_link(run_id: int | None, step: str | None = None, label: str | None = None) -> None:
    """A link to the dashboard opened on `run_id` (and `step`)."""
    params = {k: str(v) for k, v in (("run", run_id), ("step", step)) if v is not None}
    text = label or (f"Open run {run_id} in the dashboard" if run_id else "Open the dashboard")
    st.page_link(DASHBOARD, label=text, icon=icons.DASHBOARD, query_params=params or None)


def note_visit(path: str) -> None:
    """Called by the page script before each full page run: remember whether it is the first run of a visit to the
    page at `path` (a new tab, a link from another page, the menu)."""
    ss = st.session_state
    # Two keys: `_visiting` names the page being visited, across its runs; `_arrived` is this run's answer, kept
    # because by the time the page asks, `_visiting` already names it.
    ss["_arrived"], ss["_visiting"] = ss.get("_visiting") != path, path


def arrived() -> bool:
    """Whether this page run is the first of the visitor's visit to the page: only then can the URL say something
    the page did not write itself (a copied link, a link from another page). Later in the visit the browser sends
    the page's own URL back with every rerun it asks for, and that may be an older one: a click made while the
    page's newer address was on its way. Taking it for a link undid the click, or set the page one click late."""
    return st.session_state.get("_arrived", True)


def query_int(name: str, upper: int = MAX_RUN_ID) -> int | None:
    """A whole-number query parameter from 1 to `upper`, or None when absent or anything else."""
    return strict_int(st.query_params.get(name), upper)


def strict_int(text: str | None, upper: int = MAX_RUN_ID) -> int | None:
    """`text` as a whole number from 1 to `upper` when it is only ASCII digits (at most as many as `upper` has),
    else None. A URL is typed by strangers: isdigit() passes "²", which int() refuses; int() takes "1_000" and
    other scripts' digits, and refuses more than 4,300 digits."""
    if not isinstance(text, str) or not re.fullmatch(f"[0-9]{{1,{len(str(upper))}}}", text):
        return None
    value = int(text)
    return value if 1 <= value <= upper else None


def name_input(key: str, label: str = "Your name") -> str:
    """A name field that remembers what was typed across pages (it signs approvals and rollbacks)."""
    name = st.text_input(label, value=st.session_state.get(NAME_KEY, ""), key=key, max_chars=LIMITS["by"],
                         placeholder="e.g. Dana (recorded in the audit trail)")
    st.session_state[NAME_KEY] = name
    return name.strip()


def live(render: Callable[[], bool], active: bool, key: str) -> None:
    """Call `render` now; while `active`, re-run only it every second until it returns False (then the page)."""
    if not active:
        render()
        return

    @st.fragment(run_every=REFRESH_SECONDS, key=key)
    @errors.guard  # its timer reruns it alone, outside the page's guard; a failure shows here, the timer goes on
    def _refreshing() -> None:
        if not render():
            st.rerun()  # the whole page, so parts outside the fragment (ticks, buttons) catch up

    _refreshing()
