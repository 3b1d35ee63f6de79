"""Gates as data: check() margins, gate() verdicts, checks stored and read back (old ones too), the baselines, and
the paired-bootstrap intervals."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics

from engine.ml import gates as G
from engine.ml.claims import FEATURES, generate_claims, label_array
from engine.ml.gates import Check, Direction, baseline_metrics, change, check, gate, read_check
from engine.ml.threshold import Costs


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
    assert c.to_dict() == {"name": "metric", "value": pytest.approx(value), "op": op, "threshold": threshold,
                           "margin": pytest.approx(margin, abs=1e-9), "passed": passed, "direction": "level"}
    assert isinstance(c.passed, bool) and isinstance(c.threshold, float)


def test_check_rounds_value_and_margin_to_six_places():
    c = check("F1 gain", 0.123456789, ">=", 0.1)
    assert c.value == 0.123457 and c.margin == 0.023457


def test_check_accepts_numpy_numbers():
    c = check("psi", np.float64(0.3), "<", np.float32(0.25))
    assert c.passed is False and type(c.value) is float and c.margin == pytest.approx(-0.05, abs=1e-6)


def test_check_fails_loudly_on_an_unknown_operator():
    with pytest.raises((KeyError, ValueError)):
        check("x", 1.0, "==", 1.0)


def test_gate_passes_when_every_check_passes():
    g = gate("F1 up, AUC not down", [check("F1 gain", 0.02, ">=", -0.01), check("ROC-AUC drop", 0.001, "<=", 0.01)])
    assert g["verdict"] == "pass" and g["rule"] == "F1 up, AUC not down"
    assert [c["name"] for c in g["checks"]] == ["F1 gain", "ROC-AUC drop"]
    assert all(c["passed"] for c in g["checks"])


def test_gate_fails_when_any_check_fails():
    g = gate("rule", [check("F1 gain", -0.2, ">=", -0.01), check("ROC-AUC drop", 0.001, "<=", 0.01)])
    assert g["verdict"] == "fail"
    assert [c["passed"] for c in g["checks"]] == [False, True]
    assert g["checks"][0]["margin"] == pytest.approx(-0.19)


def test_gate_uses_the_given_verdict_when_it_stops_the_run():
    checks = [check("accuracy drop vs champion", 0.0, "<=", 0.02), check("max input PSI", 0.9, "<", 0.25)]
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


# ---- intervals and the checks built on them ------------------------------------------------------------------
def test_check_carries_its_interval_rounded():
    c = check("F1 change", -0.0021234567, ">=", -0.01, (-0.0051234567, 0.0009876543))
    assert c.interval == (-0.005123, 0.000988) and c.to_dict()["interval"] == [-0.005123, 0.000988]
    assert check("max input PSI", 0.1, "<", 0.25).interval is None
    assert "interval" not in check("max input PSI", 0.1, "<", 0.25).to_dict()
    assert gate("r", [check("a", 0.1, ">=", 0.0, (0.05, 0.15))])["checks"][0]["interval"] == [0.05, 0.15]


def test_describe_check_names_value_need_margin_and_interval():
    text = change("ROC-AUC", "change", "vs champion", -0.011, ">=", -0.005, (-0.0135, -0.0086)).describe()
    assert text == ("ROC-AUC change vs champion -0.0110 (needs lower bound >= -0.0050, margin -0.0085, "
                    "95% interval [-0.0135, -0.0086])")


def test_a_check_with_an_interval_passes_on_its_bound_not_on_the_point_estimate():
    # issue 21's case: F1 -0.0059 [-0.0094, -0.0023] against -0.005 would pass on the point estimate alone
    at_least = check("F1 change vs champion", -0.0049, ">=", -0.005, (-0.0094, -0.0023))
    assert (at_least.passed, at_least.margin) == (False, pytest.approx(-0.0044))
    assert at_least.to_dict()["decided_on"] == "lower bound of the 95% interval"
    at_most = check("error rise", 0.009, "<=", 0.01, (0.004, 0.013))
    assert (at_most.passed, at_most.margin) == (False, pytest.approx(-0.003))
    assert at_most.to_dict()["decided_on"] == "upper bound of the 95% interval"
    clear = check("F1 change vs champion", 0.002, ">=", -0.005, (-0.001, 0.005))
    assert (clear.passed, clear.margin) == (True, pytest.approx(0.004))
    assert "decided_on" not in check("max input PSI", 0.1, "<", 0.25).to_dict()  # no interval: the value decides
    assert gate("r", [check("a", 0.0, ">=", -0.01, (-0.02, 0.01))])["verdict"] == "fail"


# ---- directions: stored with the check, or derived once from an old check's name -----------------------------
def test_a_change_is_named_by_its_parts_and_stored_with_its_direction():
    rise = change("F1", "change", "vs champion", 0.012, ">=", -0.01, (0.002, 0.02))
    assert (rise.name, rise.direction, rise.metric, rise.against) == (
        "F1 change vs champion", Direction.RISE, "F1", "vs champion")
    assert rise.to_dict() == {"name": "F1 change vs champion", "value": 0.012, "op": ">=", "threshold": -0.01,
                              "margin": 0.012, "passed": True, "interval": [0.002, 0.02],
                              "decided_on": "lower bound of the 95% interval", "direction": "rise",
                              "metric": "F1", "against": "vs champion"}
    assert change("cost", "saving", "per claim", 0.1, ">=", 0.0).direction is Direction.FALL
    assert change("ROC-AUC", "drop", "vs champion", 0.1, "<=", 0.2).direction is Direction.FALL


@pytest.mark.parametrize("made", [
    change("F1", "gain", "over approve-every-claim", 0.03, ">=", 0.01, (0.01, 0.05)),
    change("cost", "saving", "per claim over approve-every-claim", -0.02, ">=", 0.01, (-0.04, 0.0)),
    check("max input PSI", 0.31, "<", 0.25),
])
def test_a_stored_check_reads_back_as_the_same_record(made):
    assert read_check(json.loads(json.dumps(made.to_dict()))) == made


@pytest.mark.parametrize("name, direction, metric, against", [
    ("ROC-AUC change vs champion", Direction.RISE, "ROC-AUC", "vs champion"),
    ("F1 gain over approve-every-claim", Direction.RISE, "F1", "over approve-every-claim"),
    ("ROC-AUC drop", Direction.FALL, "ROC-AUC", "against the reference"),
    ("accuracy drop vs champion", Direction.FALL, "accuracy", "vs champion"),
    ("cost saving per claim over approve-every-claim", Direction.LEVEL, "", ""),  # the old names had no saving
    ("max input PSI", Direction.LEVEL, "", ""),
])
def test_a_check_stored_before_directions_gets_one_from_its_name(name, direction, metric, against):
    old = {"name": name, "value": -0.01, "op": ">=", "threshold": 0.0, "margin": -0.02, "passed": False,
           "interval": [-0.02, 0.0], "decided_on": "lower bound of the 95% interval"}
    c = read_check(old)
    assert isinstance(c, Check) and (c.direction, c.metric, c.against) == (direction, metric, against)
    assert (c.value, c.interval, c.margin, c.passed) == (-0.01, (-0.02, 0.0), -0.02, False)


@pytest.fixture(scope="module")
def scored_rows():
    """Labels and two tied-heavy score vectors (two decimals), like a forest's."""
    rng = np.random.default_rng(4)
    y = rng.random(3000) < 0.7
    a = np.round(np.clip(0.35 * y + rng.random(3000) * 0.65, 0, 1), 2)
    b = np.round(np.clip(0.25 * y + rng.random(3000) * 0.75, 0, 1), 2)
    return y, a, b


def test_weighted_metrics_match_sklearn_on_the_repeated_rows(scored_rows):
    y, a, _ = scored_rows
    counts = np.random.default_rng(1).integers(0, 4, size=(3, len(y))).astype(float)
    approve = a >= 0.4
    costs = Costs(2, 1)
    for k, w in enumerate(counts):
        rows = np.repeat(np.arange(len(y)), w.astype(int))  # each row as often as its weight
        ry, ra, rp = y[rows], a[rows], approve[rows]
        assert G.roc_auc(counts, y, a)[k] == pytest.approx(metrics.roc_auc_score(ry, ra), abs=1e-12)
        assert G.f1(counts, y, approve)[k] == pytest.approx(metrics.f1_score(ry, rp), abs=1e-12)
        assert G.accuracy(counts, y, approve)[k] == pytest.approx(metrics.accuracy_score(ry, rp), abs=1e-12)
        assert G.cost(costs)(counts, y, approve)[k] == pytest.approx(costs.per_claim(ry, rp), abs=1e-12)


def test_bootstrap_is_seeded_and_paired(scored_rows):
    y, a, b = scored_rows
    first = G.PairedBootstrap(y, 200, seed=7)
    value, interval = first.difference(G.roc_auc, a, b)
    assert value == pytest.approx(metrics.roc_auc_score(y, a) - metrics.roc_auc_score(y, b), abs=1e-12)
    assert interval[0] < value < interval[1]
    assert G.PairedBootstrap(y, 200, seed=7).difference(G.roc_auc, a, b) == (value, interval)
    assert G.PairedBootstrap(y, 200, seed=8).difference(G.roc_auc, a, b)[1] != interval
    assert first.weights.shape == (200, len(y)) and (first.weights.sum(axis=1) == len(y)).all()
    assert first.describe() == {"method": "paired percentile bootstrap over the holdout rows", "resamples": 200,
                                "seed": 7, "confidence": 0.95}


def _population_f1(d: float, t: float, share: float) -> float:
    """F1 of 'approve when score >= t' for score = d * y + N(0, 1), P(y = 1) = share."""
    tp, fn = share * (1 - stats.norm.cdf(t - d)), share * stats.norm.cdf(t - d)
    fp = (1 - share) * (1 - stats.norm.cdf(t))
    return 2 * tp / (2 * tp + fp + fn)


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """Many simulated holdouts from two correlated binormal scorers whose true differences are known."""
    share, (da, ta), (db, tb), rho, n, datasets = 0.7, (1.6, 0.6), (1.3, 0.4), 0.6, 1000, 300
    true_auc = stats.norm.cdf(da / np.sqrt(2)) - stats.norm.cdf(db / np.sqrt(2))
    true_f1 = _population_f1(da, ta, share) - _population_f1(db, tb, share)
    rng = np.random.default_rng(2026)
    covered = {"auc": 0, "f1": 0}
    for i in range(datasets):
        y = rng.random(n) < share
        noise = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n)
        a, b = da * y + noise[:, 0], db * y + noise[:, 1]
        boot = G.PairedBootstrap(y, 200, seed=i)
        lo, hi = boot.difference(G.roc_auc, a, b)[1]
        covered["auc"] += lo <= true_auc <= hi
        lo, hi = boot.difference(G.f1, a >= ta, b >= tb)[1]
        covered["f1"] += lo <= true_f1 <= hi
    for name, hits in covered.items():  # 95% nominal; 300 datasets put the estimate within about +-0.025
        assert 0.90 <= hits / datasets <= 0.985, (name, hits / datasets)


@pytest.fixture(scope="module")
def holdout():
    return generate_claims(4000, seed=23)


def test_a_model_equal_to_the_champion_passes(holdout):
    y = label_array(holdout)
    same = G.Scored(np.clip(0.3 + 0.4 * y + np.random.default_rng(0).normal(0, 0.2, len(y)), 0, 1), 0.4)
    boot = G.PairedBootstrap(y, 200, seed=1)
    g = gate("equal", G.versus_champion(boot, same, same, -0.005, -0.01))
    assert g["verdict"] == "pass"
    assert [(c["value"], c["interval"], c["direction"]) for c in g["checks"]] == [(0.0, [0.0, 0.0], "rise")] * 2


def test_with_no_champion_a_constant_predictor_fails_every_check(holdout):
    y = label_array(holdout)
    constant = G.Scored(np.full(len(y), 0.7), 0.5)  # approves everyone, ranks nobody
    feature, feature_auc, score = G.best_single_feature(holdout)
    boot = G.PairedBootstrap(y, 200, seed=1)
    g = gate("first model", G.versus_baseline(boot, constant, feature, score, Costs(2, 1), 0.05, 0.03, 0.03))
    assert g["verdict"] == "fail" and [c["passed"] for c in g["checks"]] == [False, False, False]
    auc, f1_gain, saving = g["checks"]
    assert auc["value"] == pytest.approx(0.5 - feature_auc, abs=1e-6) and auc["interval"][1] < 0
    assert (f1_gain["value"], saving["value"]) == (0.0, 0.0)


def test_with_no_champion_a_real_model_passes(holdout):
    from engine.ml.model import predict_approval, train
    model = train(generate_claims(6000, seed=24), {"n_estimators": 20, "max_leaf_nodes": 128, "random_state": 0})
    y = label_array(holdout)
    scored = G.Scored(predict_approval(model, holdout), 0.37)
    boot = G.PairedBootstrap(y, 200, seed=1)
    feature, _, score = G.best_single_feature(holdout)
    g = gate("first model", G.versus_baseline(boot, scored, feature, score, Costs(2, 1), 0.05, 0.03, 0.03))
    assert g["verdict"] == "pass", g
    assert all(c["interval"][0] > c["threshold"] for c in g["checks"])


def test_best_single_feature_finds_a_deciding_column(holdout):
    rigged = holdout.assign(patient_age=label_array(holdout) * 50 + 10)  # age alone now decides
    assert G.best_single_feature(rigged)[:2] == ("patient_age", 1.0)
    feature, auc, score = G.best_single_feature(holdout)
    assert feature in FEATURES and auc == pytest.approx(metrics.roc_auc_score(label_array(holdout), score))
    assert 0.6 < auc < 0.85  # one column tells a lot, far from all


def test_accuracy_versus_approve_every_claim(holdout):
    y = label_array(holdout).astype(bool)
    perfect = G.Scored(y.astype(float), 0.5)
    boot = G.PairedBootstrap(y, 200, seed=3)
    c = G.accuracy_versus(boot, perfect, None, 0.05, "approve-every-claim")
    assert (c.name, c.op, c.threshold) == ("accuracy change vs approve-every-claim", ">=", 0.05)
    assert (c.direction, c.metric, c.against) == (Direction.RISE, "accuracy", "vs approve-every-claim")
    assert c.value == pytest.approx(1 - y.mean()) and c.interval[0] <= c.value <= c.interval[1]
