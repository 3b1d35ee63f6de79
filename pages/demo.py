"""Demo autopilot: one button plays the whole lifecycle unattended, narrating each step as it happens.

In the public demo (LAB_DEMO=1) the Operator section is where the operator key is entered, once per browser
session; it unlocks what changes the lab for every visitor (engine/guard.py) and the reset.
"""
import time

import streamlit as st

from engine import autopilot as ap
from engine.guard import MAX_KEY_LENGTH, OPERATOR_TRIES
from ui import icons
from ui.common import OPERATOR_KEY, acting, attempt, get_lab, md_escape, operator_key, visitor
from ui.pagekit import dashboard_link, live, name_input

# What lab.reset() removed, in the order shown.
REMOVED = {"runs": "runs", "steps": "steps", "logs": "log lines", "run_origin": "run origins",
           "audit": "audit entries", "failure_modes": "failure-mode toggles", "alias_history": "alias moves",
           "stream_claims": "streamed claims", "stream_snapshots": "stream snapshots",
           "stream_state": "stream settings", "mlflow_runs": "MLflow runs", "model_versions": "model versions",
           "logged_models": "logged models"}
ICONS = {"info": icons.NARRATE, "success": icons.DONE, "warning": icons.WARNING, "error": icons.ERROR}
STOP_ASKED = "_demo_stop_asked"  # what Stop asked for, shown once after the rerun it causes
SHARED = ("turning failure modes on or off, rolling production back, the live stream's controls, stopping an "
          "autopilot someone else started, and the reset")


def controls(session: dict | None) -> None:
    """Play (refused while a session plays, in any process) and Stop (the session its visitor started)."""
    lab = get_lab()
    playing = ap.is_active(session)
    play, stop, _ = st.columns([1, 1, 3])
    if play.button("Play the lifecycle", icon=icons.PLAY, type="primary", disabled=playing, key="demo_play"):
        if attempt(ap.Autopilot(lab, visitor=visitor(), retrain=True).start)[0]:
            st.rerun()
    why_not = _why_not_stop(lab, session) if playing else None
    if stop.button("Stop", icon=icons.STOP, disabled=not playing or bool(why_not), help=why_not, key="demo_stop"):
        ok, asked = attempt(ap.stop_session, lab, session["id"], **acting())
        if ok:
            st.session_state[STOP_ASKED] = asked
            st.rerun()
    asked = st.session_state.pop(STOP_ASKED, None)
    if asked:
        st.info(asked, icon=icons.STOP)


def _why_not_stop(lab, session: dict) -> str | None:
    """In the public demo a visitor stops only the session they started, unless they are the operator."""
    if not lab.settings.demo or operator_key() or session.get("visitor") == visitor():
        return None
    return ("Another visitor started this session: only they, or the operator, can stop it. It ends by itself "
            "after about a minute.")


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


def operator() -> None:
    """The operator's section: the key (demo mode, once per browser session), then the reset."""
    lab = get_lab()
    removed = st.session_state.pop("demo_reset_removed", None)
    if removed is not None:
        labels = {**REMOVED, **{what: what.replace("_", " ") for what in removed if what not in REMOVED}}
        gone = ", ".join(f"{removed[what]:,} {label}" for what, label in labels.items() if removed.get(what))
        st.success(f"The lab was reset. Removed: {gone or 'nothing'}.", icon=icons.DONE)
    demo = lab.settings.demo
    with st.expander("Operator", icon=icons.OPERATOR, expanded=bool(demo and operator_key())):
        if not demo:
            st.caption("This lab is not a public demo (LAB_DEMO is off): every control is open to everyone.")
            reset_form(lab, demo=False)
            return
        st.markdown(f"This is a public demo shared by every visitor. Anyone can commit, continue, approve, retry, "
                    f"play the autopilot and stop the session they started; what changes the lab for everybody "
                    f"({SHARED}) needs the operator key.")
        if not lab.settings.operator_key:
            st.info("The operator's controls are disabled on this deployment: no operator key is set. To enable "
                    "them, set LAB_OPERATOR_KEY in the dashboard's environment (with docker compose: in .env) to a "
                    "long random value and restart the dashboard.", icon=icons.OPERATOR)
        elif operator_key() is None:
            enter_key(lab)
        else:
            st.success("Operator mode is on for this browser session: the shared controls are enabled on every "
                       "page.", icon=icons.OPERATOR)
            if st.button("Leave operator mode", icon=icons.STOP, key="demo_operator_leave"):
                st.session_state.pop(OPERATOR_KEY, None)
                st.rerun()
            reset_form(lab, demo=True)


def enter_key(lab) -> None:
    """The operator key, checked by the lab (at most OPERATOR_TRIES wrong keys a minute per visitor)."""
    with st.form("demo_operator", border=False):
        key = st.text_input("Operator key", type="password", key="demo_operator_key", max_chars=MAX_KEY_LENGTH,
                            help=f"The value of LAB_OPERATOR_KEY on this deployment; at most {OPERATOR_TRIES} "
                                 "wrong keys a minute per visitor.")
        submitted = st.form_submit_button("Enter operator mode", icon=icons.OPERATOR, type="primary")
    if submitted and attempt(lab.guard.check_key, visitor(), key)[0]:
        st.session_state[OPERATOR_KEY] = key
        st.rerun()


def reset_form(lab, demo: bool) -> None:
    """Wipe the lab: a typed "reset" to confirm, and a name (the operator, in demo mode)."""
    st.caption("**Reset the lab** deletes every run with its steps and logs, the audit trail, failure modes, the "
               "live stream, the alias history and every MLflow run, registered model version and their files. It "
               "cannot be undone.")
    with st.form("demo_reset", border=False):
        by = "operator" if demo else name_input("demo_reset_by")
        typed = st.text_input("Type reset to confirm", key="demo_reset_confirm", max_chars=20)
        submitted = st.form_submit_button("Reset the lab", icon=icons.RESET, type="primary")
    if not submitted:
        return
    if typed.strip().lower() != "reset":
        st.error("Type the word reset in the confirmation field: nothing was reset.", icon=icons.REFUSED)
        return
    ok, removed = attempt(lab.reset, by, **acting())
    if ok:
        st.cache_data.clear()  # every page re-reads the lab, MLflow included
        st.session_state["demo_reset_removed"] = removed
        st.rerun()


st.title("Demo autopilot")
st.markdown(
    "The autopilot plays the whole lifecycle for you, through the same actions a person uses: a fake commit, "
    "CI, **Continue to CD**, an approval signed *demo*, deployment and promotion; then a second commit through "
    "the same path; then a **rollback** of production to the first model. Then the live stream turns to concept "
    "drift: once the performance alert fires on arriving outcomes, the closed loop **retrains on production "
    "data**, and the autopilot takes that run through its gate, approval and promotion and compares cost per "
    "claim before and after. It takes a few minutes. Everything it does stays in the run history, the registry "
    "and the audit trail, like any other run. Stop it at any moment: runs it already started finish on their "
    "own, and you can carry them on from the dashboard.")
st.caption("If a failure mode is on, a run will fail on the way: the autopilot says where and why, and stops. "
           "Stop also turns off the live stream the autopilot started, and the narration says so.")
current = ap.latest_session(get_lab())
controls(current)
st.divider()
live(narration, ap.is_active(current), "demo_narration")
st.divider()
operator()
