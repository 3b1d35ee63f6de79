"""Production monitoring statistics: realised and estimated performance, calibration, and a drift snapshot.

Pure functions over frames of served claims; the live stream (engine/stream.py) stores their results.

Realised performance uses only claims whose outcome has arrived. Outcomes arrive late, so for the claims still
waiting the monitor *estimates* accuracy from the model's own probabilities:

    expected accuracy = mean over claims of  p      where the decision was Approved
                                             1 - p  where it was Denied

which is the accuracy the model expects of itself if P(Approved) is calibrated. It is a valid estimate only when
(1) the probabilities are calibrated (checked on the champion's holdout by `calibration`) and (2) the drift is
covariate drift: the inputs moved but the rule from inputs to outcome did not. Under concept drift the model is
as sure of itself as ever, so the estimate stays high while the realised accuracy falls: the gap is the signal.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.ml.drift import feature_drift, psi

CALIBRATION_BINS = 10


def realised(approved: np.ndarray, outcome: np.ndarray) -> dict:
    """Accuracy and false-denial rate of served decisions against arrived outcomes (True = Approved)."""
    approved, outcome = np.asarray(approved, bool), np.asarray(outcome, bool)
    n, positives = len(outcome), int(outcome.sum())
    false_denials = int((outcome & ~approved).sum())
    return {"n": n, "accuracy": float((approved == outcome).mean()) if n else None,
            "false_denial_rate": false_denials / positives if positives else None}


def estimated_accuracy(p_approved: np.ndarray, approved: np.ndarray) -> float | None:
    """The accuracy the model expects of itself: mean of p where it approved and 1 - p where it denied."""
    p, approved = np.asarray(p_approved, float), np.asarray(approved, bool)
    return float(np.where(approved, p, 1 - p).mean()) if len(p) else None


def calibration(p_approved: np.ndarray, outcome: np.ndarray, bins: int = CALIBRATION_BINS) -> dict:
    """Reliability of P(Approved): per probability bin, the mean prediction and the observed approval rate.

    ECE (expected calibration error) is the row-weighted mean |observed - predicted| over the bins: 0 means the
    probabilities can be read as frequencies, which the expected-accuracy estimate relies on.
    """
    p, y = np.asarray(p_approved, float), np.asarray(outcome, bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        if not n:
            continue
        predicted, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += n * abs(observed - predicted)
        rows.append({"low": float(edges[b]), "high": float(edges[b + 1]), "n": n,
                     "predicted": predicted, "observed": observed})
    return {"ece": ece / len(p) if len(p) else None, "bins": rows, "n": int(len(p))}


def snapshot(reference: pd.DataFrame, reference_p: np.ndarray, window: pd.DataFrame, min_rows: int) -> dict:
    """Drift and performance of a window of served claims against the champion's reference.

    `window` has the model features plus p_approved, approved, outcome (None/NaN until the label arrives) and
    shadow_approved (None where no shadow scored it). Below `min_rows` claims PSI is not computed: a PSI on a
    handful of rows is noise, so the snapshot says "not_enough_data" instead of a level.
    """
    labelled = window["outcome"].notna().to_numpy()
    outcome = window["outcome"].to_numpy()[labelled].astype(bool)
    approved = window["approved"].to_numpy(bool)
    shadowed = window["shadow_approved"].notna().to_numpy()
    out = {
        "n_window": len(window), "n_labelled": int(labelled.sum()), "n_unlabelled": int((~labelled).sum()),
        "realised": realised(approved[labelled], outcome),
        "estimated_accuracy": estimated_accuracy(window["p_approved"].to_numpy()[~labelled], approved[~labelled]),
        "n_shadow": int(shadowed.sum()),
        "agreement": float((approved[shadowed] == window["shadow_approved"].to_numpy()[shadowed].astype(bool))
                           .mean()) if shadowed.any() else None,
    }
    if len(window) < min_rows:
        return {**out, "status": "not_enough_data", "min_rows": min_rows, "level": None, "max_psi": None,
                "drift_share": None, "prediction": None, "features": []}
    drift = feature_drift(reference, window)
    prediction = psi(reference_p, window["p_approved"].to_numpy(float), categorical=False)
    return {**out, "status": "ok", "min_rows": min_rows, "level": drift.level, "max_psi": drift.max_psi,
            "drift_share": drift.drift_share, "prediction": {"psi": prediction.value, "level": prediction.level,
                                                             "bins": prediction.to_dict()["bins"]},
            "features": [f.to_dict() for f in drift.features]}
