"""The decision threshold: a parameter of each model, chosen on its validation split by expected cost.

A claim is Approved when P(Approved) >= threshold. The two errors cost differently: a false denial (an Approved
claim the model denies) costs the claimant an appeal and the payer the rework; a false approval costs a recovery.
The rule: among every threshold that splits the validation claims differently, take the one with the lowest

    expected cost per claim = (false_denial * #false denials + false_approval * #false approvals) / n

Ties go to the lowest such threshold (approve more: false denials are the dearer error). The threshold returned
is the midpoint between the lowest approved and the highest denied validation score, so the choice does not hinge
on a score that sits exactly on it. For a calibrated model the optimum is near the Bayes threshold
false_approval / (false_approval + false_denial); the search does not assume calibration.

The validation split is carved from the training data (engine.ml.provenance.carve), never from the gate's
holdout, so the gate judges a threshold it did not help choose.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Costs:
    """What each kind of error costs, in one unit (the YAML's)."""

    false_denial: float
    false_approval: float

    def __post_init__(self):
        for name, value in asdict(self).items():
            if not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"cost {name}={value!r} must be a positive number (set it under costs: in the "
                                 f"step's YAML)")

    def per_claim(self, y: np.ndarray, approve: np.ndarray) -> float:
        """Expected cost per claim of the decisions `approve` (True = Approved) against labels `y` (1 = Approved)."""
        y, approve = np.asarray(y).astype(bool), np.asarray(approve).astype(bool)
        errors = self.false_denial * np.sum(y & ~approve) + self.false_approval * np.sum(~y & approve)
        return float(errors / len(y)) if len(y) else 0.0


@dataclass(frozen=True)
class ThresholdChoice:
    """The chosen threshold and the evidence for it (all measured on the validation split)."""

    threshold: float
    cost_per_claim: float       # at the chosen threshold
    cost_per_claim_at_half: float  # at 0.5, for comparison
    validation_rows: int
    costs: Costs
    rule: str

    def to_dict(self) -> dict:
        """Plain values for step outputs."""
        out = asdict(self)
        out.update(threshold=round(self.threshold, 6), cost_per_claim=round(self.cost_per_claim, 6),
                   cost_per_claim_at_half=round(self.cost_per_claim_at_half, 6))
        return out


def choose_threshold(y: np.ndarray, proba: np.ndarray, costs: Costs) -> ThresholdChoice:
    """The threshold minimising expected cost per claim on (y, proba), by the rule in the module docstring."""
    y = np.asarray(y).astype(bool)
    proba = np.asarray(proba, dtype=np.float64)
    if len(y) == 0 or len(y) != len(proba):
        raise ValueError(f"threshold search needs labels and scores of the same non-zero length "
                         f"(got {len(y)} labels, {len(proba)} scores)")
    scores, group = np.unique(proba, return_inverse=True)  # ascending distinct scores
    positives = np.bincount(group, weights=y, minlength=len(scores))
    negatives = np.bincount(group, weights=~y, minlength=len(scores))
    # Cut k approves the groups k.. (k = 0 approves all, k = len(scores) denies all).
    false_denials = np.r_[0.0, np.cumsum(positives)]
    false_approvals = negatives.sum() - np.r_[0.0, np.cumsum(negatives)]
    cost = (costs.false_denial * false_denials + costs.false_approval * false_approvals) / len(y)
    k = int(np.argmin(cost))  # the first minimum: the lowest threshold among ties
    if k == 0:
        threshold = 0.0
    elif k < len(scores):
        threshold = (scores[k - 1] + scores[k]) / 2
    else:  # deny everything: above the highest score, and above 1 only if a score is exactly 1
        threshold = (scores[-1] + 1.0) / 2 if scores[-1] < 1.0 else float(np.nextafter(1.0, 2.0))
    return ThresholdChoice(
        threshold=float(threshold), cost_per_claim=float(cost[k]),
        cost_per_claim_at_half=costs.per_claim(y, proba >= 0.5), validation_rows=len(y), costs=costs,
        rule=(f"minimise expected cost per claim on the validation split ({costs.false_denial:g} per false "
              f"denial, {costs.false_approval:g} per false approval); ties go to the lowest threshold"))

