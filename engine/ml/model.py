"""The claims settlement model: build, train, evaluate, explain and size a RandomForest pipeline.

Pure functions over pandas frames: no tracking, no database. The pipeline takes RAW claim rows (the columns in
`claims.FEATURES`, categories as plain strings or pandas categoricals) so a registered model scores raw claims,
and `predict_proba(rows)[:, 1]` is P(Approved).

Categories are ordinal-encoded, not one-hot: the forest splits on the codes directly. In bench/forest.py the
chosen forest reached ROC-AUC 0.902 ordinal vs 0.871 one-hot (one-hot's 38 sparse columns starve max_features),
exact SHAP costs 2.8 vs 9.3 ms a row, the six columns need no regrouping to report per raw feature, and an unseen
category scores as code -1 instead of failing.

The forest's votes are under-confident (calibration slope about 1.15), so CD recalibrates P(Approved) on its
validation split with scikit-learn's CalibratedClassifierCV around the frozen fitted pipeline (`calibrate`):
isotonic, because the forest's distortion is not a sigmoid. Measured on 100,000 no-drift stream claims for
three seeds, the label-free accuracy estimate (engine/ml/monitor.py) is then off by +0.002, +0.005 and -0.002
(the raw forest: -0.022, -0.022, -0.015; a sigmoid fit: +0.011, +0.011, +0.003).
"""
from __future__ import annotations

import io
import logging
import os
import tempfile
import threading
import weakref
from dataclasses import dataclass
from importlib.metadata import version

import numpy as np
import pandas as pd
from sklearn import metrics
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from engine.ml.claims import (
    APPROVED,
    CATEGORICAL,
    DENIED,
    FEATURES,
    NUMERIC,
    label_array,
)

# bench/forest.py: 200 rows of the full model explain in ~0.56 s (2.8 ms a row; budget ~1.5 s on a noisy
# 2-core box) and rank the features exactly as 2,000 rows do, each importance within ~10%.
DEFAULT_SHAP_SAMPLE = 200
SHAP_METHOD = "shap.TreeExplainer exact, {perturbation}"
# skops loads only allow-listed types (pickle runs whatever the file says); it saves this forest only with the
# tree type trusted and adds ~25 KB per tree (bench/forest.py reports both formats).
SERIALIZATION_FORMAT = "skops"
SKOPS_TRUSTED_TYPES = ("sklearn.tree._tree.Tree", "sklearn.calibration._CalibratedClassifier")
CALIBRATION_METHODS = ("isotonic", "sigmoid")

_PLOT_LOCK = threading.Lock()  # pyplot keeps global state; engine threads may render concurrently
# model -> {serialization format: bytes} of its saves (save_model); weak, so a model is forgotten with its last user.
# A fitted model is not refitted after it is saved (CD logs the model it fitted), so its size stays true.
_SAVED_BYTES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def build_model(params: dict) -> Pipeline:
    """An unfitted pipeline: ordinal-encode categories, pass numbers through, RandomForest on top."""
    forest = dict(params)
    forest.setdefault("n_jobs", 2)
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                       dtype=np.float64), list(CATEGORICAL)),
         ("numbers", "passthrough", list(NUMERIC))],
        verbose_feature_names_out=False,  # keeps the raw feature names, which explain() reports
    )
    return Pipeline([("prep", encode), ("forest", RandomForestClassifier(**forest))])


def raw_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns of `frame`, categories as plain strings (what MLflow's schema check accepts)."""
    # Only the model's columns, categories as plain objects: the fitted pipeline then records exactly
    # FEATURES as its input, and a JSON-fed frame (str dtype) and a generated one (categorical) look alike.
    return frame.loc[:, list(FEATURES)].astype({col: object for col in CATEGORICAL})


def train(frame: pd.DataFrame, params: dict) -> Pipeline:
    """Fit build_model(params) on the claims in `frame` (target: 1 = Approved)."""
    return build_model(params).fit(raw_features(frame), label_array(frame))


def calibrate(model: Pipeline, frame: pd.DataFrame, method: str = "isotonic") -> CalibratedClassifierCV:
    """`model` (fitted, left as it is) with P(Approved) recalibrated on the claims in `frame`, which it never saw.

    FrozenEstimator keeps CalibratedClassifierCV from refitting the pipeline: only the calibrator is fitted, on
    all of `frame` (scikit-learn's replacement for the removed cv="prefit")."""
    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, got {method!r}")
    return CalibratedClassifierCV(FrozenEstimator(model), method=method).fit(raw_features(frame), label_array(frame))


def fitted_pipeline(model) -> Pipeline:
    """The fitted encode-and-forest pipeline of a model, inside its calibration if it has one."""
    if isinstance(model, CalibratedClassifierCV):
        return model.calibrated_classifiers_[0].estimator.estimator  # _CalibratedClassifier -> FrozenEstimator
    return model


def predict_approval(model, frame: pd.DataFrame) -> np.ndarray:
    """P(Approved) for each raw claim row, from a fitted pipeline or a served model (engine.ml.serving)."""
    if hasattr(model, "p_approved"):
        return model.p_approved(frame)
    return model.predict_proba(raw_features(frame))[:, list(model.classes_).index(1)]


def evaluate(model: Pipeline, frame: pd.DataFrame, threshold: float = 0.5) -> dict:
    """Holdout metrics of `model` on `frame` at its decision `threshold` (see classification_metrics)."""
    return classification_metrics(label_array(frame), predict_approval(model, frame), threshold)


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict:
    """Metrics with Approved (y = 1) as the positive class, approving where proba >= threshold; a labelled
    confusion matrix. ROC-AUC uses the scores alone, so it does not depend on the threshold."""
    y, proba = np.asarray(y), np.asarray(proba, dtype=np.float64)
    pred = (proba >= threshold).astype(np.int8)
    (tn, fp), (fn, tp) = metrics.confusion_matrix(y, pred, labels=[0, 1])
    both = len(np.unique(y)) == 2  # ROC-AUC is undefined on a single-class frame

    def r(x) -> float | None:
        return None if x is None else round(float(x), 4)

    return {
        "n_rows": len(y),
        "accuracy": r(metrics.accuracy_score(y, pred)),
        "precision": r(metrics.precision_score(y, pred, zero_division=0)),
        "recall": r(metrics.recall_score(y, pred, zero_division=0)),
        "f1": r(metrics.f1_score(y, pred, zero_division=0)),
        "roc_auc": r(metrics.roc_auc_score(y, proba) if both else None),
        # The costly error for a claimant: an Approved claim the model would deny.
        "false_denial_rate": r(fn / (tp + fn) if tp + fn else 0.0),
        "confusion_matrix": {
            "labels": [APPROVED, DENIED],  # rows = actual, columns = predicted, in this order
            "matrix": [[int(tp), int(fn)], [int(fp), int(tn)]],
            "actual_" + APPROVED: {"predicted_" + APPROVED: int(tp), "predicted_" + DENIED: int(fn)},
            "actual_" + DENIED: {"predicted_" + APPROVED: int(fp), "predicted_" + DENIED: int(tn)},
        },
    }


@dataclass(frozen=True)
class Explanation:
    """Exact SHAP values (Approved class) for a seeded sample, with their mean |SHAP| importance."""

    importance: pd.DataFrame  # columns feature, mean_abs_shap; largest first
    method: str
    sample_size: int
    values: np.ndarray  # (sample_size, len(FEATURES)) SHAP values toward Approved
    encoded: pd.DataFrame  # the sample as the forest saw it (category codes), colours the beeswarm
    base_value: float

    def beeswarm_png(self, dpi: int = 110) -> bytes:
        """Render the SHAP beeswarm summary as PNG bytes (matplotlib Agg, no display needed)."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import shap

        data = shap.Explanation(self.values, base_values=np.full(len(self.values), self.base_value),
                                data=self.encoded.to_numpy(), feature_names=list(self.encoded.columns))
        with _PLOT_LOCK:
            fig = plt.figure(figsize=(7.5, 4.2))
            try:
                shap.plots.beeswarm(data, max_display=len(FEATURES), show=False, plot_size=None)
                # Categories are coloured by their ordinal code, so only numeric colours mean high/low.
                plt.xlabel("SHAP value toward Approved (probability)")
                fig.tight_layout()
                buf = io.BytesIO()
                fig.savefig(buf, format="png", dpi=dpi)
            finally:
                plt.close(fig)
        return buf.getvalue()


def explain(model: Pipeline, frame: pd.DataFrame, sample_size: int = DEFAULT_SHAP_SAMPLE,
            seed: int = 0) -> Explanation:
    """Exact TreeExplainer SHAP on a fixed seeded sample of `frame`, reported per raw feature.

    A calibrated model is explained through its forest: the SHAP values add up to the forest's P(Approved)
    before calibration, which the calibration maps monotonically, so the features' ranking holds."""
    import shap  # heavy import (numba); only explaining pays for it

    model = fitted_pipeline(model)
    rows = raw_features(frame)
    rows = rows.sample(n=min(int(sample_size), len(rows)), random_state=seed)
    prep, forest = model.named_steps["prep"], model.named_steps["forest"]
    encoded = pd.DataFrame(prep.transform(rows), columns=prep.get_feature_names_out(), index=rows.index)
    # No background data: path-dependent SHAP is exact for trees and far cheaper than interventional.
    explainer = shap.TreeExplainer(forest, feature_perturbation="tree_path_dependent")
    raw_values = explainer.shap_values(encoded.to_numpy())
    positive = list(forest.classes_).index(1)
    values = raw_values[positive] if isinstance(raw_values, list) else np.asarray(raw_values)[..., positive]
    base = np.ravel(explainer.expected_value)[positive]
    importance = (pd.DataFrame({"feature": encoded.columns, "mean_abs_shap": np.abs(values).mean(axis=0)})
                  .sort_values("mean_abs_shap", ascending=False, ignore_index=True))
    return Explanation(importance=importance, sample_size=len(rows), values=values, encoded=encoded,
                       method=SHAP_METHOD.format(perturbation=explainer.feature_perturbation),
                       base_value=float(base))


def pip_requirements(serialization_format: str = SERIALIZATION_FORMAT) -> list[str]:
    """Pinned requirements for the logged model, so MLflow skips its slow inference subprocess."""
    pkgs = ("mlflow", "scikit-learn", "numpy", "pandas", "scipy", serialization_format)
    return [f"{p}=={version(p)}" for p in pkgs if p != "pickle"]


def save_model_kwargs(serialization_format: str = SERIALIZATION_FORMAT) -> dict:
    """Arguments for mlflow.sklearn.save_model/log_model that work for this pipeline in mlflow 3.17."""
    kwargs = {"serialization_format": serialization_format,
              "pip_requirements": pip_requirements(serialization_format)}
    if serialization_format == "skops":
        # skops refuses to load (and so MLflow refuses to save) the fitted trees unless their type is trusted.
        kwargs["skops_trusted_types"] = list(SKOPS_TRUSTED_TYPES)
    return kwargs


def save_model(model: Pipeline, path: str, serialization_format: str = SERIALIZATION_FORMAT) -> int:
    """mlflow.sklearn.save_model of `model` into `path` with save_model_kwargs; the bytes written (remembered, so
    model_size_bytes of this model does not serialise it a second time)."""
    import mlflow.sklearn  # lazy: saving is the only place this module touches MLflow, and only on disk

    mlflow.sklearn.save_model(model, path, **save_model_kwargs(serialization_format))
    size = _dir_bytes(path)
    _SAVED_BYTES.setdefault(model, {})[serialization_format] = size
    return size


def _dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def model_size_bytes(model: Pipeline, serialization_format: str = SERIALIZATION_FORMAT) -> int:
    """Bytes of the directory mlflow.sklearn.save_model writes for `model` (what a logged version stores): as
    save_model counted them when this very model was saved (logged) already, else from a copy saved aside."""
    saved = _SAVED_BYTES.get(model, {}).get(serialization_format)
    if saved is not None:
        return saved
    import mlflow.sklearn

    quiet = logging.getLogger("mlflow.sklearn")
    level = quiet.level
    # Its unsafe-pickle warning is about loading; this copy is deleted unread, so it is noise here.
    quiet.setLevel(logging.ERROR)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model")
            mlflow.sklearn.save_model(model, path, **save_model_kwargs(serialization_format))
            return _dir_bytes(path)  # not remembered: bench/forest.py times this save
    finally:
        quiet.setLevel(level)
