"""The claims model: raw-row scoring, metric definitions, SHAP output and the artifact-size budget."""
from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from engine import pipeline
from engine.ml import model as M
from engine.ml.claims import APPROVED, CATEGORICAL, DENIED, FEATURES, TARGET, generate_claims, label_array

# The forests the steps train, read from their YAML (a step adds the run's seed as random_state).
QUICK = {**pipeline.spec("ci_quick_train").params()["forest"], "random_state": 7}
FULL = {**pipeline.spec("cd_full_train").params()["forest"], "random_state": 7}
MB = 1_000_000


@pytest.fixture(scope="module")
def quick_model():
    return M.train(generate_claims(8000, seed=1), QUICK)


@pytest.fixture(scope="module")
def holdout():
    return generate_claims(5000, seed=99)  # a seed no model here is trained on


def test_the_steps_train_the_configs_the_bench_chose():
    from bench.forest import CHOSEN, COMMON, CONFIGS
    assert {**COMMON, **CONFIGS[CHOSEN["quick"]][1]} == QUICK
    assert {**COMMON, **CONFIGS[CHOSEN["full"]][1]} == FULL


def test_categoricals_object_strings_and_json_rows_score_alike(quick_model, holdout):
    frame = holdout.head(300)
    as_objects = frame.astype({c: object for c in CATEGORICAL})
    # What a JSON payload becomes: pandas' str dtype for categories, ints for age, no extra columns.
    from_json = pd.read_json(io.StringIO(frame[list(FEATURES)].to_json(orient="records")), orient="records")
    expected = quick_model.predict_proba(frame)[:, 1]  # the raw pipeline, extra columns and all
    # Same trees, same leaves; only the threads' summation order may differ in the last bit.
    for other in (as_objects, from_json, frame[list(FEATURES)]):
        np.testing.assert_allclose(quick_model.predict_proba(other)[:, 1], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(M.predict_approval(quick_model, frame), expected, rtol=0, atol=1e-12)


def test_positive_class_is_approved(quick_model, holdout):
    assert list(quick_model.classes_) == [0, 1]
    p = M.predict_approval(quick_model, holdout)
    y = label_array(holdout)
    assert p[y == 1].mean() > p[y == 0].mean() + 0.2


def test_unknown_and_missing_categories_do_not_crash(quick_model, holdout):
    rows = M.raw_features(holdout.head(4))
    rows.loc[rows.index[0], "cpt_bucket"] = "Veterinary"  # never seen in training
    rows.loc[rows.index[1], "provider_type"] = None
    rows.loc[rows.index[2], "diagnosis_group"] = np.nan
    p = quick_model.predict_proba(rows)[:, 1]
    assert p.shape == (4,) and np.all((p >= 0) & (p <= 1))


class _Fixed:
    """A stand-in model that returns preset P(Approved) in row order."""

    classes_ = np.array([0, 1])

    def __init__(self, p):
        self.p = np.asarray(p, float)

    def predict_proba(self, rows):
        return np.column_stack([1 - self.p, self.p])[: len(rows)]


def test_evaluate_counts_by_hand():
    outcomes = ["Approved"] * 6 + ["Denied"] * 4
    frame = generate_claims(10, seed=3).assign(**{TARGET: pd.Categorical(outcomes, categories=[APPROVED, DENIED])})
    # Approved: 4 scored >= 0.5 (TP), 2 below (FN). Denied: 1 scored >= 0.5 (FP), 3 below (TN).
    p = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.55, 0.3, 0.1, 0.05]
    got = M.evaluate(_Fixed(p), frame)
    assert got["n_rows"] == 10
    assert got["confusion_matrix"]["labels"] == [APPROVED, DENIED]
    assert got["confusion_matrix"]["matrix"] == [[4, 2], [1, 3]]  # rows actual, columns predicted
    assert got["confusion_matrix"]["actual_Approved"] == {"predicted_Approved": 4, "predicted_Denied": 2}
    assert got["false_denial_rate"] == round(2 / 6, 4)  # FN / (TP + FN)
    assert got["accuracy"] == 0.7  # (TP + TN) / 10
    assert got["precision"] == 0.8  # TP / (TP + FP) = 4 / 5
    assert got["recall"] == round(4 / 6, 4)  # TP / (TP + FN)
    assert got["f1"] == round(8 / 11, 4)  # 2 TP / (2 TP + FP + FN)
    # ROC-AUC: the share of (approved, denied) pairs ranked right. Denied scores 0.55, 0.3, 0.1, 0.05; the
    # approved 0.9, 0.8, 0.7 and 0.6 beat all four, 0.4 beats three, 0.2 beats two: 21 of 24 pairs.
    assert got["roc_auc"] == 0.875
    assert json.loads(json.dumps(got)) == got


def test_metrics_need_no_model_and_the_threshold_moves_only_the_decisions():
    y = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    p = [0.9, 0.8, 0.7, 0.6, 0.4, 0.2, 0.55, 0.3, 0.1, 0.05]
    frame = generate_claims(10, seed=3).assign(
        **{TARGET: pd.Categorical(np.where(y == 1, APPROVED, DENIED), categories=[APPROVED, DENIED])})
    assert M.classification_metrics(y, p, 0.5) == M.evaluate(_Fixed(p), frame)
    low = M.classification_metrics(y, p, 0.25)
    # At 0.25: Approved 0.2 is the one false denial; Denied 0.55 and 0.3 are false approvals.
    assert low["confusion_matrix"]["matrix"] == [[5, 1], [2, 2]]
    assert low["f1"] == round(2 * 5 / (2 * 5 + 2 + 1), 4) and low["false_denial_rate"] == round(1 / 6, 4)
    assert low["roc_auc"] == M.classification_metrics(y, p, 0.9)["roc_auc"] == 0.875  # worked out above
    assert M.evaluate(_Fixed(p), frame, 0.25) == low


def test_quick_config_generalises_to_another_seed(quick_model, holdout):
    scores = M.evaluate(quick_model, holdout)
    assert scores["roc_auc"] >= 0.85
    assert scores["n_rows"] == len(holdout)


def test_explain_reports_every_raw_feature_and_draws_a_png(quick_model, holdout):
    got = M.explain(quick_model, holdout, sample_size=60, seed=5)
    assert sorted(got.importance["feature"]) == sorted(FEATURES)
    assert got.importance["mean_abs_shap"].is_monotonic_decreasing
    assert (got.importance["mean_abs_shap"] > 0).all()
    assert got.sample_size == 60 and got.values.shape == (60, len(FEATURES))
    assert got.method.startswith("shap.TreeExplainer exact")
    # Exact SHAP adds up: base value + contributions = the model's P(Approved) for each explained row.
    p = M.predict_approval(quick_model, holdout.loc[got.encoded.index])
    np.testing.assert_allclose(got.base_value + got.values.sum(axis=1), p, atol=1e-6)
    again = M.explain(quick_model, holdout, sample_size=60, seed=5)
    pd.testing.assert_frame_equal(again.importance, got.importance)  # the seeded sample is fixed
    assert got.beeswarm_png().startswith(b"\x89PNG")


def test_full_config_fits_the_artifact_budget():
    full = M.train(generate_claims(40_000, seed=1), FULL)
    assert M.evaluate(full, generate_claims(5000, seed=99))["roc_auc"] >= 0.85
    assert M.model_size_bytes(full) <= 10 * MB
    # MLflow's default format, with the tree type trusted, must fit too.
    assert M.model_size_bytes(full, "skops") <= 10 * MB


def test_a_saved_model_is_sized_from_its_save_not_serialised_again(quick_model, tmp_path, monkeypatch):
    # CD logs the model (Tracking.log_and_register saves it) and then reports its size: one serialisation.
    import mlflow.sklearn
    fresh = M.train(generate_claims(2000, seed=3), QUICK)
    aside = M.model_size_bytes(fresh)  # never saved: measured on a copy saved aside (and not remembered)
    size = M.save_model(fresh, str(tmp_path / "model"))
    on_disk = sum(f.stat().st_size for f in (tmp_path / "model").rglob("*") if f.is_file())
    assert size == on_disk and abs(size - aside) < 0.01 * size  # the same files, give or take their metadata
    saves = []
    monkeypatch.setattr(mlflow.sklearn, "save_model", lambda *a, **k: saves.append(a))
    assert M.model_size_bytes(fresh) == size and saves == []
    M.model_size_bytes(quick_model)  # a model never saved is still measured, by saving a copy
    assert len(saves) == 1


# ---- calibration ------------------------------------------------------------------------------------------------
def test_calibration_on_unseen_claims_brings_the_ece_down_and_keeps_the_forest_inside():
    from engine.ml.monitor import calibration
    forest = M.train(generate_claims(12000, seed=3), FULL)
    calibrated = M.calibrate(forest, generate_claims(6000, seed=4), pipeline.spec("cd_full_train").params()
                             ["calibration"])
    fresh = generate_claims(20000, seed=98)
    outcome = label_array(fresh) == 1
    before = calibration(M.predict_approval(forest, fresh), outcome)["ece"]
    after = calibration(M.predict_approval(calibrated, fresh), outcome)["ece"]
    assert after < before / 2, (before, after)  # the raw forest is under-confident
    assert M.fitted_pipeline(calibrated) is M.fitted_pipeline(forest) is forest  # frozen: not refitted
    assert M.explain(calibrated, fresh, sample_size=20).importance["feature"].tolist()  # SHAP through the forest
    with pytest.raises(ValueError, match="calibration method must be one of isotonic, sigmoid"):
        M.calibrate(forest, fresh, "platt")
