"""Drift statistics: hand-computed PSI cases, edge cases, and the claims generator's shifts."""
import json
import math

import numpy as np
import pandas as pd
import pytest

from engine.ml.claims import FEATURES, Shift, derived_seed, generate_claims
from engine.ml.drift import (
    ALPHA,
    CORRECTION,
    EPSILON,
    MAJOR,
    MODERATE,
    adjusted_p_values,
    chi_square_test,
    feature_drift,
    ks_test,
    psi,
    psi_level,
)


@pytest.fixture(scope="module")
def reference():
    return generate_claims(20000, seed=1)


@pytest.fixture(scope="module")
def same():
    return generate_claims(2000, seed=2)


@pytest.fixture(scope="module")
def shifted():
    return generate_claims(2000, seed=2, shift=Shift(amount_scale=1.8, age_shift=15))


def test_identical_samples_score_zero():
    x = np.random.default_rng(0).lognormal(5, 1, 5000)
    assert psi(x, x.copy()).value == 0.0
    assert psi(x, x).level == "none"
    cats = ["a", "b", "b", "c"] * 25
    assert psi(cats, list(reversed(cats))).value == 0.0


def test_numeric_two_bins_by_hand():
    # bins=2 cuts [1, 2, 3, 4] at its median 2: bins (-inf, 2] and (2, +inf), reference shares 0.5 / 0.5.
    # Current [0, 1, 2, 2, 5]: four of five values are <= 2, so shares 0.8 / 0.2.
    result = psi([1, 2, 3, 4], [0, 1, 2, 2, 5], bins=2)
    expected = 0.3 * math.log(1.6) + (-0.3) * math.log(0.4)  # = 0.3 * ln 4
    assert expected == pytest.approx(0.41588830833596715, abs=1e-12)
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.level == "major"
    assert [b.label for b in result.bins] == ["(-inf, 2.0]", "(2.0, +inf)"]
    assert [b.reference_share for b in result.bins] == [0.5, 0.5]
    assert [b.current_share for b in result.bins] == [0.8, 0.2]
    assert [b.contribution for b in result.bins] == pytest.approx([0.3 * math.log(1.6), -0.3 * math.log(0.4)])


def test_numeric_five_bins_by_hand_with_empty_bin_and_out_of_range_values():
    # Reference 1..10 with bins=5 cuts at 2, 4, 6, 8: five bins of 0.2 each.
    # Current: (-inf,2] {0, 2}; (2,4] {3, 3}; (4,6] {5}; (6,8] nothing; (8,+inf) {8.5, 11, 12, 20, 30}
    # -> shares 0.2, 0.2, 0.1, 0 (-> EPSILON), 0.5; values below 1 and above 10 land in the end bins.
    assert EPSILON == 1e-4
    result = psi(np.arange(1, 11), [0, 2, 3, 3, 5, 8.5, 11, 12, 20, 30], bins=5)
    expected = (0.0 + 0.0
                + (0.1 - 0.2) * math.log(0.1 / 0.2)
                + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
                + (0.5 - 0.2) * math.log(0.5 / 0.2))
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert [b.label for b in result.bins] == ["(-inf, 2.0]", "(2.0, 4.0]", "(4.0, 6.0]", "(6.0, 8.0]", "(8.0, +inf)"]
    assert [b.current_share for b in result.bins] == [0.2, 0.2, 0.1, 0.0, 0.5]  # reported as observed
    assert sum(b.contribution for b in result.bins) == pytest.approx(result.value, abs=1e-12)


def test_categorical_by_hand():
    # Reference a:b:c = 5:3:2, current 2:3:5 -> the b term is 0, a and c each contribute 0.3 * ln 2.5.
    ref = ["a"] * 5 + ["b"] * 3 + ["c"] * 2
    cur = ["a"] * 2 + ["b"] * 3 + ["c"] * 5
    result = psi(ref, cur)
    expected = (0.2 - 0.5) * math.log(0.2 / 0.5) + 0.0 + (0.5 - 0.2) * math.log(0.5 / 0.2)
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert result.value == pytest.approx(0.6 * math.log(2.5), abs=1e-12)
    assert [b.label for b in result.bins] == ["a", "b", "c"]


def test_empty_categories_use_epsilon():
    # Reference a, a, b, b; current a, a, a, c: b is missing from current and c is new.
    result = psi(["a", "a", "b", "b"], ["a", "a", "a", "c"])
    expected = ((0.75 - 0.5) * math.log(0.75 / 0.5)
                + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
                + (0.25 - 1e-4) * math.log(0.25 / 1e-4))
    assert result.value == pytest.approx(expected, abs=1e-9)
    assert [(b.label, b.reference_share, b.current_share) for b in result.bins] == [
        ("a", 0.5, 0.75), ("b", 0.5, 0.0), ("c", 0.0, 0.25)]


def test_categorical_detection_and_override():
    ref = pd.Series(pd.Categorical(["x", "y", "y"], categories=["x", "y", "unused"]))
    result = psi(ref, ["y", "y", "x"])
    assert [b.label for b in result.bins] == ["y", "x"]  # unobserved levels are not bins
    assert result.value == 0.0
    as_categories = psi([1, 1, 2, 2], [1, 2, 2, 2], categorical=True)
    assert [b.label for b in as_categories.bins] == ["1", "2"]
    assert [b.label for b in psi([False, True, True], [True, True]).bins] == ["True", "False"]
    assert [b.label for b in psi(["b", "a", "c", "a", "b"], ["d"]).bins] == ["b", "a", "c", "d"]  # ties: first seen
    with pytest.raises(ValueError, match="not numeric"):
        psi(["a", "b"], ["a"], categorical=False)


def test_single_valued_reference():
    assert psi([5.0] * 10, [5.0] * 3).value == 0.0
    assert psi(["x"] * 10, ["x"] * 3).value == 0.0
    # The single value gets its own bin with open bins either side: reference 0 / 1 / 0, current 0.25 / 0.5 / 0.25.
    result = psi([5] * 10, [4, 5, 5, 6])
    assert [b.label for b in result.bins] == ["(-inf, 5.0)", "[5.0, 5.0]", "(5.0, +inf)"]
    expected = 2 * (0.25 - 1e-4) * math.log(0.25 / 1e-4) + (0.5 - 1.0) * math.log(0.5 / 1.0)
    assert result.value == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("reference", [
    [0.0] * 90 + list(range(1, 11)),       # point mass at the minimum (zero amounts)
    list(range(10)) + [100.0] * 90,        # point mass at the maximum (a cap)
    [0, 1] * 50,                           # two values
    np.random.default_rng(3).integers(0, 111, 5000),
])
def test_quantile_bins_never_empty_in_reference(reference):
    result = psi(reference, reference)
    assert len(result.bins) >= 2
    assert all(b.reference_share > 0 for b in result.bins)
    assert result.value == 0.0


def test_missing_values_get_a_bin_of_their_own():
    # Reference 1, 2, 3, missing; current 1, missing, missing, missing. Bins (-inf, 1], (1, 2], (2, +inf), missing.
    result = psi([1.0, 2.0, 3.0, np.nan], [1.0, None, None, None], bins=3)
    assert [b.label for b in result.bins] == ["(-inf, 1.0]", "(1.0, 2.0]", "(2.0, +inf)", "missing"]
    ref, cur = [0.25, 0.25, 0.25, 0.25], [0.25, 0.0, 0.0, 0.75]
    assert [b.reference_share for b in result.bins] == ref
    assert [b.current_share for b in result.bins] == cur
    e = EPSILON
    expected = 0 + 2 * (e - 0.25) * math.log(e / 0.25) + (0.75 - 0.25) * math.log(0.75 / 0.25)
    assert result.value == pytest.approx(expected, rel=1e-12)
    categorical = psi(["a", None], ["a", "a"])
    assert [(b.label, b.reference_share, b.current_share) for b in categorical.bins] == [("a", 0.5, 1.0),
                                                                                          ("missing", 0.5, 0.0)]


def test_no_missing_bin_when_nothing_is_missing():
    assert "missing" not in [b.label for b in psi([1.0, 2.0, 3.0], [1.0, 2.0], bins=3).bins]


def test_a_reference_with_only_missing_values_still_gives_a_psi():
    result = psi([np.nan, np.nan], [1.0, np.nan], categorical=False)
    assert [(b.label, b.reference_share, b.current_share) for b in result.bins] == [("(-inf, +inf)", 0.0, 0.5),
                                                                                     ("missing", 1.0, 0.5)]
    assert result.level == "major"


def test_empty_and_malformed_inputs_rejected():
    with pytest.raises(ValueError, match="reference sample is empty"):
        psi([], [1.0])
    with pytest.raises(ValueError, match="current sample is empty"):
        psi([1.0], np.array([]))
    with pytest.raises(ValueError, match="current sample is empty"):
        ks_test([1.0], [])
    with pytest.raises(ValueError, match="1-D"):
        psi(np.ones((3, 2)), [1.0])
    with pytest.raises(ValueError, match="bins"):
        psi([1, 2], [1, 2], bins=1)


def test_levels_at_boundaries():
    assert (MODERATE, MAJOR) == (0.1, 0.25)
    assert psi_level(0.0) == "none"
    assert psi_level(0.0999999) == "none"
    assert psi_level(0.1) == "moderate"
    assert psi_level(0.2499999) == "moderate"
    assert psi_level(0.25) == "major"
    assert psi_level(3.0) == "major"


def test_same_distribution_has_no_drift(reference, same):
    report = feature_drift(reference, same)
    assert report.level == "none"
    assert report.drift_share == 0.0
    assert [f.feature for f in report.features] == list(FEATURES)
    assert all(f.psi.value < MODERATE and not f.drifted for f in report.features)
    assert report.max_psi == max(f.psi.value for f in report.features)
    assert (report.n_reference, report.n_current) == (20000, 2000)


def test_shifted_amounts_and_ages_are_major(reference, shifted):
    report = feature_drift(reference, shifted)
    by_name = {f.feature: f for f in report.features}
    assert by_name["billed_amount"].psi.level == "major"
    assert by_name["patient_age"].psi.level == "major"
    assert by_name["billed_amount"].drifted and by_name["billed_amount"].significant
    assert by_name["provider_type"].psi.level == "none"  # the case mix did not move
    assert report.level == "major"
    assert report.drift_share >= 2 / 6
    assert {f.kind for f in report.features if f.feature in ("cpt_bucket", "patient_age")} == {
        "categorical", "numeric"}


def test_report_serialises(reference, shifted):
    report = feature_drift(reference, shifted)
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["level"] == "major"
    assert len(payload["features"]) == len(FEATURES)
    assert {"label", "reference_share", "current_share", "contribution"} <= set(payload["features"][0]["bins"][0])
    frame = report.to_frame()
    assert list(frame["feature"]) == list(FEATURES)
    assert {"kind", "psi", "level", "drifted", "test", "statistic", "p_value", "significant"} <= set(frame.columns)
    json.dumps(report.features[0].psi.to_dict(), allow_nan=False)


def test_feature_drift_counts_missing_values_instead_of_raising(reference, same):
    broken = same.assign(patient_age=same["patient_age"].astype(float).where(same.index > 2))
    report = feature_drift(reference, broken)
    age = next(f for f in report.features if f.feature == "patient_age")
    missing = [b for b in age.psi.bins if b.label == "missing"]
    assert missing and missing[0].reference_share == 0 and missing[0].current_share == 3 / len(broken)
    assert age.test.name == "ks" and 0 <= age.test.p_value <= 1  # the test sees the present values


def test_feature_drift_errors_name_the_feature(reference, same):
    with pytest.raises(ValueError, match="nope"):
        feature_drift(reference, same, features=["nope"])


def test_ks_p_values(reference, same, shifted):
    calm = ks_test(reference["billed_amount"], same["billed_amount"])
    moved = ks_test(reference["billed_amount"], shifted["billed_amount"])
    assert calm.name == "ks"
    assert calm.p_value > 0.05
    assert moved.p_value < 1e-10
    assert moved.statistic > calm.statistic


def test_chi_square_p_values(reference, same):
    boosted = generate_claims(2000, seed=2, shift=Shift(telehealth_boost=0.3))
    calm = chi_square_test(reference["provider_type"], same["provider_type"])
    moved = chi_square_test(reference["provider_type"], boosted["provider_type"])
    assert calm.name == "chi-square"
    assert calm.p_value > 0.05
    assert moved.p_value < 1e-10
    # Categories seen in only one sample are columns of the table, not errors.
    one_sided = chi_square_test(["a"] * 50 + ["b"] * 50, ["a"] * 50 + ["c"] * 50)
    assert math.isfinite(one_sided.statistic) and one_sided.p_value < 1e-10
    assert chi_square_test(["x"] * 5, ["x"] * 2).p_value == 1.0


# ---- many tests per snapshot: the family-wise correction ----------------------------------------------------
def test_holm_and_bonferroni_adjust_p_values_as_worked_out_by_hand():
    p = [0.01, 0.04, 0.03, float("nan")]  # three tests ran; the NaN one could not and does not count
    # Holm: sorted 0.01, 0.03, 0.04 -> 3 * 0.01 = 0.03, 2 * 0.03 = 0.06, 1 * 0.04 = 0.04 -> running max 0.06.
    holm = adjusted_p_values(p, "holm")
    assert holm[:3] == pytest.approx([0.03, 0.06, 0.06]) and math.isnan(holm[3])
    assert adjusted_p_values(p, "bonferroni")[:3] == pytest.approx([0.03, 0.12, 0.09])
    assert adjusted_p_values(p, "none")[:3] == pytest.approx(p[:3])
    with pytest.raises(ValueError, match="correction must be one of"):
        adjusted_p_values(p, "sidak")


def test_a_significant_feature_is_decided_on_the_corrected_p_value(reference, shifted):
    report = feature_drift(reference, shifted)
    assert report.correction == CORRECTION == "holm" and report.flagged
    by_name = {f.feature: f for f in report.features}
    assert by_name["billed_amount"].significant and by_name["billed_amount"].p_adjusted < ALPHA
    assert all(f.p_adjusted >= f.test.p_value for f in report.features)
    assert report.to_dict()["correction"] == "holm" and "p_adjusted" in report.to_frame().columns


def test_no_drift_flags_at_most_5_percent_of_40_independent_windows():
    """The false-alarm rate, measured: 40 disjoint windows of the stream's own generator against a training feed.

    Uncorrected, six tests at 5% flag some feature in far more than 5% of these windows; after Holm at most 5%.
    """
    reference = generate_claims(10000, seed=21)
    stream = generate_claims(40 * 5000, derived_seed(0, 999), "2025-07-01..2025-12-31")
    windows = [stream.iloc[k * 5000:(k + 1) * 5000] for k in range(40)]
    corrected = [feature_drift(reference, w) for w in windows]
    uncorrected = [feature_drift(reference, w, correction="none") for w in windows]
    assert all(r.level == "none" for r in corrected)  # PSI says nothing moved
    assert sum(r.flagged for r in corrected) / len(windows) <= 0.05
    assert sum(r.flagged for r in uncorrected) / len(windows) > 0.05  # what the correction is for
