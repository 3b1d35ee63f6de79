"""The dashboard's Claims panel over a lab with a champion (v1) and a staging shadow (v2), in AppTest.

The app's own stream job never ticks here (fixture quiet_stream): claims are made by a second Lab's `stream.produce(n)`,
so what the panel shows is known exactly. Expectations come from the engine's own reads.
"""
from __future__ import annotations

from dataclasses import replace

import pytest

from engine.errors import BadInput, Refused
from engine.ml.claims import APPROVED, DENIED
from engine.stream import SCENARIOS, SNAPSHOT_EVERY, WINDOW
from tests.ui.conftest import STILL, open_page, texts
from ui import drift
from ui import stream as panel
from ui.common import OPERATOR_KEY


def dashboard():
    return open_page("dashboard", timeout=120)


def refusals(at) -> list[str]:
    """The panel's refusal messages (the dashboard may show other errors, such as a failed step's)."""
    return [e.value for e in at.error if e.icon == ":material/block:"]


def feed_of(at):
    return next(d.value for d in at.dataframe if "decision" in d.value.columns)


def test_before_any_claim_the_panel_offers_start_and_explains(empty_lab, quiet_stream):
    at = dashboard()
    assert not at.exception
    assert "No claims yet" in texts(at)
    assert at.button(key="stream_start").label == "Start" and at.button(key="stream_stop").disabled
    assert at.selectbox(key="stream_scenario").options == [s.label for s in SCENARIOS.values()]
    assert at.selectbox(key="stream_scenario").value == "none"  # the label is shown; the name is what is kept
    assert f"**{SCENARIOS['none'].label}**: {SCENARIOS['none'].description}" in texts(at)


def test_start_persists_the_chosen_settings_and_the_feed_shows_the_served_claims(producer):
    at = dashboard()
    at.number_input(key="stream_rate").set_value(40.0)
    at.selectbox(key="stream_scenario").set_value("inflation")
    at.number_input(key="stream_ramp").set_value(200)
    at.button(key="stream_start").click().run()
    assert not at.exception and not refusals(at)
    state = producer.stream.state()
    assert (state["enabled"], state["rate"], state["scenario"], state["ramp"]) == (True, 40.0, "inflation", 200)
    assert at.button(key="stream_start").label == "Apply" and not at.button(key="stream_stop").disabled

    producer.stream.produce(1000)
    at.run()
    assert not at.exception
    feed = feed_of(at)
    served = producer.stream.claims(panel.FEED_ROWS)
    assert len(feed) == panel.FEED_ROWS
    assert feed["billed"].tolist() == served["billed_amount"].tolist()
    assert feed["decision"].tolist() == [APPROVED if a else DENIED for a in served["approved"]]
    # Staging (v2) scores every claim as a shadow; a row is marked where it decided otherwise.
    expected_shadow = ["agrees" if bool(s) == bool(a) else f"disagrees: {APPROVED if s else DENIED}"
                       for s, a in zip(served["shadow_approved"], served["approved"])]
    assert feed["shadow"].tolist() == expected_shadow
    # The newest 20 of 1,000 claims are younger than the label delay (300): all still pending.
    assert feed["label"].tolist() == ["pending"] * panel.FEED_ROWS
    # Under them, the claims whose outcome arrived last, each with its outcome against its decision.
    arrived = [d.value for d in at.dataframe if "decision" in d.value.columns][1]
    known = producer.stream.claims(2000)
    known = known[known["outcome"].notna()].head(panel.ARRIVED_ROWS)
    assert arrived["billed"].tolist() == known["billed_amount"].tolist()
    assert arrived["label"].tolist() == [
        f"{APPROVED if o else DENIED} ({'right' if bool(o) == bool(a) else 'wrong'})"
        for o, a in zip(known["outcome"], known["approved"])]
    status = next(m.value for m in at.markdown if "produced" in m.value)
    state = producer.stream.state()
    assert f"**{state['next_seq']:,}** produced" in status and f"**{state['labelled_seq']:,}** labelled" in status
    assert "champion v1, shadow v2" in status
    assert at.get("vega_lite_chart"), "PSI bars and snapshot lines are drawn"


def test_labels_show_once_they_arrive(producer):
    producer.stream.start(rate=STILL, label_delay=5, by="test")
    producer.stream.produce(30)
    at = dashboard()
    feed, served = feed_of(at), producer.stream.claims(panel.FEED_ROWS)
    expected = ["pending" if o is None else
                f"{APPROVED if o else DENIED} ({'right' if bool(o) == bool(a) else 'wrong'})"
                for o, a in zip(served["outcome"], served["approved"])]
    assert feed["label"].tolist() == expected
    assert expected[:5] == ["pending"] * 5 and "pending" not in expected[5:]


def test_major_drift_raises_the_alert_and_shows_the_estimate_caveat(producer):
    producer.stream.start(rate=STILL, scenario="inflation", ramp=0, by="test")
    for _ in range(WINDOW // SNAPSHOT_EVERY):  # a whole window of inflated claims (the lifecycle's are not)
        producer.stream.produce(SNAPSHOT_EVERY)
    latest = producer.stream.snapshots(1)[0]
    assert latest["level"] == "major"  # inflation moves amounts far past 0.25
    at = dashboard()
    assert not at.exception
    alert = next(e.value for e in at.error if "Drift is **major**" in e.value)
    worst = max(latest["detail"]["features"], key=lambda f: f["psi"])
    assert f"{worst['feature']} PSI {worst['psi']:.3f}" in alert
    ece, live = latest["detail"]["calibration"], latest["detail"]["live_calibration"]
    caveat = texts(at)
    # The live ECE on labelled production claims stands beside the holdout's, never the holdout's alone.
    assert f"expected calibration error is **{ece['ece']:.3f}** on its holdout" in caveat
    assert f"and **{live['ece']:.3f}** on the {live['n']:,} labelled production claims" in caveat
    assert "covariate drift" in caveat and "concept drift" in caveat


def test_concept_drift_raises_the_performance_banner_beside_a_quiet_input_drift(producer):
    producer.stream.start(rate=STILL, scenario="concept_drift", ramp=0, by="test")
    for _ in range(10):  # a snapshot a batch; the labels of the turned rule arrive 300 claims late
        producer.stream.produce(500)
    latest = producer.stream.snapshots(1)[0]
    assert latest["performance_level"] == "alert" and latest["level"] == "none"
    at = dashboard()
    assert not at.exception
    banner = next(e.value for e in at.error if "Performance **alert**" in e.value)
    evidence = latest["detail"]["performance"]["evidence"]
    assert f"snapshot #{latest['id']}, input drift :green[none]" in banner
    assert drift.evidence_text(evidence) in banner and "retraining" in banner
    assert not any("Drift is" in e.value for e in at.error)  # PSI cannot see concept drift


def test_a_small_window_says_not_enough_data_instead_of_a_level(lifecycle_lab, quiet_stream):
    from engine.lab import Lab
    lab = Lab(replace(lifecycle_lab, stream_retention=120))  # keeps only the newest 120 claims
    try:
        lab.stream.start(rate=STILL, by="test")
        lab.stream.produce(50)
        snapshot = lab.stream.take_snapshot()
        assert snapshot["status"] == "not_enough_data"
        at = dashboard()
        assert "Not enough data: the latest snapshot's window holds 120 claims" in texts(at)
        assert not any("Drift is" in e.value for e in at.error)
    finally:
        lab.close()


def test_a_bad_rate_is_refused_with_the_engines_message_and_nothing_changes(producer):
    before = producer.stream.state()
    with pytest.raises(BadInput) as refused:
        producer.stream.start(rate=0, by="test")
    at = dashboard()
    at.number_input(key="stream_rate").set_value(0.0)
    at.button(key="stream_start").click().run()
    assert refusals(at) == [str(refused.value)]
    assert producer.stream.state() == before


def test_stop_turns_the_stream_off_and_keeps_its_claims(producer):
    producer.stream.start(rate=STILL, by="test")
    producer.stream.produce(50)
    at = dashboard()
    assert ":green-badge[:material/play_circle: on]" in texts(at)
    at.button(key="stream_stop").click().run()
    assert not at.exception and not refusals(at)
    assert producer.stream.state()["enabled"] is False
    assert ":gray-badge[:material/stop_circle: off]" in texts(at)
    assert at.button(key="stream_start").label == "Start" and at.button(key="stream_stop").disabled
    assert len(feed_of(at)) == panel.FEED_ROWS


def test_without_a_champion_start_says_to_promote_first(empty_lab, quiet_stream):
    from engine.lab import Lab
    lab = Lab(empty_lab)
    try:
        with pytest.raises(Refused) as refused:
            lab.stream.start(rate=STILL, by="test")
        at = dashboard()
        at.button(key="stream_start").click().run()
        assert refusals(at) == [str(refused.value)]
        assert "promote a model first" in refusals(at)[0]
        assert lab.stream.state()["enabled"] is False
    finally:
        lab.close()


def test_in_the_demo_the_stream_controls_are_locked_without_the_operator_key(producer, monkeypatch):
    # Any visitor could stop the stream (or change it) for everybody.
    monkeypatch.setenv("LAB_DEMO", "1")
    monkeypatch.setenv("LAB_OPERATOR_KEY", "the-key")
    producer.stream.start(rate=STILL, by="operator")
    at = dashboard()
    assert not at.exception
    reason = "Starting, changing or stopping the live stream changes the lab for every visitor of this public demo"
    for key in ("stream_start", "stream_stop"):
        assert at.button(key=key).disabled and reason in at.button(key=key).help
    assert at.toggle(key="stream_closed_loop").disabled and reason in texts(at)
    at.session_state[OPERATOR_KEY] = "the-key"  # what the Demo page keeps once the lab accepted it
    at.run()
    at.button(key="stream_stop").click().run()
    assert not at.exception and not refusals(at)
    assert producer.stream.state()["enabled"] is False
