"""What MLflow serves for a registered claims model: P(Approved) and the decision at the model's own threshold.

This file is logged as MLflow "model code" (`mlflow.pyfunc.log_model(python_model=<this file>)`), so nothing
here is pickled: MLflow stores the file itself, the fitted scikit-learn pipeline as a skops artifact (a format
that loads only allow-listed types), and the threshold in the model config. It imports nothing from the lab,
so `mlflow.pyfunc.load_model("models:/claims-settlement-rf@champion")` works in any environment with the pinned
requirements.

`predict(frame)` returns a frame with `p_approved` (float64) and `decision` ("Approved" or "Denied"). It accepts
what the lab's generator produces and what a JSON client sends: categories as strings or pandas categoricals,
ages as whole or fractional numbers, amounts as floats. A category the model was not trained on, or a value that
is not a number, is refused with an MlflowException that names the column and what it accepts.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

APPROVED, DENIED = "Approved", "Denied"


class ClaimsModel(PythonModel):
    """The fitted pipeline plus its decision threshold, validated at the door."""

    def load_context(self, context):
        """Load the skops-serialised pipeline and read the threshold from the model config."""
        self.pipeline = mlflow.sklearn.load_model(context.artifacts["pipeline"])
        self.threshold = float(context.model_config["threshold"])
        encoder = self.pipeline.named_steps["prep"].named_transformers_["categories"]
        self.categories = {col: [str(c) for c in cats]
                           for col, cats in zip(encoder.feature_names_in_, encoder.categories_)}
        self.numbers = [c for c in self.pipeline.named_steps["prep"].feature_names_in_ if c not in self.categories]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """P(Approved) and the decision at the model's threshold, one row per claim."""
        rows = self._checked(pd.DataFrame(model_input))
        proba = self.pipeline.predict_proba(rows)[:, list(self.pipeline.classes_).index(1)].astype(np.float64)
        return pd.DataFrame({"p_approved": proba,
                             "decision": np.where(proba >= self.threshold, APPROVED, DENIED)},
                            index=rows.index)

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for col, allowed in self.categories.items():
            values = frame[col].astype(object)
            unknown = sorted({str(v) for v in values[~values.isin(allowed)]})
            if unknown:
                raise MlflowException(f"column {col!r} has unknown categories {unknown[:5]}; "
                                      f"use one of: {', '.join(allowed)}", INVALID_PARAMETER_VALUE)
            out[col] = values
        for col in self.numbers:
            try:
                out[col] = pd.to_numeric(frame[col], errors="raise").astype(np.float64)
            except (TypeError, ValueError):
                raise MlflowException(f"column {col!r} must hold numbers, got {frame[col].tolist()[:3]!r}",
                                      INVALID_PARAMETER_VALUE) from None
            if not np.isfinite(out[col]).all():
                raise MlflowException(f"column {col!r} must hold finite numbers (no NaN or infinity)",
                                      INVALID_PARAMETER_VALUE)
        return pd.DataFrame(out, index=frame.index)[list(self.pipeline.named_steps["prep"].feature_names_in_)]


set_model(ClaimsModel())
