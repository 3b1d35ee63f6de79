"""The synthetic claims generator: determinism, invariants, window parsing, shifts and the learnability bar."""
from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from engine.ml import claims
from engine.ml.claims import Shift, generate_claims, label_array, latent_score, parse_window
from engine.ml.validation import CHECK_NAMES, validate

SHIFTS = [claims.NO_SHIFT, Shift(amount_scale=1.5, age_shift=10, telehealth_boost=0.3, surgery_boost=0.2),
          Shift(amount_scale=0.001, age_shift=-80), Shift(age_shift=90, telehealth_boost=1.0, surgery_boost=1.0)]


# --- determinism -------------------------------------------------------------------------------------------------

def test_same_arguments_give_the_identical_frame():
    for kwargs in ({}, {"window": "2024-02-01..2024-02-29"}, {"shift": SHIFTS[1]}):
        pd.testing.assert_frame_equal(generate_claims(2000, 5, **kwargs), generate_claims(2000, 5, **kwargs))


def test_different_seed_or_window_gives_a_different_frame():
    base = generate_claims(2000, 5)
    for other in (generate_claims(2000, 6), generate_claims(2000, 5, window="2024-01-01..2024-06-30")):
        assert not np.array_equal(base["billed_amount"].to_numpy(), other["billed_amount"].to_numpy())
    assert set(base["claim_id"]).isdisjoint(generate_claims(2000, 6)["claim_id"])


# --- invariants --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 123456, 2**31 + 123456 * 1000 + 3])
@pytest.mark.parametrize("shift", SHIFTS, ids=["none", "mixed", "tiny_young", "old_all_boosts"])
def test_invariants_hold_for_any_seed_and_shift(seed, shift):
    window = "2025-03-01..2025-03-31"
    frame = generate_claims(3000, seed, window=window, shift=shift)
    assert list(frame.columns) == list(claims.COLUMNS)
    billed, allowed, age = (frame[c].to_numpy() for c in claims.NUMERIC)
    assert (billed > 0).all() and (allowed > 0).all() and (allowed <= billed).all()
    assert age.min() >= 0 and age.max() <= 110
    assert np.issubdtype(age.dtype, np.integer)
    start, end = parse_window(window)
    assert frame["service_date"].min() >= pd.Timestamp(start)
    assert frame["service_date"].max() <= pd.Timestamp(end)
    for column, allowed_values in claims.CATEGORIES.items():
        assert tuple(frame[column].cat.categories) == allowed_values
        assert set(frame[column].unique()) <= set(allowed_values)
    assert tuple(frame[claims.TARGET].cat.categories) == (claims.APPROVED, claims.DENIED)
    assert frame["claim_id"].is_unique
    assert frame.notna().all().all()


def test_service_dates_cover_the_window_inclusively():
    frame = generate_claims(2000, 3, window="2025-01-30..2025-02-01")
    days = set(frame["service_date"].dt.date)
    assert days == {date(2025, 1, 30), date(2025, 1, 31), date(2025, 2, 1)}
    one_day = generate_claims(50, 3, window="2025-07-04..2025-07-04")
    assert set(one_day["service_date"].dt.date) == {date(2025, 7, 4)}


def test_empty_frame_has_the_same_schema():
    empty, some = generate_claims(0, 1), generate_claims(5, 1)
    assert len(empty) == 0
    assert list(empty.columns) == list(claims.COLUMNS)
    pd.testing.assert_series_equal(empty.dtypes, some.dtypes)


def test_negative_n_is_rejected():
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_claims(-1, 1)


# --- window parsing ----------------------------------------------------------------------------------------------

def test_parse_window_accepts_iso_ranges():
    assert parse_window("2025-01-01..2025-06-30") == (date(2025, 1, 1), date(2025, 6, 30))
    assert parse_window(" 2025-01-01 .. 2025-01-01 ") == (date(2025, 1, 1), date(2025, 1, 1))


@pytest.mark.parametrize("window", ["2025-01-01", "", "2025-01-01..2025-02-01..2025-03-01", "2025-01-01-2025-02-01",
                                    None, 20250101])
def test_parse_window_rejects_bad_format(window):
    with pytest.raises(ValueError, match=r"must look like 2025-01-01\.\.2025-06-30"):
        parse_window(window)


@pytest.mark.parametrize("window", ["2025-13-01..2025-12-31", "yesterday..today", "2025-02-30..2025-03-01", ".."])
def test_parse_window_rejects_bad_dates(window):
    with pytest.raises(ValueError, match=r"use ISO dates like 2025-01-01\.\.2025-06-30"):
        parse_window(window)


def test_parse_window_rejects_end_before_start():
    with pytest.raises(ValueError, match="ends before it starts; put the earlier date first"):
        parse_window("2025-06-30..2025-01-01")
    with pytest.raises(ValueError, match="ends before it starts"):
        generate_claims(10, 1, window="2025-06-30..2025-01-01")


# --- shifts ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base():
    return generate_claims(20000, 11)


def test_amount_scale_moves_median_billed(base):
    scaled = generate_claims(20000, 11, shift=Shift(amount_scale=1.5))
    ratio = scaled["billed_amount"].median() / base["billed_amount"].median()
    assert ratio == pytest.approx(1.5, abs=0.05)
    # A different seed too, so the ratio is a property of the distribution rather than of shared draws.
    other = generate_claims(20000, 12, shift=Shift(amount_scale=1.5))
    assert other["billed_amount"].median() / base["billed_amount"].median() == pytest.approx(1.5, abs=0.1)


def test_telehealth_boost_raises_telehealth_share(base):
    before = (base["provider_type"] == "Telehealth").mean()
    after = (generate_claims(20000, 11, shift=Shift(telehealth_boost=0.2))["provider_type"] == "Telehealth").mean()
    assert before == pytest.approx(8 / 100, abs=0.01)  # its declared weight
    assert after == pytest.approx(before * 0.8 + 0.2, abs=0.015)


def test_age_and_surgery_shifts(base):
    shifted = generate_claims(20000, 11, shift=Shift(age_shift=10, surgery_boost=0.25))
    assert shifted["patient_age"].mean() > base["patient_age"].mean() + 8  # clipping at 110 eats a little
    assert (shifted["cpt_bucket"] == "Surgery").mean() > (base["cpt_bucket"] == "Surgery").mean() + 0.2


def test_outcomes_follow_the_documented_rule(base):
    # Approved with probability sigmoid(1.6 * score), as the module docstring states.
    expected = 1 / (1 + np.exp(-1.6 * latent_score(base)))
    labels = label_array(base)
    assert labels.dtype == np.int8 and set(np.unique(labels)) <= {0, 1}
    assert labels.mean() == pytest.approx(expected.mean(), abs=0.01)
    high, low = expected > 0.9, expected < 0.1
    assert labels[high].mean() > 0.85 and labels[low].mean() < 0.15


# --- contract and learnability -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shift", SHIFTS, ids=["none", "mixed", "tiny_young", "old_all_boosts"])
def test_generated_frames_pass_the_data_contract(shift):
    for n in (0, 1, 5000):
        report = validate(generate_claims(n, 4, shift=shift))
        assert report.passed, report.failed_checks
        assert [c.name for c in report.checks] == list(CHECK_NAMES)


def _encode(frame: pd.DataFrame) -> np.ndarray:
    codes = [frame[c].cat.codes.to_numpy() for c in claims.CATEGORICAL]
    return np.column_stack(codes + [frame[c].to_numpy(float) for c in claims.NUMERIC])


def test_random_forest_reaches_the_auc_bar():
    train, test = generate_claims(20000, 1), generate_claims(10000, 2)
    # n_jobs only parallelises; the fitted forest is the same as with the default.
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=-1)
    forest.fit(_encode(train), label_array(train))
    auc = roc_auc_score(label_array(test), forest.predict_proba(_encode(test))[:, 1])
    assert auc >= 0.85, auc


# --- prefix stability, sequences and ids --------------------------------------------------------------------------

def test_every_prefix_is_the_frame_of_that_size():
    rng = np.random.default_rng(2024)
    for _ in range(60):
        seed = int(rng.integers(0, claims.COMMIT_SEEDS))
        n = int(rng.integers(0, 5 * claims.BLOCK))
        k = int(rng.integers(0, n + 1))
        shift = SHIFTS[int(rng.integers(0, len(SHIFTS)))]
        pd.testing.assert_frame_equal(generate_claims(n, seed, shift=shift).head(k),
                                      generate_claims(k, seed, shift=shift))


def test_start_continues_the_same_sequence():
    whole = generate_claims(3 * claims.BLOCK + 17, 9)
    for start, n in ((0, 5), (claims.BLOCK - 3, 10), (1500, 1000), (2 * claims.BLOCK, claims.BLOCK + 17)):
        part = generate_claims(n, 9, start=start)
        pd.testing.assert_frame_equal(part, whole.iloc[start:start + n].reset_index(drop=True))


def test_ids_are_unique_across_a_thousand_seeds_and_their_derived_seeds():
    seeds = list(range(500)) + [claims.COMMIT_SEEDS - 1 - s for s in range(500)]
    derived = [claims.derived_seed(s, p) for s in seeds for p in (1, 2, 3)]
    assert set(seeds).isdisjoint(derived)  # a holdout never replays another commit's training feed
    ids = np.concatenate([generate_claims(300, s)["claim_id"].to_numpy() for s in seeds + derived])
    assert len(ids) == 300 * 4000 and len(np.unique(ids)) == len(ids)
    # Each id still says where it came from: the seed above ROWS_PER_SEED, the row below.
    assert generate_claims(3, 42, start=7)["claim_id"].tolist() == [42_000_007, 42_000_008, 42_000_009]


@pytest.mark.parametrize("kwargs, message", [
    (dict(n=10, seed=-1), "seed must be"),
    (dict(n=10, seed=claims.MAX_SEED + 1), "seed must be"),
    (dict(n=10, seed=1, start=-1), "start must be"),
    (dict(n=10, seed=1, start=claims.ROWS_PER_SEED - 5), "use another seed"),
])
def test_out_of_range_seed_or_rows_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_claims(**kwargs)


def test_derived_seed_refuses_an_unknown_purpose():
    for purpose in (0, 1000):
        with pytest.raises(ValueError, match="purpose must be 1..999"):
            claims.derived_seed(1, purpose)


# --- concept drift and intensity ---------------------------------------------------------------------------------

def test_concept_drift_changes_outcomes_not_inputs(base):
    turned = generate_claims(20000, 11, shift=Shift(concept=1.0))
    inputs = ["claim_id", "service_date", *claims.FEATURES]
    pd.testing.assert_frame_equal(turned[inputs], base[inputs])
    # The allowed share used to raise approval; after the turn it lowers it.
    ratio = base["allowed_amount"] / base["billed_amount"]
    high = (ratio > ratio.median()).to_numpy()
    before, after = label_array(base), label_array(turned)
    assert before[high].mean() > before[~high].mean() + 0.1
    assert after[high].mean() < after[~high].mean() - 0.1


def test_scaled_shift_interpolates_between_none_and_full():
    full = Shift(amount_scale=1.44, age_shift=10, telehealth_boost=0.3, oncology_boost=0.2, concept=1.0)
    assert full.scaled(0) == claims.NO_SHIFT
    assert full.scaled(1) == full
    half = full.scaled(0.5)
    assert half.amount_scale == pytest.approx(1.2) and half.age_shift == 5 and half.concept == 0.5
    assert full.scaled(7) == full and full.scaled(-1) == claims.NO_SHIFT  # clamped to 0..1


def test_oncology_boost_raises_the_oncology_share(base):
    shifted = generate_claims(20000, 11, shift=Shift(oncology_boost=0.3))
    before = (base["diagnosis_group"] == "Oncology").mean()
    assert (shifted["diagnosis_group"] == "Oncology").mean() == pytest.approx(before * 0.7 + 0.3, abs=0.015)
