"""What MLflow serves for a registered claims model: P(Approved) and the decision at the model's own threshold.

This file is logged as MLflow "model code" (`mlflow.pyfunc.log_model(python_model=<this file>)`), so nothing
here is pickled: MLflow stores the file itself, the fitted scikit-learn pipeline as a skops artifact (a format
that loads only allow-listed types), and the threshold in the model config. It needs nothing from the lab but
the claim contract, logged beside it as model code, so `mlflow.pyfunc.load_model("models:/claims-settlement-rf@
champion")` works in any environment with the pinned requirements.

`predict(frame)` returns a frame with `p_approved` (float64) and `decision` ("Approved" or "Denied"). It accepts
what the lab's generator produces and what a JSON client sends: categories as strings or pandas categoricals,
ages as whole or fractional numbers, amounts as floats. It refuses what `engine score` refuses, through the same
function (`contract.claim_problems`, logged beside this file): a category the model was not trained on, a value
that is not a finite number, an amount not above 0, allowed above billed, an age outside 0..110. The
MlflowException names the field, what was wrong and what is allowed.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import set_model
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel

try:  # inside the lab
    from engine.ml.contract import claim_problems
except ImportError:  # wherever else MLflow loads the model: the copy logged beside this file (code_paths)
    from contract import claim_problems

APPROVED, DENIED = "Approved", "Denied"


class ClaimsModel(PythonModel):
    """The fitted pipeline plus its decision threshold, validated at the door."""

    def load_context(self, context):
        """Load the skops-serialised model and read the threshold from the model config."""
        # A calibrated version is CalibratedClassifierCV around the frozen fitted pipeline; an older one is the
        # bare pipeline. `model` gives P(Approved); `pipeline` (encoder categories, SHAP) is the one inside.
        self.model = mlflow.sklearn.load_model(context.artifacts["pipeline"])
        calibrated = getattr(self.model, "calibrated_classifiers_", None)
        self.pipeline = calibrated[0].estimator.estimator if calibrated else self.model
        self.threshold = float(context.model_config["threshold"])
        encoder = self.pipeline.named_steps["prep"].named_transformers_["categories"]
        self.categories = {col: [str(c) for c in cats]
                           for col, cats in zip(encoder.feature_names_in_, encoder.categories_)}

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """P(Approved) and the decision at the model's threshold, one row per claim."""
        rows = self._checked(pd.DataFrame(model_input))
        proba = self.model.predict_proba(rows)[:, list(self.model.classes_).index(1)].astype(np.float64)
        return pd.DataFrame({"p_approved": proba,
                             "decision": np.where(proba >= self.threshold, APPROVED, DENIED)},
                            index=rows.index)

    def _checked(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model's columns, or an MlflowException naming each bad field, what was wrong and what is allowed:
        the claim contract `engine score` applies (contract.py), against the categories this model learned."""
        columns = {c: frame[c] for c in frame.columns if isinstance(c, str)}
        numbers, errors = claim_problems(columns, len(frame), self.categories)
        if errors:
            raise MlflowException(f"claim refused: {'; '.join(errors.values())}", INVALID_PARAMETER_VALUE)
        out = {**{c: frame[c].astype(object) for c in self.categories}, **numbers}
        return pd.DataFrame(out, index=frame.index)[list(self.pipeline.named_steps["prep"].feature_names_in_)]


set_model(ClaimsModel())
