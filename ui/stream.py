"""The Claims panel: the live claims stream the champion serves, with its drift monitor.

Controls (start/stop, rate, scenario, ramp, closed loop) sit outside the live part, so an action reruns the page
and sets or clears its timer. The live part is a fragment that reruns on a timer only while the stream is on;
while it is off it is drawn once with the page and costs one read of the stream's state row (the feed and
snapshots come from a cache keyed on the stream's position, which does not move while it is off).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from engine import BadInput, Refused
from engine.ml.claims import APPROVED, DENIED
from engine.ml.drift import MAJOR, MODERATE
from engine.stream import MIN_ROWS, SCENARIOS, SNAPSHOT_EVERY, Stream
from engine.tracking import MlflowUnreachable
from ui import charts, drift, errors, icons
from ui.common import acting, operator_only, who

REFRESH_SECONDS = 2.0
FEED_ROWS = 20
ARRIVED_ROWS = 8        # claims whose outcome arrived most recently, shown under the feed
MAX_CLAIMS_READ = 2000  # most claims one refresh reads: with a longer label delay, no arrived outcome is listed
HISTORY = 120           # snapshots drawn in the lines (the Drift page has them all)
DRIFT_PAGE = "pages/drift.py"
REFUSED = (BadInput, Refused, MlflowUnreachable)  # an action refused with the engine's message; nothing changed
MESSAGE = "_stream_message"  # (ok, text) kept by an action's callback for the rerun it causes
FEED_COLUMNS = {name: st.column_config.Column(name, width=width) for name, width in (
    ("decision", 76), ("P(Approved)", 84), ("shadow", 130), ("label", 124), ("billed", 84), ("allowed", 84),
    ("CPT", 175), ("provider", 110), ("age", 40), ("time (UTC)", 76))}
SEEN = "_stream_seen_snapshot"  # the latest snapshot this browser tab has shown: a toast only for a newer one


def render(lab) -> None:
    """The whole panel: controls, then the live part (timed only while the stream is on)."""
    st.markdown("#### Claims stream")
    state = lab.stream.state()
    _sync_controls(state)
    _controls(lab, state)
    if state["enabled"]:
        # Guarded: its timer reruns it alone, outside the page's guard (a failure shows here; the timer goes on).
        st.fragment(errors.guard(_live), run_every=REFRESH_SECONDS)(lab)
    else:
        _body(lab, state)  # no timer; a stream started elsewhere shows at this page's next rerun


# ---- controls ---------------------------------------------------------------------------------------------
def _sync_controls(state: dict) -> None:
    # The widgets show the persisted settings whenever they change (here, in another browser, from the CLI);
    # a refused input stays in its widget, beside the message, until it is fixed.
    ss = st.session_state
    if ss.get("_stream_synced") != state["updated_at"] or "stream_rate" not in ss:
        ss.update(stream_rate=float(state["rate"]), stream_scenario=state["scenario"], stream_ramp=int(state["ramp"]),
                  stream_closed_loop=bool(state["closed_loop"]), _stream_synced=state["updated_at"])


def _controls(lab, state: dict) -> None:
    on = bool(state["enabled"])
    locked = operator_only(lab, "Starting, changing or stopping the live stream")
    if locked:
        st.caption(f"{icons.OPERATOR} {locked}.")
    rate, scenario, ramp, act = st.columns([1, 1.3, 1, 1.3], vertical_alignment="bottom")
    rate.number_input("Rate (claims/s)", key="stream_rate", step=5.0, format="%g",
                      help=f"Claims generated and scored per second, up to {lab.settings.stream_max_rate:g}.")
    scenario.selectbox("Scenario", list(SCENARIOS), key="stream_scenario", format_func=lambda n: SCENARIOS[n].label,
                       help="What changes in who files claims (or, for concept_drift, in the payer's rule).")
    ramp.number_input("Ramp (claims)", key="stream_ramp", step=100,
                      help="Claims over which a new scenario reaches full intensity (0: at once).")
    start, stop = act.columns(2)
    start.button("Apply" if on else "Start", key="stream_start", type="secondary" if on else "primary",
                 icon=icons.TUNE if on else icons.PLAY, on_click=_start, args=(lab,), width="stretch",
                 disabled=bool(locked), help=locked)
    stop.button("Stop", key="stream_stop", icon=icons.STOP, disabled=not on or bool(locked), on_click=_stop,
                args=(lab,), width="stretch", help=locked)
    chosen = st.session_state["stream_scenario"]
    st.caption(f"**{SCENARIOS[chosen].label}**: {SCENARIOS[chosen].description}. Outcomes arrive "
               f"{state['label_delay']:,} claims after the decision, as real claim outcomes arrive weeks later.")
    st.toggle("Closed loop: retrain when drift stays major", key="stream_closed_loop", on_change=_closed_loop,
              args=(lab,), disabled=bool(locked),
              help=locked or "After several major snapshots in a row the lab commits one retraining run on the "
                             "drifted claims; it goes through every gate and the manual approval.")
    st.button("Retrain on recent production data", key="stream_retrain", icon=":material/model_training:",
              on_click=_retrain, args=(lab,),
              help="Commit a run that trains on the newest labelled claims production served; the newest quarter "
                   "of them, never trained on, is its promotion gate's holdout. It goes through every gate and the "
                   "manual approval.")
    kept = st.session_state.pop(MESSAGE, None)
    if kept and kept[0]:
        st.toast(kept[1], icon=":material/check_circle:")
    elif kept:
        st.error(kept[1], icon=":material/block:")


def _act(action, *args, **kwargs) -> bool:
    """Run a stream action; a refusal, or a failure (a database that does not answer), is kept as the message to
    show beside the controls (masked), and nothing changed."""
    try:
        action(*args, **kwargs)
        return True
    except REFUSED as exc:
        st.session_state[MESSAGE] = (False, errors.first_line(exc, errors.REFUSAL_CHARS))
    except Exception as exc:  # a callback runs before the page, outside its guard
        errors.log_error(exc, "stream control")
        st.session_state[MESSAGE] = (False, errors.message(exc))
    return False


def _start(lab) -> None:
    ss = st.session_state
    if _act(lab.stream.start, rate=ss["stream_rate"], scenario=ss["stream_scenario"], ramp=ss["stream_ramp"],
            by=who() or "dashboard", **acting()):
        ss[MESSAGE] = (True, f"Stream on: {ss['stream_rate']:g} claims/s, scenario {ss['stream_scenario']}")


def _stop(lab) -> None:
    if _act(lab.stream.stop, by=who() or "dashboard", **acting()):
        st.session_state[MESSAGE] = (True, "Stream stopped; its claims and snapshots stay")


def _closed_loop(lab) -> None:
    on = st.session_state["stream_closed_loop"]
    if _act(lab.stream.set_closed_loop, on, by=who() or "dashboard", **acting()):
        st.session_state[MESSAGE] = (True, f"Closed loop {'on' if on else 'off'}")


def _retrain(lab) -> None:
    ss = st.session_state
    if _act(lab.retrain_on_production, by=who() or "dashboard", **acting()):
        ss[MESSAGE] = (True, f"Retraining on production data: run {lab.open_drift_run()} started")


# ---- the live part ----------------------------------------------------------------------------------------
@st.cache_data(ttl=60, max_entries=4, show_spinner=False)
def _recent(_lab, db_url: str, produced: int, labelled: int, label_delay: int):
    """(newest claims, reaching back past the label delay when it is short enough; newest snapshots)."""
    # Keyed on the stream's position: every write to claims or snapshots moves one of the two.
    return (_lab.stream.claims(min(FEED_ROWS + label_delay + ARRIVED_ROWS, MAX_CLAIMS_READ)),
            _lab.stream.snapshots(HISTORY))


def _live(lab) -> None:
    """The live part while the stream is on, re-read on every tick of the fragment's timer."""
    state = lab.stream.state()
    if not state["enabled"]:
        st.rerun()  # stopped elsewhere: redraw the controls, and the page without the timer
    _body(lab, state)


def _body(lab, state: dict) -> None:
    claims, snapshots = _recent(lab, lab.settings.database_url, state["next_seq"], state["labelled_seq"],
                                state["label_delay"])
    st.markdown(status_line(state, claims))
    if claims.empty:
        st.info("No claims yet. Choose a rate and a scenario, then **Start**: the champion scores every claim, "
                "and a staging version, while one exists, scores it too as a shadow.", icon=":material/info:")
        return
    latest = snapshots[0] if snapshots else None
    _alert(latest, snapshots)
    feed = claims.head(FEED_ROWS)
    st.markdown(f"**Latest {len(feed)} claims** (newest first)")
    st.dataframe(styled_feed(feed_frame(feed)), hide_index=True, width="stretch", key="stream_feed",
                 height=36 + 35 * len(feed), column_config=FEED_COLUMNS)
    st.caption(f"Decision: :green[Approved] :red[Denied]. Shadow: :orange[disagrees] where staging decided "
               f"otherwise. Label: pending until the outcome arrives ({state['label_delay']:,} claims later).")
    arrived = claims[claims["outcome"].notna()].head(ARRIVED_ROWS)
    if len(arrived):
        st.markdown(f"**Outcomes that just arrived**: the latest {len(arrived)} claims whose outcome is known, "
                    "decided before the ones above")
        st.dataframe(styled_feed(feed_frame(arrived)), hide_index=True, width="stretch", key="stream_arrived",
                     height=36 + 35 * len(arrived), column_config=FEED_COLUMNS)
    history = drift.history_frame(snapshots)
    bars, psi_line = st.columns(2, gap="medium")
    with bars:
        _psi_bars(latest)
    if latest is None:
        return
    psi_line.markdown("**Max PSI over features**, snapshot by snapshot")
    psi_line.altair_chart(drift.max_psi_chart(history), width="stretch")
    accuracy, agreement = st.columns(2, gap="medium")
    with accuracy:
        st.markdown("**Realised vs estimated accuracy**")
        st.altair_chart(drift.accuracy_chart(history), width="stretch")
        drift.estimate_note(latest)
    agreement.markdown("**Shadow agreement** with the champion")
    if history["agreement"].notna().any():
        agreement.altair_chart(drift.agreement_chart(history), width="stretch")
    else:
        agreement.caption("No staging version scored these claims. While a staging version other than the "
                          "champion exists, it scores every claim as a shadow (recorded, never served).")


def status_line(state: dict, claims: pd.DataFrame) -> str:
    """On/off, producer, counts, scenario intensity and the versions serving, in one line of markdown."""
    on = bool(state["enabled"])
    badge = ":green-badge[:material/play_circle: on]" if on else ":gray-badge[:material/stop_circle: off]"
    parts = [f"{badge} {state['rate']:g} claims/s" if on else badge,
             f"**{state['next_seq']:,}** produced", f"**{state['labelled_seq']:,}** labelled"]
    if state["scenario"] != "none":
        parts.append(f"{state['scenario']} at {Stream.intensity(state, state['next_seq']):.0%}")
    if not claims.empty:
        newest = claims.iloc[0]
        shadow = newest["shadow_version"]
        parts.append(f"champion v{int(newest['champion_version'])}"
                     + (f", shadow v{int(shadow)}" if pd.notna(shadow) else ", no shadow"))
    if on and not state["producer"]["alive"]:
        parts.append(":orange[waiting for a producer (the app's runner or `python -m engine worker`)]")
    return " · ".join(parts)


def feed_frame(claims: pd.DataFrame) -> pd.DataFrame:
    """Recent claims as the feed shows them: inputs, decision, shadow disagreement, label."""
    approved = claims["approved"].astype(bool).to_numpy()
    decision = np.where(approved, APPROVED, DENIED)
    shadowed = claims["shadow_approved"].notna().to_numpy()
    shadow_says = np.where(claims["shadow_approved"].fillna(False).astype(bool), APPROVED, DENIED)
    shadow = np.where(~shadowed, "", np.where(shadow_says == decision, "agrees", "disagrees: " + shadow_says))
    known = claims["outcome"].notna().to_numpy()
    outcome = np.where(claims["outcome"].fillna(False).astype(bool), APPROVED, DENIED)
    label = np.where(~known, "pending", outcome + np.where(outcome == decision, " (right)", " (wrong)"))
    # The decision columns first, so a narrow screen shows them without scrolling sideways.
    return pd.DataFrame({
        "decision": decision, "P(Approved)": claims["p_approved"], "shadow": shadow, "label": label,
        "billed": claims["billed_amount"], "allowed": claims["allowed_amount"], "CPT": claims["cpt_bucket"],
        "provider": claims["provider_type"], "age": claims["patient_age"].astype(int),
        "time (UTC)": pd.to_datetime(claims["ts"], unit="s", utc=True).dt.strftime("%H:%M:%S")})


def styled_feed(frame: pd.DataFrame):
    """The feed with decisions in colour, disagreements marked and pending labels greyed."""
    def decision(value: str) -> str:
        return f"color: {charts.GREEN if value == APPROVED else charts.RED}; font-weight: 600"

    def shadow(value: str) -> str:
        return "background-color: #FCE3CC; color: #9A4A00; font-weight: 600" if value.startswith("disagrees") \
            else f"color: {charts.GREY}"

    def label(value: str) -> str:
        return f"color: {charts.GREY}; font-style: italic" if value == "pending" \
            else f"color: {charts.RED}" if value.endswith("(wrong)") else ""

    return (frame.style.map(decision, subset=["decision"]).map(shadow, subset=["shadow"])
            .map(label, subset=["label"])
            .format({"billed": "${:,.2f}", "allowed": "${:,.2f}", "P(Approved)": "{:.3f}"}))


def _alert(latest: dict | None, snapshots: list[dict]) -> None:
    """Drift level of the latest snapshot; a toast once when it turns major; the not-enough-data state."""
    seen, st.session_state[SEEN] = st.session_state.get(SEEN), latest["id"] if latest else 0
    if latest is None:
        st.info(f"The first drift snapshot comes after {SNAPSHOT_EVERY:,} claims.", icon=":material/hourglass_top:")
        return
    drift.performance_banner(latest)  # realised performance on arrived labels, beside the input drift below
    if latest["status"] == "not_enough_data":
        n = (latest["detail"] or {}).get("n_window", 0)
        st.info(f"Not enough data: the latest snapshot's window holds {n:,} claims and PSI needs at least "
                f"{MIN_ROWS:,}, so no drift level is given yet.", icon=":material/hourglass_top:")
        return
    worst = max(latest["detail"]["features"], key=lambda f: f["psi"])
    if latest["level"] == "major":
        st.error(f"Drift is **major** (snapshot #{latest['id']}): {worst['feature']} PSI {worst['psi']:.3f} "
                 f"is at or above {MAJOR:g}; {latest['drift_share']:.0%} of features drift. Investigate, "
                 "and consider retraining on recent claims.", icon=":material/warning:")
        before = snapshots[1]["level"] if len(snapshots) > 1 else None
        if seen is not None and seen != latest["id"] and before != "major":  # turned major while watched
            st.toast(f"Drift turned major: {worst['feature']} PSI {worst['psi']:.2f}", icon=":material/warning:")
    elif latest["level"] == "moderate":
        st.warning(f"Drift is moderate: {worst['feature']} PSI {worst['psi']:.3f} (worth watching).",
                   icon=":material/visibility:")


def _psi_bars(latest: dict | None) -> None:
    st.markdown("**Drift per feature** (PSI, latest snapshot)")
    features = (latest or {}).get("detail", {}).get("features") if latest else None
    if not features:
        st.caption("No PSI yet: it needs a snapshot with enough claims.")
        return
    st.altair_chart(charts.psi_bars(features, MODERATE, MAJOR), width="stretch")
    prediction = latest["detail"]["prediction"]
    st.caption(f"Snapshot #{latest['id']} at claim {latest['seq']:,}, {latest['detail']['n_window']:,} claims "
               f"against champion v{latest['champion_version']}'s training reference. Levels: "
               f":green[none] < {MODERATE:g} ≤ :orange[moderate] < {MAJOR:g} ≤ :red[major]. "
               f"Prediction PSI (P(Approved)): {prediction['psi']:.3f} ({drift.LEVEL_MD[prediction['level']]}).")
    st.page_link(DRIFT_PAGE, label="Recompute any PSI by hand on the Drift page", icon=":material/calculate:")
