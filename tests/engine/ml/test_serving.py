"""The serving contract: what `mlflow.pyfunc.load_model("models:/...@champion")` returns is what the lab shows."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from engine.config import CHAMPION, MODEL_NAME
from engine.errors import BadInput
from engine.ml.claims import APPROVED, DENIED, FEATURES, derived_seed, generate_claims
from engine.ml.model import train
from engine.ml.serving import ServedModel

THRESHOLD = 0.37  # deliberately not 0.5: decisions must follow the model's own threshold
CLAIM = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal",
         "billed_amount": 4200.0, "allowed_amount": 3100.0, "patient_age": 45.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlflow_template):
    """A lab whose champion is a small forest registered through the real logging path, and its pipeline."""
    from engine.lab import Lab
    from tests.engine.conftest import make_settings
    data_dir = tmp_path_factory.mktemp("serving")
    lab = Lab(make_settings(data_dir, f"sqlite:///{data_dir / 'lab.db'}", mlflow_template))
    pipeline = train(generate_claims(3000, 5), {"n_estimators": 15, "max_leaf_nodes": 64, "random_state": 5})
    run_id = lab.tracking.start_run("serving-test", {"stage": "CD"})
    version = lab.tracking.log_and_register(run_id, pipeline, generate_claims(5, 5), threshold=THRESHOLD)
    lab.tracking.set_alias(CHAMPION, version)
    yield lab, pipeline, version
    lab.close()


@pytest.fixture(scope="module")
def pyfunc(served):
    """The champion exactly as any MLflow client loads it, by alias."""
    import mlflow

    from engine.tracking import _fluent
    with _fluent(served[0].settings.tracking_uri):
        return mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@{CHAMPION}")


def test_pyfunc_returns_probabilities_and_decisions_as_its_signature_says(pyfunc, served):
    _, pipeline, _ = served
    fresh = generate_claims(500, derived_seed(5, 1))
    out = pyfunc.predict(fresh)  # the generator's own frame: categoricals, int ages, extra columns
    assert list(out.columns) == ["p_approved", "decision"]
    assert out["p_approved"].dtype == np.float64
    assert out["p_approved"].between(0, 1).all()
    rows = fresh[list(FEATURES)].astype({c: object for c in ("cpt_bucket", "provider_type", "diagnosis_group")})
    expected = pipeline.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(out["p_approved"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert (out["decision"] == np.where(expected >= THRESHOLD, APPROVED, DENIED)).all()
    assert [c.name for c in pyfunc.metadata.get_output_schema().inputs] == ["p_approved", "decision"]
    assert [c.name for c in pyfunc.metadata.get_input_schema().inputs] == list(FEATURES)


def test_lab_score_equals_what_mlflow_serves(pyfunc, served):
    lab, _, version = served
    fresh = generate_claims(40, derived_seed(5, 2))
    served_p = pyfunc.predict(fresh)["p_approved"].to_numpy()
    for i, row in enumerate(fresh[list(FEATURES)].to_dict("records")):
        scored = lab.score({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
        assert math.isclose(scored["p_approved"], served_p[i], abs_tol=1e-9)
        assert scored["version"] == version and scored["threshold"] == THRESHOLD
        assert scored["decision"] == (APPROVED if served_p[i] >= THRESHOLD else DENIED)


@pytest.mark.parametrize("age", [45, 45.0, np.int64(45), 45.5])
def test_ages_are_accepted_as_any_number(pyfunc, age):
    out = pyfunc.predict(pd.DataFrame([{**CLAIM, "patient_age": age}]))
    assert 0 <= out["p_approved"].iloc[0] <= 1


def test_plain_strings_and_categoricals_score_the_same(pyfunc):
    frame = generate_claims(200, 8)
    as_text = frame.astype({c: str for c in ("cpt_bucket", "provider_type", "diagnosis_group")})
    pd.testing.assert_frame_equal(pyfunc.predict(frame), pyfunc.predict(as_text))


@pytest.mark.parametrize("change, message", [
    ({"cpt_bucket": "Dentistry"}, "column 'cpt_bucket' has unknown categories ['Dentistry']"),
    ({"provider_type": 3}, "column 'provider_type' has unknown categories ['3']"),
    ({"patient_age": "old"}, "column 'patient_age' must hold numbers"),
    ({"patient_age": float("nan")}, "column 'patient_age' must hold finite numbers"),
    ({"billed_amount": "4200"}, "Incompatible input types for column billed_amount"),
])
def test_bad_input_is_refused_by_the_model_naming_the_column(pyfunc, change, message):
    with pytest.raises(MlflowException) as err:
        pyfunc.predict(pd.DataFrame([{**CLAIM, **change}]))
    assert message in str(err.value)


def test_a_missing_column_is_refused(pyfunc):
    with pytest.raises(MlflowException, match=r"Model is missing inputs \['diagnosis_group'\]"):
        pyfunc.predict(pd.DataFrame([{k: v for k, v in CLAIM.items() if k != "diagnosis_group"}]))


def test_served_model_wraps_the_pyfunc_with_its_threshold(served):
    lab, pipeline, version = served
    model = lab.tracking.load_model(version)
    assert isinstance(model, ServedModel) and model.version == version and model.threshold == THRESHOLD
    frame = generate_claims(300, 9)
    p = model.p_approved(frame)
    assert p.dtype == np.float64
    np.testing.assert_array_equal(model.decide(frame), p >= THRESHOLD)
    assert lab.tracking.load_alias(CHAMPION)[0] == version
    assert lab.tracking.load_alias("staging") == (None, None)


def test_the_artifact_is_skops_not_pickle(served):
    lab, _, version = served
    mv = lab.tracking.client.get_model_version(MODEL_NAME, str(version))
    files = lab.tracking._artifact_paths(mv.run_id)
    assert not any(f.endswith((".pkl", ".pickle")) for f in files), files


def test_logging_and_loading_print_nothing_on_stderr(served, capfd):
    lab, pipeline, _ = served
    run_id = lab.tracking.start_run("quiet", {"stage": "CD"})
    capfd.readouterr()
    version = lab.tracking.log_and_register(run_id, pipeline, generate_claims(5, 5), threshold=0.5)
    lab.tracking.load_model(version).p_approved(generate_claims(10, 3))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


def test_scoring_with_mlflow_down_names_the_address(tmp_path, mlflow_template):
    from engine.errors import Refused
    from engine.lab import Lab
    from engine.tracking import MlflowUnreachable
    from tests.engine.conftest import make_settings
    lab = Lab(make_settings(tmp_path, f"sqlite:///{tmp_path / 'lab.db'}", mlflow_template,
                            tracking_uri="http://127.0.0.1:9"))
    try:
        with pytest.raises(MlflowUnreachable, match=r"MLflow at http://127.0.0.1:9 is unreachable") as err:
            lab.score(CLAIM)
        assert not isinstance(err.value, Refused)
    finally:
        lab.close()


def test_score_refuses_bad_claims_before_loading_anything(served):
    lab, _, _ = served
    with pytest.raises(BadInput, match="cpt_bucket 'Dentistry' is not a known category"):
        lab.score({**CLAIM, "cpt_bucket": "Dentistry"})
