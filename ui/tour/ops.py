"""Walkthrough steps 8-10: drift and live claims, failure scenarios, rollback."""
from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from engine import BadInput, IllegalTransition, Refused
from engine.states import RunStatus
from ui import icons
from ui.common import get_lab, md_escape
from ui.pagekit import NAME_KEY, name_input
from ui.tour import kit as k
from ui.tour.ci import continue_button


# Step 8's text and body are a placeholder until the live claims stream lands; it then describes the stream.
@k.page(8, "Monitor live claims", "drift",
        "A model is trained on yesterday's claims and scores today's. When the inputs move (amounts inflate, a "
        "new mix of diagnoses arrives) its accuracy can fall long before anyone has labels to notice. **Drift "
        "monitoring** compares each feature's current distribution with its training reference. The **Population "
        "Stability Index** bins the reference, compares each bin's share of current claims, and sums "
        "(current − reference) × ln(current / reference): below 0.10 means no meaningful change, 0.10 to 0.25 is "
        "moderate (watch it), 0.25 and above is major (investigate, consider retraining).",
        "Evidently, WhyLabs, Arize or SageMaker Model Monitor on live traffic, alerting on PSI per feature.",
        follow="none")
def live_claims(_: None) -> str:
    """Step 8: what drift is, PSI, and the drift the shadow monitor measured."""
    st.info("Honest note: the live claims stream (start/stop, claims flowing, a rolling drift panel) arrives in a "
            "later version of this lab. What you can see now is the drift the **shadow monitor** measured on "
            "fresh claims during a real deployment.")
    run = k.tour_run()
    found = _latest_drift(run)
    if found is None:
        k.tick(False, "", "No deployment has measured drift yet: approve a run (step 5) and let it deploy.")
    else:
        run_id, drift = found
        _drift_view(drift)
        k.tick(True, f"Run {run_id}'s shadow monitor measured input drift: level {drift['level']}, max PSI "
               f"{drift['max_psi']:.3f}.", "")
    return "shadow_monitor"


def _latest_drift(run: dict | None) -> tuple[int, dict] | None:
    """(run id, drift report) of the followed run if it has one, else of the newest run that does."""
    lab = get_lab()
    candidates = [run] if run else []
    recent = lab.runs(50, statuses=[RunStatus.PROMOTED.value, RunStatus.HELD.value])
    steps = lab.steps_for_runs([r["id"] for r in recent])
    candidates += [{**r, "steps": steps[r["id"]]} for r in recent]
    for r in candidates:
        drift = (k.step_of(r, "shadow_monitor")["outputs"] or {}).get("drift")
        if drift:
            return r["id"], drift
    return None


def _drift_view(drift: dict) -> None:
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
    for m in modes:
        st.toggle(f"{m['title']}: {m['breaks']} (caught by {m['caught_by']})", value=m["enabled"],
                  key=f"tour9_{m['name']}", on_change=_set_mode, args=(m["name"],))
    run = k.tour_run()
    if st.button("Commit with these failure modes", icon=icons.COMMIT, type="primary", key="tour9_commit"):
        k.follow(lab.commit(message="walkthrough: failure scenario", author=st.session_state.get(NAME_KEY) or
                            "walkthrough"))
        st.rerun()
    if run is not None and run["created_at"] >= k.opened_at(9):
        if run["failure_modes"] and run["status"] == RunStatus.CI_COMPLETE.value:
            st.caption("Metric regression acts in CD: continue this run to see the promotion gate catch it.")
            continue_button(run)
        k.watch(run["id"], _caught_tick, "tour9")
    else:
        k.tick(False, "", "Turn a failure mode on and commit with the button above: the page ticks when a gate "
               "stops that run.")
    if any(m["enabled"] for m in modes):
        st.warning("Failure modes are on: every new run will break. Switch them off before going on.")


def _set_mode(name: str) -> None:
    get_lab().set_failure_mode(name, st.session_state[f"tour9_{name}"], st.session_state.get(NAME_KEY) or
                               "walkthrough")


def _caught_tick(run: dict) -> None:
    k.steps_list(run)
    bad = k.stopped_step(run)
    caught = bool(run["failure_modes"]) and run["status"] in (RunStatus.FAILED.value, RunStatus.HELD.value) and bad
    k.tick(bool(caught), f"Run {run['id']} (failure modes: {', '.join(run['failure_modes'])}) was stopped by "
           f"{bad['name'] if bad else ''}, with the reason shown above.",
           "Turn a failure mode on and commit: the page ticks when a gate stops that run.")


@k.page(10, "Rollback", "rollback",
        "When a new champion misbehaves in production, the fastest safe fix is to put the previous one back: "
        "**rollback** moves **@champion** to the version that held it before. Nothing is retrained or rebuilt "
        "(the registry kept every version), so it takes a second, and who did it and why is recorded. Roll back "
        "first, investigate second.",
        "`kubectl rollout undo`, switching a registry alias or stage back, a blue/green switch back.",
        follow="none")
def rollback(_: dict | None) -> None:
    """Step 10: put the previous champion back; the page ticks for a rollback made after it was opened."""
    lab = get_lab()
    history = lab.champion_history()
    if history:
        st.dataframe(pd.DataFrame(history)[["version", "action", "moved_by", "reason"]].iloc[::-1], hide_index=True,
                     key="tour10_history")
    current, target = lab.rollback_target()
    if target is None:
        st.info(_why_no_rollback(history), icon=icons.INFO)
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
        reason = st.text_input("Reason", key="tour10_reason", placeholder="e.g. false denials rose after promotion")
        submitted = st.form_submit_button(f"Roll back to version {target}", type="primary")
    if submitted:
        try:
            get_lab().rollback(by, reason)
        except (BadInput, Refused, IllegalTransition) as exc:
            st.error(str(exc))
            return
        st.rerun()
