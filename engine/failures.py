"""Failure modes: persisted toggles that break a run through the real code path, and the gate that catches each.

Nothing here raises on purpose. Each mode changes an input (the data, the labels, the MLflow address) and the
ordinary code downstream fails on it the way it would in production.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FailureMode:
    """One toggle, described for the dashboard."""

    name: str
    title: str
    breaks: str        # what it changes
    caught_by: str     # the step that should stop the run


MODES = (
    FailureMode("schema_validation", "Schema validation",
                "the run's data feed arrives without the diagnosis_group column", "data_validation"),
    FailureMode("training_error", "Training error",
                "the CI training sample carries amounts as formatted text ('1,234.50')", "ci_tests"),
    FailureMode("mlflow_connection", "MLflow connection",
                "the run logs to an MLflow address where nothing listens", "mlflow_log_ci"),
    FailureMode("metric_regression", "Metric regression",
                "the challenger is trained on labels with a share of approvals flipped to denials",
                "evaluate_vs_champion"),
)
BY_NAME = {m.name: m for m in MODES}
REGRESSION_FLIP_SHARE = 0.35


def check_name(name: str) -> FailureMode:
    """The mode called `name`; ValueError listing the valid names otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown failure mode {name!r}; modes are: {', '.join(BY_NAME)}") from None


def drop_schema_column(frame: pd.DataFrame) -> pd.DataFrame:
    """schema_validation: the feed loses diagnosis_group."""
    return frame.drop(columns=["diagnosis_group"])


def format_amounts_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """training_error: amounts arrive as thousands-separated strings, as from a careless CSV export."""
    out = frame.copy()
    for col in ("billed_amount", "allowed_amount"):
        out[col] = [f"{v:,.2f}" for v in out[col]]
    return out


def flip_labels(frame: pd.DataFrame, share: float = REGRESSION_FLIP_SHARE, seed: int = 0) -> pd.DataFrame:
    """metric_regression: a share of Approved training labels turned Denied, as from a broken labelling join."""
    import numpy as np  # here, not at the top: the CLI reads MODES without paying for pandas and numpy
    import pandas as pd

    from engine.ml.claims import APPROVED, DENIED, TARGET, label_array
    out = frame.copy()
    rng = np.random.default_rng(seed)
    approved = label_array(out).astype(bool) & (rng.random(len(out)) >= share)
    out[TARGET] = pd.Categorical(np.where(approved, APPROVED, DENIED), categories=[APPROVED, DENIED])
    return out
