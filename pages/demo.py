"""Demo autopilot: one button plays the whole lifecycle unattended, narrating each step as it happens."""
import hmac
import os
import time

import streamlit as st

from engine import Refused
from engine import autopilot as ap
from ui import icons
from ui.common import attempt, get_lab, md_escape
from ui.pagekit import dashboard_link, live, name_input

# What lab.reset() removed, in the order shown.
REMOVED = {"runs": "runs", "steps": "steps", "logs": "log lines", "run_origin": "run origins",
           "audit": "audit entries", "failure_modes": "failure-mode toggles", "alias_history": "alias moves",
           "stream_claims": "streamed claims", "stream_snapshots": "stream snapshots",
           "stream_state": "stream settings", "mlflow_runs": "MLflow runs"}
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


def reset_lab() -> None:
    """Operator only: wipe the lab. In demo mode it needs LAB_OPERATOR_KEY; elsewhere a typed "reset" and a name."""
    lab = get_lab()
    removed = st.session_state.pop("demo_reset_removed", None)
    if removed is not None:
        labels = {**REMOVED, **{what: what.replace("_", " ") for what in removed if what not in REMOVED}}
        gone = ", ".join(f"{removed[what]:,} {label}" for what, label in labels.items() if removed.get(what))
        st.success(f"The lab was reset. Removed: {gone or 'nothing'}.", icon=icons.DONE)
    with st.expander("Reset the lab (operator)", icon=icons.RESET):
        st.caption("Deletes every run with its steps and logs, the audit trail, failure modes, the live stream, "
                   "the alias history and every MLflow run and registered model version. It cannot be undone.")
        demo = lab.settings.demo
        expected = os.environ.get("LAB_OPERATOR_KEY", "")
        if demo and not expected:
            st.info("The reset is disabled on this deployment: no operator key is set. To enable it, set "
                    "LAB_OPERATOR_KEY in the dashboard's environment (with docker compose: in .env) to a long "
                    "random value and restart the dashboard.", icon=icons.OPERATOR)
            return
        with st.form("demo_reset", border=False):
            if demo:
                key = st.text_input("Operator key", type="password", key="demo_reset_key")
            else:
                by = name_input("demo_reset_by")
                typed = st.text_input("Type reset to confirm", key="demo_reset_confirm", max_chars=20)
            submitted = st.form_submit_button("Reset the lab", icon=icons.RESET, type="primary")
    if not submitted:
        return
    if demo and not hmac.compare_digest(key.encode(), expected.encode()):
        st.error("That is not the operator key: nothing was reset. The key is the value of LAB_OPERATOR_KEY on "
                 "this deployment.", icon=icons.REFUSED)
        return
    if not demo and typed.strip().lower() != "reset":
        st.error("Type the word reset in the confirmation field: nothing was reset.", icon=icons.REFUSED)
        return
    ok, removed = attempt(lab.reset, "operator" if demo else by)
    if ok:
        st.cache_data.clear()  # every page re-reads the lab, MLflow included
        st.session_state["demo_reset_removed"] = removed
        st.rerun()


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
st.divider()
reset_lab()
