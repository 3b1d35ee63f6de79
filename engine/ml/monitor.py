"""Production monitoring statistics: realised and estimated performance, calibration, and a drift snapshot.

Pure functions over frames of served claims; the live stream (engine/stream.py) stores their results.

Realised performance uses only claims whose outcome has arrived. Outcomes arrive late, so for the claims still
waiting the monitor *estimates* accuracy from the model's own probabilities:

    expected accuracy = mean over claims of  p      where the decision was Approved
                                             1 - p  where it was Denied

which is the accuracy the model expects of itself if P(Approved) is calibrated. It is a valid estimate only when
(1) the probabilities are calibrated (CD calibrates them on its validation split; `calibration` checks them on the
champion's holdout and, live, on the labelled production claims) and (2) the drift is covariate drift: the inputs
moved but the rule from inputs to outcome did not. Under concept drift the model is as sure of itself as ever, so
the estimate stays high while the realised accuracy falls: the gap is the signal. The estimate is computed on the
same labelled claims as the realised accuracy, so the two describe one population (mid-ramp, the newest
unlabelled claims are another one; their estimate is kept beside it as `estimated_accuracy_pending`).

Performance monitoring (`performance`) judges the realised figures, each with a bootstrap interval, against the
champion's own holdout figures and against approving every claim, and gives a level by the rule in PERFORMANCE:

    alert     accuracy's upper bound is more than `alert_drop` below the holdout's accuracy, or the cost per
              claim is above approving every claim (the lower bound of the paired difference is above 0)
    warning   accuracy's upper bound is more than `warning_drop` below the holdout's, the false-denial rate's
              lower bound more than `warning_rise` above the holdout's, or the cost per claim's lower bound more
              than `cost_rise` above the holdout's
    none      otherwise; below `min_labelled` labelled claims there is no level ("not_enough_data")

The bootstrap resamples claims: each claim falls in one cell of the confusion matrix (approved/denied x right/
wrong), so a resample of n claims is one multinomial draw of the four cell counts, and every metric (and the
approve-every-claim cost on the same resample, for the paired difference) is a function of those counts.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.ml.claims import NUMERIC
from engine.ml.drift import ALPHA, CORRECTION, feature_drift, psi

CALIBRATION_BINS = 10
PERFORMANCE_LEVELS = ("none", "warning", "alert")  # ordered, worst last
DISTRIBUTION_BINS = 30  # bins of the reference-vs-current histograms of numeric features


@dataclass(frozen=True)
class PerformanceRule:
    """When the realised performance on labelled claims raises a warning or an alert (module docstring)."""

    min_labelled: int = 500       # fewer labelled claims in the window give no level
    confidence: float = 0.95      # of each bootstrap interval (percentile)
    resamples: int = 2000         # bootstrap resamples (multinomial draws of the four cell counts: cheap)
    warning_drop: float = 0.02    # accuracy's upper bound this far below the holdout's: warning
    alert_drop: float = 0.05      # ... this far below: alert
    warning_rise: float = 0.05    # false-denial rate's lower bound this far above the holdout's: warning
    cost_rise: float = 0.03       # cost per claim's lower bound this far above the holdout's: warning

    def describe(self) -> str:
        """The rule in one sentence (shown on the Drift page and stored with every snapshot)."""
        pct = f"{self.confidence:.0%}"
        return (f"alert when the {pct} interval of realised accuracy lies more than {self.alert_drop:g} below the "
                f"champion's holdout accuracy, or when the cost per claim is above approving every claim "
                f"(paired interval above 0); warning when accuracy lies more than {self.warning_drop:g} below, "
                f"the false-denial rate more than {self.warning_rise:g} above, or the cost per claim more than "
                f"{self.cost_rise:g} above the holdout's; at least {self.min_labelled:,} labelled claims")


PERFORMANCE = PerformanceRule()


def realised(approved: np.ndarray, outcome: np.ndarray) -> dict:
    """Accuracy and false-denial rate of served decisions against arrived outcomes (True = Approved)."""
    approved, outcome = np.asarray(approved, bool), np.asarray(outcome, bool)
    n, positives = len(outcome), int(outcome.sum())
    false_denials = int((outcome & ~approved).sum())
    return {"n": n, "accuracy": float((approved == outcome).mean()) if n else None,
            "false_denial_rate": false_denials / positives if positives else None}


def _cells(approved: np.ndarray, outcome: np.ndarray) -> np.ndarray:
    """Counts of true approvals, false denials, false approvals and true denials, in that order."""
    approved, outcome = np.asarray(approved, bool), np.asarray(outcome, bool)
    return np.array([(approved & outcome).sum(), (~approved & outcome).sum(), (approved & ~outcome).sum(),
                     (~approved & ~outcome).sum()], np.int64)


def _metrics(cells: np.ndarray, costs: dict) -> dict[str, np.ndarray]:
    """Accuracy, false-denial rate, cost per claim and approve-every-claim's cost from cell counts (..., 4)."""
    tp, fn, fp, tn = (cells[..., i].astype(float) for i in range(4))
    n = tp + fn + fp + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"accuracy": (tp + tn) / n, "false_denial_rate": np.where(tp + fn > 0, fn / (tp + fn), np.nan),
                "cost_per_claim": (costs["false_denial"] * fn + costs["false_approval"] * fp) / n,
                "approve_all_cost": costs["false_approval"] * (fp + tn) / n, "approve_all_accuracy": (tp + fn) / n}


def holdout_figures(approved: np.ndarray, outcome: np.ndarray, costs: dict) -> dict:
    """The champion's own accuracy, false-denial rate and cost per claim on its holdout (the reference)."""
    cells = _cells(approved, outcome)
    m = _metrics(cells, costs)
    return {"n": int(cells.sum()), "costs": dict(costs),
            **{k: float(m[k]) for k in ("accuracy", "false_denial_rate", "cost_per_claim")}}


def performance(approved: np.ndarray, outcome: np.ndarray, holdout: dict, rule: PerformanceRule = PERFORMANCE,
                seed: int = 0) -> dict:
    """Realised accuracy, false-denial rate and cost per claim on labelled claims, with bootstrap intervals,
    against the champion's `holdout_figures` and approving every claim; the level by `rule`.

    `evidence` is the check that decided the level (the first breached at the worst level; the accuracy check
    when none is breached): metric, value, interval, reference and the rule.
    """
    cells = _cells(approved, outcome)
    n = int(cells.sum())
    base = {"n": n, "rule": rule.describe(), "confidence": rule.confidence, "holdout": holdout}
    if n < rule.min_labelled:
        return {**base, "status": "not_enough_data", "level": None, "metrics": {}, "checks": [], "evidence": None}
    costs = holdout["costs"]
    point = _metrics(cells, costs)
    draws = _metrics(np.random.default_rng(seed).multinomial(n, cells / n, size=rule.resamples), costs)
    tail = (1 - rule.confidence) / 2

    def interval(values) -> list[float]:
        return [float(v) for v in np.nanquantile(values, [tail, 1 - tail])]

    metrics = {k: {"value": float(point[k]), "interval": interval(draws[k]), "holdout": holdout[k]}
               for k in ("accuracy", "false_denial_rate", "cost_per_claim")}
    metrics["accuracy"]["approve_all"] = float(point["approve_all_accuracy"])
    metrics["false_denial_rate"]["approve_all"] = 0.0
    metrics["cost_per_claim"]["approve_all"] = float(point["approve_all_cost"])
    excess = interval(draws["cost_per_claim"] - draws["approve_all_cost"])
    acc, fdr, cost = metrics["accuracy"], metrics["false_denial_rate"], metrics["cost_per_claim"]

    def check(metric, level, breached, reference, reference_name, rule_text, interval_=None) -> dict:
        m = metrics[metric]
        return {"metric": metric, "level": level, "breached": bool(breached), "value": m["value"],
                "interval": interval_ or m["interval"], "reference": reference, "reference_name": reference_name,
                "rule": rule_text}

    checks = [
        check("accuracy", "alert", acc["interval"][1] < acc["holdout"] - rule.alert_drop, acc["holdout"],
              "holdout", f"upper bound < holdout - {rule.alert_drop:g}"),
        check("cost_per_claim", "alert", excess[0] > 0, cost["approve_all"], "approve_all",
              "cost above approving every claim (paired difference's lower bound > 0)", excess),
        check("accuracy", "warning", acc["interval"][1] < acc["holdout"] - rule.warning_drop, acc["holdout"],
              "holdout", f"upper bound < holdout - {rule.warning_drop:g}"),
        check("false_denial_rate", "warning", fdr["holdout"] is not None and not np.isnan(fdr["value"])
              and fdr["interval"][0] > fdr["holdout"] + rule.warning_rise, fdr["holdout"], "holdout",
              f"lower bound > holdout + {rule.warning_rise:g}"),
        check("cost_per_claim", "warning", cost["interval"][0] > cost["holdout"] + rule.cost_rise, cost["holdout"],
              "holdout", f"lower bound > holdout + {rule.cost_rise:g}"),
    ]
    breached = [c for c in checks if c["breached"]]
    level = max((c["level"] for c in breached), key=PERFORMANCE_LEVELS.index, default="none")
    evidence = next((c for c in breached if c["level"] == level), checks[0])
    return {**base, "status": "ok", "level": level, "metrics": metrics, "checks": checks,
            "evidence": {k: evidence[k] for k in ("metric", "value", "interval", "reference", "reference_name",
                                                  "rule", "level")}}


def distributions(reference: pd.DataFrame, current: pd.DataFrame, features=NUMERIC,
                  bins: int = DISTRIBUTION_BINS) -> dict:
    """Each numeric feature's histogram, reference against current, over common edges (shares of rows).

    The edges span both samples (0.5% to 99.5% quantiles, values beyond counted in the outer bins); they are
    log-spaced for a positive, heavy-tailed feature (the reference's 99.5% quantile above 10 times its median:
    the amounts), linear otherwise (the age).
    """
    out = {}
    for name in features:
        r = pd.to_numeric(reference[name], errors="coerce").dropna().to_numpy(float)
        c = pd.to_numeric(current[name], errors="coerce").dropna().to_numpy(float)
        if not len(r) or not len(c):
            continue
        (r_lo, r_mid, r_hi), (c_lo, c_hi) = np.quantile(r, [0.005, 0.5, 0.995]), np.quantile(c, [0.005, 0.995])
        lo, hi = min(r_lo, c_lo), max(r_hi, c_hi)  # one partition per sample, not one per quantile
        log = bool(lo > 0 and r_hi > 10 * r_mid)
        edges = np.geomspace(lo, hi, bins + 1) if log else np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)

        def shares(x):
            counts = np.bincount(np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1), minlength=bins)
            return (counts / len(x)).tolist()

        out[name] = {"edges": edges.tolist(), "log": log, "reference": shares(r), "current": shares(c)}
    return out


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


def snapshot(reference: pd.DataFrame, reference_p: np.ndarray, window: pd.DataFrame, min_rows: int,
             holdout: dict | None = None, rule: PerformanceRule = PERFORMANCE, correction: str = CORRECTION,
             alpha: float = ALPHA, seed: int = 0) -> dict:
    """Drift and performance of a window of served claims against the champion's reference.

    `window` has the model features plus p_approved, approved, outcome (None/NaN until the label arrives) and
    shadow_approved (None where no shadow scored it). Below `min_rows` claims PSI is not computed: a PSI on a
    handful of rows is noise, so the snapshot says "not_enough_data" instead of a level. `holdout` is the
    champion's `holdout_figures`; without it there is no performance level. The per-feature tests are corrected
    for their number by `correction` at family-wise `alpha`.
    """
    labelled = window["outcome"].notna().to_numpy()
    outcome = window["outcome"].to_numpy()[labelled].astype(bool)
    approved = window["approved"].to_numpy(bool)
    p = window["p_approved"].to_numpy(float)
    shadowed = window["shadow_approved"].notna().to_numpy()
    perf = performance(approved[labelled], outcome, holdout, rule, seed) if holdout else None
    out = {
        "n_window": len(window), "n_labelled": int(labelled.sum()), "n_unlabelled": int((~labelled).sum()),
        "realised": realised(approved[labelled], outcome),
        # On the same labelled claims as the realised accuracy: one population, so the gap means something.
        "estimated_accuracy": estimated_accuracy(p[labelled], approved[labelled]),
        "estimated_accuracy_pending": estimated_accuracy(p[~labelled], approved[~labelled]),
        "live_calibration": calibration(p[labelled], outcome),
        "performance": perf, "performance_level": perf["level"] if perf else None,
        "n_shadow": int(shadowed.sum()),
        "agreement": float((approved[shadowed] == window["shadow_approved"].to_numpy()[shadowed].astype(bool))
                           .mean()) if shadowed.any() else None,
    }
    if len(window) < min_rows:
        return {**out, "status": "not_enough_data", "min_rows": min_rows, "level": None, "max_psi": None,
                "drift_share": None, "prediction": None, "features": [], "flagged": None,
                "correction": correction, "alpha": alpha, "distributions": {}}
    drift = feature_drift(reference, window, alpha=alpha, correction=correction)
    prediction = psi(reference_p, p, categorical=False)
    return {**out, "status": "ok", "min_rows": min_rows, "level": drift.level, "max_psi": drift.max_psi,
            "drift_share": drift.drift_share, "prediction": {"psi": prediction.value, "level": prediction.level,
                                                             "bins": prediction.to_dict()["bins"]},
            "features": [f.to_dict() for f in drift.features], "flagged": drift.flagged,
            "correction": drift.correction, "alpha": drift.alpha,
            "distributions": distributions(reference, window)}
