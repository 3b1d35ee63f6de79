"""Demo autopilot: one button plays the whole lifecycle unattended, narrating each step as it happens."""
import time

import streamlit as st

from engine import Refused
from engine import autopilot as ap
from ui import icons
from ui.common import get_lab, md_escape
from ui.pagekit import dashboard_link, live

ICONS = {"info": icons.NARRATE, "success": icons.DONE, "warning": icons.WARNING, "error": icons.ERROR}


def controls(session: dict | None) -> None:
    """Play (refused while a session plays, in any process) and Stop (asks every unfinished session to stop)."""
    lab = get_lab()
    playing = ap.is_active(session)
    play, stop, _ = st.columns([1, 1, 3])
    if play.button("Play the lifecycle", icon=icons.PLAY, type="primary", disabled=playing, key="demo_play"):
        try:
            ap.Autopilot(lab).start()
        except Refused as exc:
            st.error(str(exc))
            return
        st.rerun()
    if stop.button("Stop", icon=icons.STOP, disabled=not playing, key="demo_stop"):
        ap.request_stop(lab)
        st.rerun()


def narration() -> bool:
    """The latest session's narration and the runs it created; True while it still plays."""
    lab = get_lab()
    session = ap.latest_session(lab)
    if session is None:
        st.info("Nothing played yet. Press **Play the lifecycle** and watch it narrate.")
        return False
    playing = ap.is_active(session)
    started = time.strftime("%H:%M:%S", time.localtime(session["started_at"]))
    state = "playing…" if playing else (session["outcome"] or "ended without finishing (its process stopped)")
    st.caption(f"Session {session['id']} by {md_escape(session['by'])}, started {started}: **{state}**")
    lines = [f"`{time.strftime('%H:%M:%S', time.localtime(line['ts']))}` {ICONS.get(line['level'], '')} "
             f"{md_escape(line['message'])}" for line in ap.narration(lab, session["id"])]
    with st.container(height=460 if len(lines) > 12 else "content", border=True, autoscroll=True):
        st.markdown("  \n".join(lines))
    runs = ap.session_runs(lab, session["id"])
    if runs:
        st.markdown("**Runs it created**")
        for run_id in runs:
            dashboard_link(run_id)
    return playing


st.title("Demo autopilot")
st.markdown(
    "The autopilot plays the whole lifecycle for you, through the same actions a person uses: a fake commit, "
    "CI, **Continue to CD**, an approval signed *demo*, deployment and promotion; then a second commit through "
    "the same path; then a **rollback** of production to the first model. It takes about a minute. Everything it "
    "does stays in the run history, the registry and the audit trail, like any other run. Stop it at any "
    "moment: runs it already started finish on their own, and you can carry them on from the dashboard.")
st.caption("If a failure mode is on, a run will fail on the way: the autopilot says where and why, and stops.")
current = ap.latest_session(get_lab())
controls(current)
st.divider()
live(narration, ap.is_active(current), "demo_narration")
