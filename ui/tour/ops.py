"""Walkthrough steps 8-10: drift and live claims, failure scenarios, rollback."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from engine import BadInput, IllegalTransition, Refused, Run
from engine.config import LIMITS
from engine.states import RunStatus
from engine.stream import SCENARIOS
from ui import icons
from ui.common import acting, attempt, get_lab, md_escape, operator_only, visitor
from ui.pagekit import NAME_KEY, live, name_input
from ui.tour import kit as k
from ui.tour.ci import continue_button

TOUR_RATE = 200  # claims a second: a snapshot every few seconds, so the lesson does not keep the learner waiting


@k.page(8, "Monitor live claims", "drift",
        "A model is trained on yesterday's claims and scores today's. **Input drift monitoring** compares each "
        "feature's current distribution with the champion's own training data: the **Population Stability "
        "Index** bins the reference, compares each bin's share of current claims, and sums (current − "
        "reference) × ln(current / reference) (below 0.10 no meaningful change, 0.25 and above major). But PSI "
        "only sees inputs. Under **concept drift** the claims look exactly as before while the payer's rule "
        "changes: PSI stays quiet and the model stays sure of itself. Only the outcomes, arriving weeks after "
        "the decision, reveal it: the **performance level** (realised accuracy, false denials and cost per "
        "claim on labelled claims, each with its interval) turns to *alert*. The fix is to **retrain on what "
        "production saw**: the labelled production claims, split by time, so the promotion gate judges the "
        "retrain on newer production claims it never trained on, and cost per claim comes back down after it "
        "is promoted.",
        "Evidently, WhyLabs, Arize or SageMaker Model Monitor on live traffic, alerting on PSI per feature and "
        "on performance once delayed ground truth is joined back to predictions; retraining on a recent window "
        "of labelled production data.",
        follow="none")
def live_claims(_: None) -> None:
    """Step 8: start the live stream with a drift scenario and watch the monitor turn major."""
    lab = get_lab()
    if lab.alias_version("champion") is None:
        k.tick(False, "", "There is no champion to serve claims yet: promote a model first (step 5).")
        return None
    opened = k.opened_at(8)
    st.markdown("The stream sends synthetic claims to `models:/claims-settlement-rf@champion` (and to `@staging` "
                "as a shadow while it holds another version). Pick a scenario and start it; the dashboard's "
                "Claims panel and the **Drift** page show the same stream.")
    names = list(SCENARIOS)
    scenario = st.selectbox("Scenario", names, index=names.index("concept_drift"), key="tour8_scenario",
                            format_func=lambda n: SCENARIOS[n].label)  # the dashboard's Claims panel's labels
    st.caption(f"**{SCENARIOS[scenario].label}**: {SCENARIOS[scenario].description}.")
    state = lab.stream.state()
    by = st.session_state.get(NAME_KEY) or "tour"
    locked = operator_only(lab, "Starting or stopping the live stream")
    if locked:
        st.info(f"{locked}. The dashboard's Claims panel and the Drift page show the stream whoever runs it.",
                icon=icons.OPERATOR)
    start_col, stop_col = st.columns(2)
    if start_col.button("Start the stream with this scenario", icon=icons.PLAY, key="tour8_start",
                        disabled=bool(locked), help=locked):
        if attempt(lab.stream.start, rate=TOUR_RATE, scenario=scenario, ramp=0, by=by, **acting())[0]:
            st.rerun()
    if stop_col.button("Stop the stream", icon=icons.STOP, key="tour8_stop", disabled=not state["enabled"] or
                       bool(locked), help=locked):
        if attempt(lab.stream.stop, by=by, **acting())[0]:
            st.rerun()
    live(lambda: _monitor(lab, opened), bool(state["enabled"]), "tour8_live")
    return None


def _monitor(lab, opened: float) -> bool:
    """The latest snapshot since the page opened, and the tick; True while the stream is on."""
    status = lab.stream.status()
    st.caption(f"Stream **{'on' if status['enabled'] else 'off'}** · scenario {status['scenario']} · "
               f"{status['produced']:,} claims produced, {status['labelled']:,} labelled · champion "
               f"v{status['champion_version']}")
    fresh = [s for s in lab.stream.snapshots(limit=20) if s["ts"] >= opened]
    if fresh and fresh[0]["status"] == "ok":
        snap = fresh[0]
        _drift_view(snap["detail"])
        realised, estimated = snap["realised_accuracy"], snap["estimated_accuracy"]
        st.caption(f"Snapshot {snap['id']}: realised accuracy {_num(realised)} on labelled claims; the model "
                   f"expects {_num(estimated)} on the claims still waiting for their labels.")
    alert = next((s for s in fresh if s.get("performance_level") == "alert"), None)
    major = next((s for s in fresh if s["level"] == "major"), None)
    if alert:
        k.tick(True, f"Snapshot {alert['id']}: the performance alert fired on arriving labels (realised accuracy "
               f"{_num(alert['realised_accuracy'])}) while input drift was {alert['level'] or 'not measured'} (max "
               f"PSI {_num(alert['max_psi'])}). Retrain on recent production data (the Claims panel's button, or "
               "`python -m engine stream retrain`): its gate judges it on newer production claims, and after its "
               "promotion cost per claim comes back down.", "")
    elif major:
        k.tick(True, f"Snapshot {major['id']} shows major input drift (max PSI {major['max_psi']:.2f}) in claims "
               "that arrived after you opened this page. Try concept_drift next: PSI stays low, and only the "
               "performance alert on arriving labels sees it.", "")
    elif fresh:
        k.tick(False, "", f"Latest snapshot {fresh[0]['id']}: level {fresh[0]['level'] or 'not enough data yet'}; "
               "keep the stream running, or pick a scenario that drifts.")
    else:
        k.tick(False, "", "Start the stream with a drifting scenario and wait for a snapshot (one every 500 "
               "claims) to raise an alert: input drift for inflation and the like, performance for concept_drift.")
    return bool(status["enabled"])


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _drift_view(drift: dict) -> None:
    """PSI per feature as bars coloured by level, with the 0.10 and 0.25 lines."""
    frame = pd.DataFrame([{k_: f.get(k_) for k_ in ("feature", "kind", "psi", "level")} for f in drift["features"]])
    bars = alt.Chart(frame).mark_bar().encode(
        x=alt.X("psi:Q", title="PSI"), y=alt.Y("feature:N", sort="-x", title=None),
        color=alt.Color("level:N", scale=alt.Scale(domain=["none", "moderate", "major"],
                                                   range=["#2e7d32", "#f9a825", "#c62828"])),
        tooltip=["feature", "kind", alt.Tooltip("psi:Q", format=".4f"), "level"])
    rules = alt.Chart(pd.DataFrame({"psi": [0.10, 0.25]})).mark_rule(strokeDash=[4, 4]).encode(x="psi:Q")
    st.altair_chart(bars + rules, width="stretch")
    st.caption(f"Worst level {drift['level']}; {drift['drift_share']:.0%} of features drifting. Dashed lines: "
               "0.10 (moderate) and 0.25 (major).")


@k.page(9, "Test failure scenarios", "failures",
        "A pipeline is only trustworthy if it fails loudly, early and for the right reason. Each failure mode "
        "below breaks an input the way it breaks in production (a column missing from an upstream export, "
        "amounts exported as text, a tracking server down, labels corrupted by a bad join), and the real code "
        "downstream catches it: nothing raises on purpose. Turn one on, commit, and see which step stops the run "
        "and what it says. Modes apply to runs committed (or retried) after you set them.",
        "chaos and fault-injection testing; failing CI on a data contract; alerting when tracking is down.",
        follow="none")
def failure_scenarios(_: None) -> None:
    """Step 9: toggle a failure mode, commit, see which gate catches it."""
    lab = get_lab()
    modes = lab.failure_modes()
    locked = operator_only(lab, "Turning a failure mode on or off")
    if locked:
        st.info(f"{locked}. Each mode below says which step would catch it.", icon=icons.OPERATOR)
    for m in modes:
        st.session_state[f"tour9_{m['name']}"] = m["enabled"]  # the database is the truth (a refused toggle too)
        st.toggle(f"{m['title']}: {m['breaks']} (caught by {m['caught_by']})", key=f"tour9_{m['name']}",
                  on_change=_set_mode, args=(m["name"],), disabled=bool(locked), help=locked)
    run = k.tour_run()
    if st.button("Commit with these failure modes", icon=icons.COMMIT, type="primary", key="tour9_commit"):
        ok, run_id = attempt(lab.commit, message="walkthrough: failure scenario",
                             author=st.session_state.get(NAME_KEY) or "walkthrough", trigger="dashboard",
                             visitor=visitor())
        if ok:
            k.follow(run_id)
            st.rerun()
    if run is not None and run.created_at >= k.opened_at(9):
        if run.failure_modes and run.status == RunStatus.CI_COMPLETE.value:
            st.caption("Metric regression acts in CD: continue this run to see the promotion gate catch it.")
            continue_button(run)
        k.watch(run.id, _caught_tick, "tour9")
    else:
        k.tick(False, "", "Turn a failure mode on and commit with the button above: the page ticks when a gate "
               "stops that run.")
    if any(m["enabled"] for m in modes):
        st.warning("Failure modes are on: every new run will break. Switch them off before going on.")


def _set_mode(name: str) -> None:
    attempt(get_lab().set_failure_mode, name, st.session_state[f"tour9_{name}"],
            st.session_state.get(NAME_KEY) or "walkthrough", **acting())


def _caught_tick(run: Run) -> None:
    k.steps_list(run)
    bad = k.stopped_step(run)
    caught = bool(run.failure_modes) and run.status in (RunStatus.FAILED.value, RunStatus.HELD.value) and bad
    k.tick(bool(caught), f"Run {run.id} (failure modes: {', '.join(run.failure_modes)}) was stopped by "
           f"{bad.name if bad else ''}, with the reason shown above.",
           "Turn a failure mode on and commit: the page ticks when a gate stops that run.")


@k.page(10, "Rollback", "rollback",
        "When a new champion misbehaves in production, the fastest safe fix is to put the previous one back: "
        "**rollback** moves **@champion** to the version that held it before. Nothing is retrained or rebuilt "
        "(the registry kept every version), so it takes a second, and who did it and why is recorded. Roll back "
        "first, investigate second.",
        "`kubectl rollout undo`, switching a registry alias or stage back, a blue/green switch back.",
        follow="none")
def rollback(_: Run | None) -> None:
    """Step 10: put the previous champion back; the page ticks for a rollback made after it was opened."""
    lab = get_lab()
    history = lab.champion_history()
    if history:
        st.dataframe(pd.DataFrame(history)[["version", "action", "moved_by", "reason"]].iloc[::-1], hide_index=True,
                     key="tour10_history")
    current, target = lab.rollback_target()
    locked = operator_only(lab, "A rollback")
    if target is None:
        st.info(_why_no_rollback(history), icon=icons.INFO)
    elif locked:
        st.info(f"{locked}. Version {target} is what a rollback would restore.", icon=icons.OPERATOR)
    else:
        _rollback_form(current, target)
    done = [h for h in history if h["action"] == "rollback" and h["since"] >= k.opened_at(10)]
    if done:
        k.tick(True, f"You rolled the champion back to version {done[-1]['version']} (signed "
               f"{md_escape(done[-1]['moved_by'])}). That is the whole lifecycle: commit, CI, CD, approval, "
               "deployment, monitoring, failure, rollback. The demo autopilot replays it unattended; the run history "
               "keeps every step.", "")
    else:
        k.tick(False, "", "Roll production back with the form above once there is an earlier champion.")


def _why_no_rollback(history: list[dict]) -> str:
    """Why there is nothing to roll back to, in terms of the history table above."""
    if not history:
        return ("Rollback is not available yet: no model has been champion. Promote one (steps 1, 4 and 5), then "
                "a second, so there is an earlier champion to go back to.")
    now = history[-1]["version"]
    return (f"Rollback is not available: @champion is version {now}, and no earlier promotion is left to step back "
            "to (each rollback undoes one promotion; the table above shows every move). Promote another model "
            "(steps 1, 4 and 5, or the demo autopilot) to make one.")


def _rollback_form(current: int, target: int) -> None:
    st.write(f"Rolling back moves **@champion** from version **{current}** to version **{target}**.")
    with st.form("tour10_rollback"):
        by = name_input("tour10_by")
        reason = st.text_input("Reason", key="tour10_reason", placeholder="e.g. false denials rose after promotion",
                               max_chars=LIMITS["reason"])
        submitted = st.form_submit_button(f"Roll back to version {target}", type="primary")
    if submitted:
        try:
            get_lab().rollback(by, reason, **acting())
        except (BadInput, Refused, IllegalTransition) as exc:
            st.error(str(exc))
            return
        st.rerun()
