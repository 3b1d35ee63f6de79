"""Gates as data: a rule, its checks with value, threshold and margin, and the verdict the inspector explains."""
from __future__ import annotations

import operator

import pandas as pd
from sklearn.dummy import DummyClassifier

from engine.ml.claims import label_array
from engine.ml.model import evaluate, raw_features

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def check(name: str, value: float, op: str, threshold: float) -> dict:
    """One comparison; margin is how far inside (+) or outside (-) the threshold the value is."""
    margin = value - threshold if op in (">=", ">") else threshold - value
    return {"name": name, "value": round(float(value), 6), "op": op, "threshold": float(threshold),
            "margin": round(float(margin), 6), "passed": bool(_OPS[op](value, threshold))}


def gate(rule: str, checks: list[tuple], fail_verdict: str = "fail") -> dict:
    """Evaluate (name, value, op, threshold) checks; verdict 'pass' when all pass, else `fail_verdict`."""
    results = [check(*c) for c in checks]
    return {"rule": rule, "checks": results,
            "verdict": "pass" if all(c["passed"] for c in results) else fail_verdict}


def baseline_metrics(frame: pd.DataFrame) -> dict:
    """Metrics of the approve-every-claim policy on `frame`: what a first model must beat."""
    policy = DummyClassifier(strategy="constant", constant=1).fit(raw_features(frame), label_array(frame))
    return evaluate(policy, frame)
