"""The Drift page in AppTest: a snapshot's bins recompute its stored PSI, the URL picks snapshot and feature, the
CSV holds every snapshot, and the score form answers with the champion's decision or a message on each bad field.

Claims are produced by a second Lab (the app's stream job never ticks here), so the snapshots are known exactly.
A category typed as a new option cannot be entered through AppTest (it only selects listed options): the browser
test (tests/e2e/test_stream_browser.py) types an unknown category.
"""
from __future__ import annotations

import io
import math
import socket

import pandas as pd
import pytest

from engine.ml.claims import CATEGORICAL, FEATURES, NUMERIC
from engine.ml.drift import EPSILON
from engine.stream import SNAPSHOT_EVERY, WINDOW
from tests.conftest import ROOT
from tests.ui.conftest import STILL, open_page, texts
from ui import drift, score

FIELD_OF = {f"score_{f}": f for f in FEATURES}


def drift_page():
    return open_page("drift", timeout=120)


def by_hand(bins: list[dict]) -> float:
    """PSI as drift.py's docstring defines it: shares floored at EPSILON, sum of (c - r) * ln(c / r)."""
    total = 0.0
    for b in bins:
        r, c = max(b["reference_share"], EPSILON), max(b["current_share"], EPSILON)
        total += (c - r) * math.log(c / r)
    return total


@pytest.fixture
def drifted(producer):
    """Snapshots of claims under full inflation until a whole window is inflated (the played lifecycle leaves
    concept-drift claims in it); returns the producing Lab."""
    producer.stream.start(rate=STILL, scenario="inflation", ramp=0, by="test")
    for _ in range(WINDOW // SNAPSHOT_EVERY):
        producer.stream.produce(SNAPSHOT_EVERY)  # a batch that crosses a multiple of 500 ends with one snapshot
    return producer


def test_an_empty_lab_says_how_to_get_snapshots_and_that_scoring_needs_a_champion(empty_lab, quiet_stream):
    at = drift_page()
    assert not at.exception
    assert "No drift snapshots yet" in texts(at)
    submit(at)
    assert not at.exception
    [message] = [e.value for e in at.error]
    assert "there is no champion yet: promote a model first" in message


def test_a_features_bins_recompute_the_stored_psi(drifted):
    newest = drifted.stream.snapshots(1)[0]
    at = drift_page()
    assert not at.exception
    assert at.selectbox(key="snapshot").value == newest["id"]
    at.selectbox(key="feature").set_value("billed_amount").run()
    stored = next(f for f in newest["detail"]["features"] if f["feature"] == "billed_amount")
    table = next(d.value for d in at.dataframe if "contribution" in d.value.columns)
    assert table["bin"].tolist() == [b["label"] for b in stored["bins"]]
    shown_bins = [{"reference_share": r, "current_share": c}
                  for r, c in zip(table["ref share"], table["cur share"])]
    assert by_hand(shown_bins) == pytest.approx(stored["psi"], rel=1e-9)
    assert table["contribution"].sum() == pytest.approx(stored["psi"], rel=1e-9)
    assert stored["psi"] >= 0.25  # inflation moves amounts: the page says major
    text = texts(at)
    assert f"Sum of the contributions: **{stored['psi']:.6f}**" in text and f"epsilon **{EPSILON:g}**" in text

    at.selectbox(key="feature").set_value(drift.PREDICTION).run()
    table = next(d.value for d in at.dataframe if "contribution" in d.value.columns)
    prediction = newest["detail"]["prediction"]
    assert by_hand(prediction["bins"]) == pytest.approx(newest["prediction_psi"], rel=1e-9)
    assert table["contribution"].sum() == pytest.approx(newest["prediction_psi"], rel=1e-9)


def test_the_url_opens_a_snapshot_and_a_feature_and_follows_the_pick(drifted):
    snapshots = drifted.stream.snapshots()
    first, newest = snapshots[-1]["id"], snapshots[0]["id"]
    from streamlit.testing.v1 import AppTest
    from streamlit.util import calc_hash
    at = AppTest.from_file(str(ROOT / "navigation.py"), default_timeout=120)
    at._page_hash = calc_hash("drift")  # as open_page does, with the URL's parameters set before the first run
    at.query_params["snapshot"], at.query_params["feature"] = str(first), "patient_age"
    at.run()
    assert (at.selectbox(key="snapshot").value, at.selectbox(key="feature").value) == (first, "patient_age")
    assert "**patient_age** in snapshot " + str(first) in texts(at)
    at.selectbox(key="snapshot").set_value(newest).run()
    assert at.query_params["snapshot"] == str(newest)


def test_the_history_lists_every_snapshot_and_the_csv_holds_them(drifted):
    snapshots = drifted.stream.snapshots()
    at = drift_page()
    history = next(d.value for d in at.dataframe if "max_psi" in d.value.columns)
    assert history["id"].tolist() == [s["id"] for s in snapshots]
    assert at.get("download_button"), "the CSV download is offered"
    csv = pd.read_csv(io.StringIO(drift.snapshots_csv(drifted)))
    assert csv["id"].tolist() == [s["id"] for s in snapshots]
    for row, snap in zip(csv.to_dict("records"), snapshots):
        for feature in snap["detail"]["features"]:
            assert row[f"psi_{feature['feature']}"] == pytest.approx(feature["psi"], rel=1e-12)


def test_snapshot_labels_name_each_level_and_the_history_spans_the_page(drifted):
    drifted.stream.start(rate=STILL, scenario="none", ramp=0, by="test")
    drifted.stream.produce(500)
    calm = drifted.stream.snapshots(1)[0]
    label = drift.snapshot_label({**calm, "level": "none", "performance_level": "none"})
    assert "none · none" not in label  # the scenario and the level were two bare "none"s side by side
    assert "no scenario · drift none · performance none" in label
    at = drift_page()
    assert not at.exception
    # The history is drawn at the page's full width, not squeezed into a column that cut its columns off.
    assert not [d for column in at.columns for d in column.dataframe if "max_psi" in d.value.columns]
    history = next(d.value for d in at.dataframe if "max_psi" in d.value.columns)
    assert list(history.columns[:6]) == ["id", "seq", "level", "performance_level", "realised_accuracy",
                                         "estimated_accuracy"]
    assert history["realised_accuracy"].tolist()[0] == pytest.approx(calm["realised_accuracy"])
    assert "corrected for their number by Holm's step-down rule at a family-wise 5%" in texts(at)


def test_every_features_drift_over_time_and_a_numeric_features_distribution(drifted):
    snapshots = drifted.stream.snapshots()
    frame = drift.feature_psi_frame(snapshots)
    measured = [s for s in snapshots if s["status"] == "ok"]
    assert len(frame) == len(FEATURES) * len(measured)
    newest = measured[0]
    for f in newest["detail"]["features"]:  # one line per feature, at the stored PSI
        stored = frame[(frame["id"] == newest["id"]) & (frame["feature"] == f["feature"])]["psi"]
        assert stored.tolist() == [f["psi"]]
    hist = drift.distribution_frame(newest, "billed_amount")
    assert hist.groupby("sample")["share"].sum().to_dict() == pytest.approx({"reference": 1, "current": 1})
    centre = hist.pivot(index="centre", columns="sample", values="share")
    # Inflation: the current amounts sit higher than the reference's.
    assert (centre.index * centre["current"]).sum() > 1.3 * (centre.index * centre["reference"]).sum()
    at = drift_page()
    at.selectbox(key="feature").set_value("billed_amount").run()
    text = texts(at)
    assert "Drift per feature over time" in text and "**billed_amount: reference against current**" in text
    assert "test: p-value" in text and "after Holm's step-down rule over the 6 features" in text
    assert len(at.get("vega_lite_chart")) >= 4  # shares, terms, the distribution, PSI over time


def test_the_page_shows_both_levels_and_the_performance_figures_with_intervals(drifted):
    newest = drifted.stream.snapshots(1)[0]
    at = drift_page()
    assert not at.exception
    perf = newest["detail"]["performance"]
    table = next(d.value for d in at.dataframe if "approve every claim" in d.value.columns)
    accuracy = table[table["metric"] == "accuracy"].iloc[0]
    assert accuracy["realised"] == pytest.approx(perf["metrics"]["accuracy"]["value"])
    assert accuracy["low"] <= accuracy["realised"] <= accuracy["high"]
    assert accuracy["holdout"] == pytest.approx(perf["holdout"]["accuracy"])
    level = newest["performance_level"]
    banners = [e.value for e in (*at.error, *at.warning, *at.success) if f"Performance **{level}**" in e.value]
    assert banners and drift.evidence_text(perf["evidence"]) in banners[0]
    assert "Rule: alert when the 95% interval of realised accuracy" in texts(at)


# ---- the score form ---------------------------------------------------------------------------------------
def fill(at, **values):
    """Set form fields by name (None clears a category); text fields take the text as typed."""
    for field, value in values.items():
        widget = at.selectbox(key=f"score_{field}") if field in CATEGORICAL else at.text_input(
            key=f"score_{field}")
        widget.set_value(value)
    return at


def submit(at):
    return at.button(key="FormSubmitter:score_form-Score with the champion").click().run()


def field_messages(at) -> dict[str, list[str]]:
    """Error messages in the form, by the field whose column holds them."""
    out = {}
    for column in at.get("form")[0].columns:
        keys = [w.key for w in (*column.selectbox, *column.text_input)]
        for error in column.error:
            out.setdefault(FIELD_OF[keys[0]], []).append(error.value)
    return out


def test_a_valid_claim_gets_the_champions_decision_and_its_shap_waterfall(producer):
    at = drift_page()
    submit(at)
    assert not at.exception and not field_messages(at)
    claim = {k: (float(v) if k in NUMERIC else v) for k, v in score.EXAMPLE.items()}
    expected = producer.score(claim, explain=True)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"P(Approved)": f"{expected['p_approved']:.3f}", "Threshold": f"{expected['threshold']:.3f}",
                       "Deciding version": f"v{expected['version']}"}
    assert any(expected["decision"] in m.value for m in at.markdown if m.value.startswith("### "))
    steps = score.waterfall_frame(expected)
    assert steps["end"].iloc[-2] == pytest.approx(expected["p_approved"], abs=1e-6)  # base + SHAP = p
    assert len(at.get("vega_lite_chart")) >= 1


BAD_INPUTS = [  # (kind, fields to set, the field that must carry the message, words the message must hold)
    ("negative amount", {"billed_amount": "-5"}, "billed_amount", ["-5", "more than 0"]),
    ("allowed above billed", {"allowed_amount": "5000"}, "allowed_amount", ["5000", "more than Billed amount ($)"]),
    ("missing number", {"patient_age": ""}, "patient_age", ["missing"]),
    ("missing category", {"provider_type": None}, "provider_type", ["missing", "Hospital"]),
    ("text in a number", {"billed_amount": "12O0"}, "billed_amount", ["'12O0'", "not a number"]),
    # Beyond float32 the forest raised from inside scikit-learn, its traceback naming the model's artifact path.
    ("beyond the model's floats", {"billed_amount": "1e39"}, "billed_amount", ["'1e39'", "beyond what the model"]),
    ("not a number", {"patient_age": "nan"}, "patient_age", ["'nan'", "not a number"]),
    ("a digit that is not ASCII", {"patient_age": "²"}, "patient_age", ["'²'", "not a number"]),
    # The field takes 40 characters (the browser cuts the rest, as AppTest does): 40 digits are still too many.
    ("all the digits it takes", {"allowed_amount": "9" * 5000}, "allowed_amount", ["9999", "beyond what the model"]),
]


@pytest.mark.parametrize("kind,values,field,words", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_each_bad_input_gets_a_message_on_its_own_field(producer, kind, values, field, words):
    at = drift_page()
    submit(fill(at, **values))
    assert not at.exception
    messages = field_messages(at)
    assert list(messages) == [field], messages
    [message] = messages[field]
    assert score.LABELS[field] in message and all(w in message for w in words), message  # named as labelled
    assert "Nothing was scored: fix the 1 field(s)" in texts(at)
    assert not at.metric, "nothing was scored"


def test_every_bad_field_at_once_gets_its_own_message(producer):
    at = drift_page()
    submit(fill(at, cpt_bucket=None, billed_amount="abc", allowed_amount="-1", patient_age="200"))
    messages = field_messages(at)
    assert sorted(messages) == ["allowed_amount", "billed_amount", "cpt_bucket", "patient_age"]
    assert all(len(m) == 1 for m in messages.values())
    # Fixed, the same form scores.
    submit(fill(at, cpt_bucket="Surgery", billed_amount="4200", allowed_amount="3100", patient_age="61"))
    assert not field_messages(at) and at.metric


def test_an_unreachable_mlflow_is_named_and_never_called_no_champion(lifecycle_lab, quiet_stream, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    address = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", address)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    at = drift_page()
    submit(at)
    assert not at.exception
    [message] = [e.value for e in at.error if not e.value.startswith("Performance **")]  # the lifecycle's alert
    assert f"MLflow at {address} is unreachable" in message
    assert "no champion" not in message.lower()
