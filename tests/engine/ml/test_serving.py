"""The serving contract: what `mlflow.pyfunc.load_model("models:/...@champion")` returns is what the lab shows."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from engine.config import CHAMPION, MODEL_NAME
from engine.errors import BadInput
from engine.ml import contract
from engine.ml.claims import APPROVED, DENIED, FEATURES, derived_seed, generate_claims
from engine.ml.model import train
from engine.ml.serving import ServedModel
from tests.conftest import free_port, kill_group, wait_serving

THRESHOLD = 0.37  # deliberately not 0.5: decisions must follow the model's own threshold
CLAIM = {"cpt_bucket": "Surgery", "provider_type": "Hospital", "diagnosis_group": "Renal",
         "billed_amount": 4200.0, "allowed_amount": 3100.0, "patient_age": 45.0}


@pytest.fixture(scope="module")
def served(tmp_path_factory, mlflow_template):
    """A lab whose champion is a small forest registered through the real logging path, and its pipeline."""
    from engine.lab import Lab
    from tests.conftest import make_settings
    lab = Lab(make_settings(tmp_path_factory.mktemp("serving"), None, mlflow_template))
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
    ({"cpt_bucket": "Dentistry"}, "claim refused: cpt_bucket 'Dentistry' is not a known category; use one of: "),
    ({"provider_type": 3}, "provider_type 3 is not a known category"),
    ({"patient_age": "old"}, "patient_age 'old' is not a number"),
    ({"patient_age": float("nan")}, "patient_age nan is not a finite number"),
    ({"billed_amount": "4200"}, "Incompatible input types for column billed_amount"),  # MLflow's schema, first
    ({"billed_amount": -100.0, "allowed_amount": -5.0}, "billed_amount -100 must be more than 0; allowed_amount -5 "
     "must be more than 0"),
    ({"allowed_amount": 5000.0}, "allowed_amount 5000 is more than billed_amount 4200; the payer cannot allow more"),
    ({"patient_age": 500}, "patient_age 500 is outside 0..110; give the age in years"),
    ({"patient_age": 110.0000001}, "patient_age 110.0000001 is outside 0..110"),
    ({"billed_amount": 1e39}, "billed_amount 1e+39 is beyond what the model can read (at most 3.403e+38)"),
    ({"billed_amount": float("inf")}, "billed_amount inf is not a finite number"),
    ({"cpt_bucket": "x" * 10_000}, "cpt_bucket 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx... (10,002 characters) is not"),
], ids=lambda v: str(v)[:40])
def test_bad_input_is_refused_by_the_model_naming_the_column(pyfunc, change, message):
    with pytest.raises(MlflowException) as err:
        pyfunc.predict(pd.DataFrame([{**CLAIM, **change}]))
    assert message in str(err.value)
    assert len(str(err.value)) < 2000  # a bad value is quoted cut short, never whole


# What issue 21 found served: P(Approved) 0.979 for billed -100, allowed 3,100, age 500; and the rows `engine
# score` refuses, each of which the served model must refuse with the very same messages.
REFUSED = [{"billed_amount": -100.0, "allowed_amount": 3100.0, "patient_age": 500},
           {"billed_amount": 100.0}, {"patient_age": -1}, {"patient_age": 110.0000001}, {"billed_amount": 0.0},
           {"allowed_amount": 1e39}, {"diagnosis_group": "Dentistry"}, {"provider_type": ""}, {"patient_age": "forty"}]


@pytest.mark.parametrize("change", REFUSED, ids=lambda v: str(v)[:50])
def test_the_served_model_refuses_what_engine_score_refuses_with_the_same_messages(pyfunc, served, change):
    claim = {**CLAIM, **change}
    with pytest.raises(BadInput) as refused:
        served[0].score(claim)
    with pytest.raises(MlflowException) as served_err:
        pyfunc.predict(pd.DataFrame([claim]))
    for message in str(refused.value).split("; "):
        assert message in str(served_err.value)


def test_in_a_batch_the_first_bad_claim_is_named_by_its_place(pyfunc):
    frame = generate_claims(5, 8)[list(FEATURES)]
    frame.loc[2, "patient_age"] = 500
    frame.loc[4, "patient_age"] = -3
    with pytest.raises(MlflowException, match=r"claim 3 of 5: patient_age 500 is outside 0\.\.110"):
        pyfunc.predict(frame)


def test_the_claim_contract_is_logged_with_the_model_as_its_code(served):
    import mlflow

    from engine.tracking import _fluent
    lab, _, version = served
    with _fluent(lab.settings.tracking_uri):
        local = Path(mlflow.artifacts.download_artifacts(f"models:/{MODEL_NAME}/{version}"))
    assert (local / "code" / "contract.py").read_text() == Path(contract.__file__).read_text()


def test_the_contract_knows_the_models_numbers():
    from engine.ml import claims, validation
    assert contract.NUMERIC == claims.NUMERIC
    assert (validation.AGE_MIN, validation.AGE_MAX) == (contract.AGE_MIN, contract.AGE_MAX)


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
    from tests.conftest import make_settings
    lab = Lab(make_settings(tmp_path, None, mlflow_template, tracking_uri="http://127.0.0.1:9"))
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


def test_a_calibrated_model_is_served_with_its_calibrated_probabilities(served):
    from engine.ml.model import calibrate
    lab, pipeline, _ = served
    calibrated = calibrate(pipeline, generate_claims(2000, 6))
    run_id = lab.tracking.start_run("serving-calibrated", {"stage": "CD"})
    version = lab.tracking.log_and_register(run_id, calibrated, generate_claims(5, 5), threshold=THRESHOLD)
    model = lab.tracking.load_model(version)
    fresh = generate_claims(300, derived_seed(6, 1))
    rows = fresh[list(FEATURES)].astype({c: object for c in ("cpt_bucket", "provider_type", "diagnosis_group")})
    expected = calibrated.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(model.p_approved(fresh), expected, rtol=0, atol=1e-12)
    assert not np.allclose(expected, pipeline.predict_proba(rows)[:, 1])  # calibration changed them
    assert model.pipeline.named_steps["forest"].n_estimators == 15  # the forest inside, for SHAP


def test_mlflow_models_serve_refuses_the_claim_engine_score_refuses(served, tmp_path):
    """The model as anyone serves it, outside the lab (no `engine` to import): the contract came along with it."""
    lab, _, _ = served
    port, log = free_port(), tmp_path / "serve.log"
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {
        "MLFLOW_TRACKING_URI": lab.settings.tracking_uri, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(bin_dir, "mlflow"), "models", "serve", "-m",
                                 f"models:/{MODEL_NAME}@{CHAMPION}", "--env-manager", "local", "-p", str(port),
                                 "-h", "127.0.0.1"], env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_serving(f"http://127.0.0.1:{port}/ping", proc, log)

        def invoke(claim: dict) -> tuple[int, dict]:
            body = json.dumps({"dataframe_records": [claim]}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", body,
                                             {"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=60) as reply:
                    return reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        status, answer = invoke(CLAIM)
        assert status == 200 and 0 <= answer["predictions"][0]["p_approved"] <= 1, answer
        impossible = {**CLAIM, "billed_amount": -100.0, "allowed_amount": 3100.0, "patient_age": 500}
        status, answer = invoke(impossible)
        with pytest.raises(BadInput) as refused:
            lab.score(impossible)
        assert status == 400, answer
        for message in str(refused.value).split("; "):
            assert message in answer["message"]
    finally:
        kill_group(proc, signal.SIGTERM, timeout=15)
