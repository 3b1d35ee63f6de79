"""A champion an older lab registered without today's serving contract (a plain sklearn model, no decision
threshold, as commit 76bfc14 registered them) is marked as such and the lab still runs: scoring and the stream
refuse with the fix (exit 3), and a new CD run is judged against approve-every-claim and promoted."""
from __future__ import annotations

import json

import mlflow
import pytest

from engine.config import CHAMPION, MODEL_NAME
from engine.errors import Refused
from engine.ml.claims import generate_claims
from engine.ml.model import raw_features, save_model_kwargs, train
from engine.tracking import SERVABLE_TAG, NotServable, _fluent
from tests.conftest import cli_env, engine_cli

CLAIM = {"cpt_bucket": "Radiology", "provider_type": "Hospital", "diagnosis_group": "Cardiovascular",
         "billed_amount": 1200, "allowed_amount": 900, "patient_age": 61, "service_date": "2025-03-02"}


def register_the_old_way(lab) -> int:
    """A version logged as 76bfc14 logged them: mlflow.sklearn, registered, no pyfunc wrapper, no threshold."""
    claims = generate_claims(500, 5, "2025-01-01..2025-06-30")
    model = train(claims, {"n_estimators": 5})
    tracking = lab.tracking
    run_id = tracking.start_run("legacy-cd", {"stage": "CD"})
    with _fluent(tracking.uri), mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(model, name="model", input_example=raw_features(claims.head(5)),
                                        registered_model_name=MODEL_NAME, **save_model_kwargs())
    version = int(info.registered_model_version)
    tracking.set_alias(CHAMPION, version)
    return version


@pytest.fixture
def legacy(lab):
    return lab, register_the_old_way(lab)


def test_scoring_refuses_with_the_fix_and_the_version_is_marked(legacy):
    lab, version = legacy
    with pytest.raises(NotServable, match="older lab without a decision threshold") as refused:
        lab.score(CLAIM)
    assert isinstance(refused.value, Refused) and "CD run" in str(refused.value)
    tags = lab.tracking.client.get_model_version(MODEL_NAME, str(version)).tags
    assert tags[SERVABLE_TAG].startswith("false")


def test_the_cli_exits_3_for_score_and_stream_start(legacy):
    lab, _ = legacy
    env = cli_env(lab.settings)
    score = engine_cli(env, "score", "--json", json.dumps(CLAIM))
    assert score.returncode == 3, score.stderr
    assert "decision threshold" in score.stderr and "Traceback" not in score.stderr
    stream = engine_cli(env, "stream", "start")
    assert stream.returncode == 3, stream.stderr
    assert lab.stream.state()["enabled"] is False  # refused: nothing changed


def test_a_new_cd_run_is_judged_against_the_baseline_and_promoted(legacy):
    lab, version = legacy
    run_id = lab.commit(message="after an upgrade", seed=92, author="operator")
    lab.runner.run_until_idle()
    lab.continue_run(run_id, by="operator")
    lab.runner.run_until_idle()
    gate = lab.run(run_id)
    evaluate = next(s for s in gate.steps if s.name == "evaluate_vs_champion")
    assert evaluate.status == "succeeded", evaluate.error
    assert evaluate.outputs["gate"]["rule"].startswith(f"champion v{version} cannot be served")
    lab.approve(run_id, by="operator", comment="replaces the unservable champion")
    lab.runner.run_until_idle()
    assert lab.run(run_id).status == "promoted"
    assert lab.tracking.alias_version(CHAMPION) != version
    assert lab.score(CLAIM)["decision"] in ("Approved", "Denied")
