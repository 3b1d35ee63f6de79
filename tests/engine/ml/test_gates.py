"""Gates as data: check() margins, gate() verdicts, and the approve-every-claim baseline."""
from __future__ import annotations

import numpy as np
import pytest

from engine.ml.claims import generate_claims, label_array
from engine.ml.gates import baseline_metrics, check, gate


@pytest.mark.parametrize("value, op, threshold, margin, passed", [
    (0.80, ">=", 0.75, 0.05, True),
    (0.75, ">=", 0.75, 0.0, True),       # on the line passes >=
    (0.70, ">=", 0.75, -0.05, False),
    (-0.02, ">=", -0.01, -0.01, False),  # a negative threshold (non-inferiority) keeps the sign right
    (0.005, "<=", 0.01, 0.005, True),
    (0.01, "<=", 0.01, 0.0, True),
    (0.03, "<=", 0.01, -0.02, False),
    (0.25, "<", 0.25, 0.0, False),       # on the line fails a strict comparison, with margin 0
    (0.10, "<", 0.25, 0.15, True),
    (0.90, ">", 0.75, 0.15, True),
])
def test_check_margin_is_how_far_inside_the_threshold(value, op, threshold, margin, passed):
    c = check("metric", value, op, threshold)
    assert c == {"name": "metric", "value": pytest.approx(value), "op": op, "threshold": threshold,
                 "margin": pytest.approx(margin, abs=1e-9), "passed": passed}
    assert isinstance(c["passed"], bool) and isinstance(c["threshold"], float)


def test_check_rounds_value_and_margin_to_six_places():
    c = check("F1 gain", 0.123456789, ">=", 0.1)
    assert c["value"] == 0.123457 and c["margin"] == 0.023457


def test_check_accepts_numpy_numbers():
    c = check("psi", np.float64(0.3), "<", np.float32(0.25))
    assert c["passed"] is False and type(c["value"]) is float and c["margin"] == pytest.approx(-0.05, abs=1e-6)


def test_check_fails_loudly_on_an_unknown_operator():
    with pytest.raises((KeyError, ValueError)):
        check("x", 1.0, "==", 1.0)


def test_gate_passes_when_every_check_passes():
    g = gate("F1 up, AUC not down", [("F1 gain", 0.02, ">=", -0.01), ("ROC-AUC drop", 0.001, "<=", 0.01)])
    assert g["verdict"] == "pass" and g["rule"] == "F1 up, AUC not down"
    assert [c["name"] for c in g["checks"]] == ["F1 gain", "ROC-AUC drop"]
    assert all(c["passed"] for c in g["checks"])


def test_gate_fails_when_any_check_fails():
    g = gate("rule", [("F1 gain", -0.2, ">=", -0.01), ("ROC-AUC drop", 0.001, "<=", 0.01)])
    assert g["verdict"] == "fail"
    assert [c["passed"] for c in g["checks"]] == [False, True]
    assert g["checks"][0]["margin"] == pytest.approx(-0.19)


def test_gate_uses_the_given_verdict_when_it_stops_the_run():
    checks = [("accuracy drop vs champion", 0.0, "<=", 0.02), ("max input PSI", 0.9, "<", 0.25)]
    assert gate("shadow", checks, "hold")["verdict"] == "hold"
    assert gate("shadow", checks[:1], "hold")["verdict"] == "pass"


@pytest.fixture(scope="module")
def frame():
    return generate_claims(3000, seed=17)


def test_baseline_approves_every_claim(frame):
    m = baseline_metrics(frame)
    share = float(label_array(frame).mean())
    assert 0 < share < 1
    assert (m["recall"], m["roc_auc"], m["false_denial_rate"]) == (1.0, 0.5, 0.0)
    assert m["precision"] == pytest.approx(share, abs=1e-4) and m["accuracy"] == pytest.approx(share, abs=1e-4)
    assert m["f1"] == pytest.approx(2 * share / (1 + share), abs=1e-4)
    assert m["n_rows"] == len(frame)
    matrix = m["confusion_matrix"]["matrix"]  # rows actual Approved/Denied, columns predicted Approved/Denied
    assert matrix[0][1] == 0 and matrix[1][1] == 0 and matrix[0][0] + matrix[1][0] == len(frame)
