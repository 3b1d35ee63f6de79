"""The serving contract: the signature MLflow enforces and the one way the lab scores claims with a served model.

A registered version is the pyfunc in `serving_pyfunc.py`. The lab loads it with `mlflow.pyfunc.load_model` and
wraps it in a `ServedModel`, so `Lab.score`, the gates, the shadow test and the live stream all score through
exactly what MLflow serves to anyone else.

Input schema: the amounts are doubles (MLflow checks them); the categories and the age are `AnyType`, because
MLflow's column types refuse a pandas categorical for a string column and an int64 column for a double, while
the lab's own frames carry both. The pyfunc checks those three itself and refuses bad values with an
MlflowException naming the column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

from engine.ml.claims import APPROVED, CATEGORICAL, FEATURES

PYFUNC_CODE = Path(__file__).with_name("serving_pyfunc.py")
_LOOSE = set(CATEGORICAL) | {"patient_age"}

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec(AnyType() if col in _LOOSE else DataType.double, col) for col in FEATURES]),
    outputs=Schema([ColSpec(DataType.double, "p_approved"), ColSpec(DataType.string, "decision")]),
)


@dataclass(frozen=True)
class ServedModel:
    """A registered version as MLflow serves it: P(Approved) and decisions at its own threshold."""

    version: int
    pyfunc: Any  # mlflow.pyfunc.PyFuncModel over serving_pyfunc.ClaimsModel

    @property
    def threshold(self) -> float:
        """The decision threshold the version was registered with."""
        return self.pyfunc.unwrap_python_model().threshold

    @property
    def pipeline(self):
        """The fitted scikit-learn pipeline inside (for SHAP explanations of single claims)."""
        return self.pyfunc.unwrap_python_model().pipeline

    def predict(self, frame: pd.DataFrame, enforce_schema: bool = True) -> pd.DataFrame:
        """MLflow's own answer for each claim: columns p_approved and decision.

        enforce_schema=False skips MLflow's generic signature pass (a Python loop over every categorical cell,
        ~10 us each) and calls the same loaded model's predict, which still checks every value itself; the live
        stream uses it for the frames the lab's own generator made.
        """
        rows = frame.loc[:, list(FEATURES)]
        if enforce_schema:
            return self.pyfunc.predict(rows)
        return self.pyfunc.unwrap_python_model().predict(None, rows)

    def p_approved(self, frame: pd.DataFrame) -> np.ndarray:
        """P(Approved) for each claim, float64."""
        return self.predict(frame)["p_approved"].to_numpy(np.float64)

    def decide(self, frame: pd.DataFrame) -> np.ndarray:
        """True where the served decision is Approved."""
        return self.predict(frame)["decision"].to_numpy() == APPROVED
