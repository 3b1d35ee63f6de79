"""Production monitoring: realised performance with bootstrap intervals and its level, the estimate on the same
claims as the realised accuracy, live calibration, and the reference-vs-current histograms."""
import numpy as np
import pandas as pd
import pytest

from engine.ml.claims import FEATURES, Shift, generate_claims
from engine.ml.monitor import (
    PERFORMANCE,
    PerformanceRule,
    distributions,
    holdout_figures,
    performance,
    snapshot,
)

COSTS = {"false_denial": 2.0, "false_approval": 1.0}


def claims(tp: int, fn: int, fp: int, tn: int) -> tuple[np.ndarray, np.ndarray]:
    """(approved, outcome) with the given cell counts."""
    approved = np.array([True] * tp + [False] * fn + [True] * fp + [False] * tn)
    outcome = np.array([True] * (tp + fn) + [False] * (fp + tn))
    return approved, outcome


def test_holdout_figures_are_worked_out_by_hand():
    figures = holdout_figures(*claims(tp=60, fn=10, fp=20, tn=10), COSTS)
    assert figures["accuracy"] == pytest.approx(0.70)
    assert figures["false_denial_rate"] == pytest.approx(10 / 70)
    assert figures["cost_per_claim"] == pytest.approx((2 * 10 + 1 * 20) / 100)
    assert figures["n"] == 100 and figures["costs"] == COSTS


def test_performance_like_the_holdout_is_level_none_with_intervals_around_the_values():
    holdout = holdout_figures(*claims(tp=6000, fn=1000, fp=700, tn=2300), COSTS)
    result = performance(*claims(tp=3000, fn=500, fp=350, tn=1150), holdout)
    assert result["status"] == "ok" and result["level"] == "none"
    accuracy = result["metrics"]["accuracy"]
    assert accuracy["value"] == pytest.approx(0.83) and accuracy["holdout"] == pytest.approx(0.83)
    low, high = accuracy["interval"]
    assert low < 0.83 < high and 0.005 < high - low < 0.03  # about +-1.96 * sqrt(.83 * .17 / 5000)
    cost = result["metrics"]["cost_per_claim"]
    assert cost["value"] == pytest.approx((2 * 500 + 350) / 5000)
    assert cost["approve_all"] == pytest.approx((350 + 1150) / 5000)  # approving all: every denial is wrong
    assert result["metrics"]["accuracy"]["approve_all"] == pytest.approx(3500 / 5000)
    assert result["evidence"]["metric"] == "accuracy" and result["evidence"]["reference_name"] == "holdout"
    assert not any(c["breached"] for c in result["checks"])


def test_accuracy_below_the_holdout_warns_then_alerts():
    holdout = holdout_figures(*claims(tp=6000, fn=1000, fp=700, tn=2300), COSTS)  # accuracy 0.83
    warned = performance(*claims(tp=3300, fn=200, fp=900, tn=600), holdout)        # 0.78, cost 0.26
    assert warned["level"] == "warning"
    assert warned["evidence"]["metric"] == "accuracy" and warned["evidence"]["level"] == "warning"
    alerted = performance(*claims(tp=2600, fn=900, fp=700, tn=800), holdout)       # 0.68
    assert alerted["level"] == "alert"
    evidence = alerted["evidence"]
    assert evidence["interval"][1] < holdout["accuracy"] - PERFORMANCE.alert_drop
    assert evidence["value"] == pytest.approx(0.68) and evidence["reference"] == holdout["accuracy"]


def test_costing_more_than_approving_every_claim_is_an_alert_even_near_the_holdout_accuracy():
    # A model that denies many claims that were in fact approved: cost 2 * fn outweighs approving all.
    holdout = holdout_figures(*claims(tp=600, fn=400, fp=0, tn=1000), COSTS)  # accuracy 0.8, cost 0.4
    result = performance(*claims(tp=1600, fn=1000, fp=0, tn=1400), holdout, PerformanceRule(alert_drop=0.5))
    cost = next(c for c in result["checks"] if c["metric"] == "cost_per_claim" and c["level"] == "alert")
    assert cost["breached"] and cost["reference_name"] == "approve_all" and cost["interval"][0] > 0
    assert result["level"] == "alert"


def test_too_few_labelled_claims_give_no_level():
    holdout = holdout_figures(*claims(tp=60, fn=10, fp=20, tn=10), COSTS)
    result = performance(*claims(tp=100, fn=10, fp=10, tn=10), holdout)
    assert result["status"] == "not_enough_data" and result["level"] is None and result["evidence"] is None


def window_of(frame: pd.DataFrame, p: np.ndarray, labelled: np.ndarray) -> pd.DataFrame:
    approved = p >= 0.5
    outcome = (frame["outcome"].astype(str) == "Approved").to_numpy()
    return frame[list(FEATURES)].assign(p_approved=p, approved=approved,
                                        outcome=pd.array(np.where(labelled, outcome, None), dtype="boolean"),
                                        shadow_approved=None)


def test_the_estimate_is_computed_on_the_same_claims_as_the_realised_accuracy():
    frame = generate_claims(1000, seed=3)
    labelled = np.arange(1000) < 700               # the older claims have their outcome
    p = np.where(labelled, 0.9, 0.6)               # the model is surer of the older ones
    result = snapshot(frame, np.full(1000, 0.5), window_of(frame, p, labelled), min_rows=500)
    assert result["estimated_accuracy"] == pytest.approx(0.9)         # on the 700 labelled claims
    assert result["estimated_accuracy_pending"] == pytest.approx(0.6)  # the 300 still waiting
    assert result["realised"]["n"] == 700 and result["live_calibration"]["n"] == 700
    assert result["performance"] is None and result["performance_level"] is None  # no holdout given


def test_a_snapshot_carries_the_performance_level_and_the_tests_correction():
    frame = generate_claims(2000, seed=4)
    outcome = (frame["outcome"].astype(str) == "Approved").to_numpy()
    p = np.where(outcome, 0.8, 0.2)  # right on every claim
    holdout = holdout_figures(p >= 0.5, outcome, COSTS)
    result = snapshot(generate_claims(5000, seed=5), np.full(100, 0.5), window_of(frame, p, np.ones(2000, bool)),
                      min_rows=500, holdout=holdout)
    assert result["performance_level"] == "none" and result["performance"]["metrics"]["accuracy"]["value"] == 1.0
    assert result["correction"] == "holm" and result["flagged"] is False
    assert result["live_calibration"]["ece"] == pytest.approx(0.2)


def test_distributions_compare_reference_and_current_over_common_edges():
    reference = generate_claims(5000, seed=6)
    current = generate_claims(5000, seed=7, shift=Shift(amount_scale=1.8, age_shift=15))
    hist = distributions(reference, current)
    assert set(hist) == {"billed_amount", "allowed_amount", "patient_age"}
    for h in hist.values():
        assert len(h["edges"]) == len(h["reference"]) + 1 == len(h["current"]) + 1
        assert sum(h["reference"]) == pytest.approx(1) and sum(h["current"]) == pytest.approx(1)
    assert hist["billed_amount"]["log"] and not hist["patient_age"]["log"]
    centres = np.array(hist["patient_age"]["edges"][:-1])
    # Older patients: the current mean age is about 15 years above the reference's.
    shift = np.dot(centres, hist["patient_age"]["current"]) - np.dot(centres, hist["patient_age"]["reference"])
    assert 10 < shift < 20
