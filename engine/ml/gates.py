"""Gates as data: a rule, its checks with value, threshold, margin and 95% interval, and the verdict.

Every comparison is a difference measured on the same rows: challenger minus reference (the champion, the
approve-every-claim policy, or the best single feature). How sure it is comes from a paired bootstrap: draw the
holdout's rows with replacement, score every model on the same draw, take the difference; repeat. The 2.5th and
97.5th percentiles of those differences are the 95% interval. Pairing matters: two models err on mostly the same
claims, so the difference is far less noisy than either metric alone.

The resamples are held as a (resamples x rows) matrix of draw counts, and each metric is written for weighted
rows, so every resample of every metric is one matrix product (F1, accuracy, cost) or one sort of the scores
shared by all resamples (ROC-AUC): 200 resamples of 10,000 rows cost milliseconds, not a Python loop.

A check with an interval is decided on the interval's bound on the side that matters, not on the point estimate:
">=" passes only when the lower bound is at or above the threshold, "<=" only when the upper bound is at or below
it. A difference the data cannot tell from a regression does not pass because its point estimate happens to.
The margin is measured from that bound.

A check is a record (Check) that carries its direction: whether its value is a level, a rise of a metric over its
reference, or a fall (a drop, a saving), so a reader can say it in words without parsing its name. Checks stored
before they carried one are read through read_check, the one place that derives it from the old names.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np
import pandas as pd

from engine.ml.claims import CATEGORICAL, NUMERIC, label_array
from engine.ml.threshold import Costs

# scikit-learn (with scipy.stats, about 60 MB) is imported where a gate is computed, in the worker: the pages import
# this module for Check and read_check, and the dashboard's server never trains or scores a gate.

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
CONFIDENCE = 0.95
APPROVE_ALL = "approve every claim"
BOUND_RULE = ("each check with a 95% interval passes on the interval's bound (lower bound for 'at least', upper "
              "bound for 'at most'), not on the point estimate")


class Direction(str, Enum):
    """What a check's value measures, so it can be said in words without reading its name."""

    LEVEL = "level"  # a measurement on its own (max input PSI): "is 0.31"
    RISE = "rise"    # the metric minus its reference's (a gain, a change): positive means the metric rose
    FALL = "fall"    # the reference's minus the metric (a drop, a saving): positive means the metric fell


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison, decided. For a RISE or FALL, `metric` is what moved ("ROC-AUC") and `against` its reference
    as said after the move ("vs champion"); a LEVEL has neither."""

    name: str
    value: float
    op: str
    threshold: float
    margin: float
    passed: bool
    direction: Direction = Direction.LEVEL
    metric: str = ""
    against: str = ""
    interval: tuple[float, float] | None = None

    @property
    def at_least(self) -> bool:
        """True when the value must be at or above the threshold (then the interval's lower bound decides)."""
        return self.op in (">=", ">")

    @property
    def decided_on(self) -> str:
        """What the verdict was taken on: the value, or the interval's bound on the threshold's side."""
        if self.interval is None:
            return "value"
        return f"{'lower' if self.at_least else 'upper'} bound of the 95% interval"

    def describe(self) -> str:
        """One line for logs and errors: value, requirement, margin and interval."""
        interval = "" if self.interval is None else f", 95% interval [{self.interval[0]:+.4f}, {self.interval[1]:+.4f}]"
        bound = "" if self.interval is None else ("lower bound " if self.at_least else "upper bound ")
        return (f"{self.name} {self.value:+.4f} (needs {bound}{self.op} {self.threshold:+.4f}, margin "
                f"{self.margin:+.4f}{interval})")

    def to_dict(self) -> dict:
        """The stored form, in the step's outputs: JSON types only."""
        out = {"name": self.name, "value": self.value, "op": self.op, "threshold": self.threshold,
               "margin": self.margin, "passed": self.passed}
        if self.interval is not None:
            out["interval"] = list(self.interval)
            out["decided_on"] = self.decided_on
        out["direction"] = self.direction.value
        if self.direction is not Direction.LEVEL:
            out["metric"], out["against"] = self.metric, self.against
        return out


def check(name: str, value: float, op: str, threshold: float, interval: tuple[float, float] | None = None,
          direction: Direction = Direction.LEVEL, metric: str = "", against: str = "") -> Check:
    """One comparison, decided on the value or, with an interval, on its bound on the threshold's side; margin is
    how far inside (+) or outside (-) the threshold that is."""
    at_least = op in (">=", ">")
    decisive = value if interval is None else (interval[0] if at_least else interval[1])
    margin = decisive - threshold if at_least else threshold - decisive
    return Check(name=name, value=round(float(value), 6), op=op, threshold=float(threshold),
                 margin=round(float(margin), 6), passed=bool(_OPS[op](decisive, threshold)), direction=direction,
                 metric=metric, against=against,
                 interval=None if interval is None else (round(float(interval[0]), 6), round(float(interval[1]), 6)))


def change(metric: str, word: str, against: str, value: float, op: str, threshold: float,
           interval: tuple[float, float] | None = None) -> Check:
    """A check on `metric` against a reference, named "<metric> <word> <against>" ("ROC-AUC change vs champion"):
    a "drop" or "saving" is the reference minus the metric (FALL), anything else the metric minus the reference."""
    direction = Direction.FALL if word in ("drop", "saving") else Direction.RISE
    return check(f"{metric} {word} {against}", value, op, threshold, interval, direction, metric, against)


def read_check(stored: dict) -> Check:
    """A check as stored in a step's outputs. A check stored before checks carried a direction gets it from the
    naming convention of its time: "<metric> gain|change [against]" rose, "<metric> drop [against]" fell, any
    other name is a level."""
    direction, metric, against = stored.get("direction"), stored.get("metric", ""), stored.get("against", "")
    if direction is None:
        direction, metric, against = _direction_from_name(stored.get("name", ""))
    interval = stored.get("interval")
    return Check(name=stored.get("name", "check"), value=stored.get("value"), op=stored.get("op", ""),
                 threshold=stored.get("threshold"), margin=stored.get("margin") or 0.0,
                 passed=bool(stored.get("passed")), direction=Direction(direction), metric=metric, against=against,
                 interval=None if not interval else (interval[0], interval[1]))


def _direction_from_name(name: str) -> tuple[Direction, str, str]:
    words = name.split()
    kind = next((w for w in ("gain", "drop", "change") if w in words), None)
    if kind is None:
        return Direction.LEVEL, "", ""
    at = words.index(kind)
    return (Direction.FALL if kind == "drop" else Direction.RISE, " ".join(words[:at]),
            " ".join(words[at + 1:]) or "against the reference")


def gate(rule: str, checks: list[Check], fail_verdict: str = "fail") -> dict:
    """The gate's stored form: the rule, every check, and 'pass' when all pass, else `fail_verdict`."""
    return {"rule": rule, "checks": [c.to_dict() for c in checks],
            "verdict": "pass" if all(c.passed for c in checks) else fail_verdict}


def baseline_metrics(frame: pd.DataFrame) -> dict:
    """Metrics of the approve-every-claim policy on `frame`: what a first model must beat."""
    from engine.ml.model import classification_metrics
    return classification_metrics(label_array(frame), np.ones(len(frame)), 0.5)


# ---- weighted metrics: w is (k, n) row weights (draw counts); each returns k values ---------------------------
def f1(w: np.ndarray, y: np.ndarray, approve: np.ndarray) -> np.ndarray:
    """F1 of Approved under decisions `approve`."""
    tp, fp, fn = w @ (y & approve), w @ (~y & approve), w @ (y & ~approve)
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)


def accuracy(w: np.ndarray, y: np.ndarray, approve: np.ndarray) -> np.ndarray:
    """Share of claims decided right."""
    return (w @ (y == approve)) / w.sum(axis=1)


def cost(costs: Costs) -> Callable:
    """Expected cost per claim under `costs` (engine.ml.threshold), as a weighted metric."""
    def per_claim(w: np.ndarray, y: np.ndarray, approve: np.ndarray) -> np.ndarray:
        errors = costs.false_denial * (w @ (y & ~approve)) + costs.false_approval * (w @ (~y & approve))
        return errors / w.sum(axis=1)
    return per_claim


def roc_auc(w: np.ndarray, y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """ROC-AUC of `score` (ties count one half): P(an Approved claim outranks a Denied one), rows weighted."""
    order = np.argsort(score, kind="stable")
    ranked = score[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # one group per distinct score
    positive = y[order]
    weights = w[:, order]
    pos = np.add.reduceat(weights * positive, starts, axis=1)
    neg = np.add.reduceat(weights * ~positive, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg  # Denied weight strictly below each score
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    return np.divide((pos * (below + 0.5 * neg)).sum(axis=1), pairs, out=np.full(len(w), 0.5), where=pairs > 0)


class PairedBootstrap:
    """Seeded resamples of one set of labelled rows, shared by every model scored on them."""

    def __init__(self, y: np.ndarray, resamples: int = 200, seed: int = 0):
        self.y = np.asarray(y).astype(bool)
        n = len(self.y)
        if n == 0 or resamples < 1:
            raise ValueError(f"a bootstrap needs rows and resamples (got {n} rows, {resamples} resamples)")
        self.resamples, self.seed = int(resamples), int(seed)
        draws = np.random.default_rng(seed).integers(0, n, size=(self.resamples, n))
        offsets = n * np.arange(self.resamples)[:, None]
        self.weights = np.bincount((draws + offsets).ravel(), minlength=self.resamples * n) \
            .reshape(self.resamples, n).astype(np.float64)

    def difference(self, metric: Callable, a: np.ndarray, b: np.ndarray) -> tuple[float, tuple[float, float]]:
        """metric(a) - metric(b) on the rows themselves, and its paired-bootstrap 95% interval."""
        everyone = np.ones((1, len(self.y)))
        value = float(metric(everyone, self.y, a)[0] - metric(everyone, self.y, b)[0])
        spread = metric(self.weights, self.y, a) - metric(self.weights, self.y, b)
        tail = 100 * (1 - CONFIDENCE) / 2
        lo, hi = np.percentile(spread, [tail, 100 - tail])
        return value, (float(lo), float(hi))

    def describe(self) -> dict:
        """How the intervals were made, for the gate's output."""
        return {"method": "paired percentile bootstrap over the holdout rows", "resamples": self.resamples,
                "seed": self.seed, "confidence": CONFIDENCE}


@dataclass(frozen=True)
class Scored:
    """One model's P(Approved) on the gate's rows and its own decision threshold."""

    proba: np.ndarray
    threshold: float

    @property
    def approve(self) -> np.ndarray:
        """Its decisions: True = Approved."""
        return np.asarray(self.proba) >= self.threshold


def best_single_feature(frame: pd.DataFrame) -> tuple[str, float, np.ndarray]:
    """(feature, ROC-AUC, score): the raw column that alone ranks `frame`'s claims best, as a ranking score.

    A number ranks by its value (or its negative, whichever orders Approved higher); a category ranks by its
    approval rate in `frame`. Measured on the same rows it is scored on, so it is the best one column can do
    there: a floor built on it is strict, not lenient.
    """
    from sklearn import metrics
    y = label_array(frame)
    candidates = {col: frame[col].to_numpy(np.float64) for col in NUMERIC}
    for col in CATEGORICAL:
        values = frame[col].astype(str)
        candidates[col] = values.map(pd.Series(y, index=frame.index).groupby(values).mean()).to_numpy(np.float64)
    best = ("", -1.0, np.zeros(len(frame)))
    for col, score in candidates.items():
        auc = metrics.roc_auc_score(y, score)
        score, auc = (score, auc) if auc >= 0.5 else (-score, 1 - auc)
        if auc > best[1]:
            best = (col, float(auc), score)
    return best


def versus_champion(boot: PairedBootstrap, challenger: Scored, champion: Scored, min_auc_delta: float,
                    min_f1_delta: float) -> list[Check]:
    """Ranking (threshold-free ROC-AUC) and F1, each model at its own threshold: challenger minus champion."""
    auc, auc_ci = boot.difference(roc_auc, challenger.proba, champion.proba)
    gain, gain_ci = boot.difference(f1, challenger.approve, champion.approve)
    return [change("ROC-AUC", "change", "vs champion", auc, ">=", min_auc_delta, auc_ci),
            change("F1", "change", "vs champion", gain, ">=", min_f1_delta, gain_ci)]


def versus_baseline(boot: PairedBootstrap, challenger: Scored, feature: str, feature_score: np.ndarray, costs: Costs,
                    min_auc_gain: float, min_f1_gain: float, min_cost_saving: float) -> list[Check]:
    """A first model against what needs no model: the best single column's ranking, and approving everyone."""
    everyone = np.ones(len(boot.y), dtype=bool)
    auc, auc_ci = boot.difference(roc_auc, challenger.proba, feature_score)
    gain, gain_ci = boot.difference(f1, challenger.approve, everyone)
    saving, saving_ci = boot.difference(cost(costs), everyone, challenger.approve)
    return [change("ROC-AUC", "gain", f"over best single feature ({feature})", auc, ">=", min_auc_gain, auc_ci),
            change("F1", "gain", "over approve-every-claim", gain, ">=", min_f1_gain, gain_ci),
            change("cost", "saving", "per claim over approve-every-claim", saving, ">=", min_cost_saving, saving_ci)]


def accuracy_versus(boot: PairedBootstrap, staging: Scored, reference: Scored | None, min_delta: float,
                    label: str) -> Check:
    """Staging's accuracy minus the reference's (approve-every-claim when `reference` is None)."""
    other = reference.approve if reference is not None else np.ones(len(boot.y), dtype=bool)
    value, interval = boot.difference(accuracy, staging.approve, other)
    return change("accuracy", "change", f"vs {label}", value, ">=", min_delta, interval)
