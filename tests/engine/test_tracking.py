"""MLflow reads the explorer uses (run pages, artifacts) and the fluent API's global URI, on a copy of the played
lifecycle (tests/conftest.py); expectations come from the lab's own step outputs, not from MLflow's answers."""
from __future__ import annotations

import os

import mlflow
import pytest

from engine import tracking as T
from engine.lab import Lab
from tests.conftest import copy_store, make_settings, store_settings


@pytest.fixture(scope="module")
def played(played_lifecycle, tmp_path_factory):
    """A Lab over a copy of the played lifecycle; its runner is not started."""
    lab = Lab(store_settings(played_lifecycle, copy_store(played_lifecycle, tmp_path_factory.mktemp("tracking"))))
    yield lab
    lab.close()


def logged_runs(lab: Lab, stage: str | None = None) -> list[str]:
    """MLflow run ids the pipeline's steps reported, newest pipeline step first."""
    found = []
    for run in lab.runs():
        for step in lab.run(run.id).steps:
            mlflow_id = (step.outputs or {}).get("mlflow_run_id")
            if mlflow_id and step.started_at and stage in (None, step.stage):
                found.append((step.started_at, mlflow_id))
    return [mlflow_id for _, mlflow_id in sorted(found, reverse=True)]


@pytest.mark.parametrize("stage", [None, "CI", "CD"])
def test_search_runs_pages_through_every_logged_run_newest_first(played, stage):
    expected = logged_runs(played, stage)
    assert len(expected) == (4 if stage is None else 2)  # runs 1 and 2 logged one CI and one CD run each
    seen, token, pages = [], None, 0
    while True:
        rows, token = played.tracking.search_runs(stage, max_results=1, page_token=token)
        pages += 1
        seen += [r["run_id"] for r in rows]
        assert all(stage in (None, r["stage"]) for r in rows)
        if token is None:
            break
    assert seen == expected
    assert pages in (len(expected), len(expected) + 1)  # a store may end with one empty page


def test_search_runs_rows_carry_the_pipeline_tags_and_metrics(played):
    rows, _ = played.tracking.search_runs("CD", max_results=10)
    by_run = {r["run_id"]: r for r in rows}
    for run_id in (1, 2):
        full = played.run(run_id).outputs_of("cd_full_train")
        row = by_run[full["mlflow_run_id"]]
        assert (row["pipeline_run_id"], row["stage"], row["status"]) == (str(run_id), "CD", "FINISHED")
        assert row["commit_sha"] == played.run(run_id).sha
        assert row["roc_auc"] == pytest.approx(full["metrics"]["roc_auc"])


def test_artifact_json_returns_the_logged_confusion_matrix(played):
    full = played.run(1).outputs_of("cd_full_train")
    matrix = played.tracking.artifact_json(full["mlflow_run_id"], "eval/confusion_matrix.json")
    assert matrix == full["metrics"]["confusion_matrix"]
    assert sum(map(sum, matrix["matrix"])) == full["holdout_rows"]


@pytest.mark.parametrize("outside", [None, "sqlite:////nowhere/else.db"], ids=["unset", "set"])
def test_loading_a_model_leaves_the_global_tracking_uri_as_it_was(played, monkeypatch, outside):
    if outside is None:
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    else:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", outside)
        monkeypatch.setenv("MLFLOW_REGISTRY_URI", outside)
    mlflow.set_tracking_uri(outside)
    mlflow.set_registry_uri(outside)
    before = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    T._load.cache_clear()  # loads are cached per (uri, version): make this one go through MLflow's fluent API
    try:
        assert played.tracking.load_model(1) is not None
        assert (mlflow.get_tracking_uri(), mlflow.get_registry_uri()) == before
        assert os.environ.get("MLFLOW_TRACKING_URI") == outside and os.environ.get("MLFLOW_REGISTRY_URI") == outside
    finally:
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


def _odd_frames():
    """Claims as the lab makes them, and the shapes a broken export can take."""
    import numpy as np
    import pandas as pd

    from engine.ml.claims import generate_claims
    claims = generate_claims(500, seed=7)
    every = np.arange(len(claims))
    return {
        "claims": claims,
        "no rows": claims.iloc[:0],
        "missing amounts": claims.assign(billed_amount=claims["billed_amount"].where(every % 7 > 0)),
        "missing categories": claims.assign(cpt_bucket=claims["cpt_bucket"].where(every % 5 > 0)),
        "missing dates": claims.assign(service_date=claims["service_date"].where(every % 3 > 0)),
        "text ids": claims.assign(claim_id=claims["claim_id"].astype(str)),
        "numbers as objects": claims.assign(patient_age=pd.Series(every, dtype=object)),
        "booleans and int32": claims.assign(flag=every % 2 == 0, small=every.astype(np.int32)),
        "several types in a column": claims.assign(note=["1", 2] * (len(claims) // 2)),
    }


@pytest.mark.parametrize("kind", list(_odd_frames()))
def test_a_dataset_record_has_the_schema_mlflow_itself_infers(kind):
    frame = _odd_frames()[kind]
    with T._quiet_mlflow():
        expected = mlflow.data.from_pandas(frame).schema  # MLflow's own scan of every value
        assert T.frame_schema(frame) == expected


def test_a_run_that_loses_the_race_to_record_the_same_dataset_records_it_anyway(tmp_path, mlflow_template):
    """Two runs of one seed and window log the same dataset at once; MLflow looks it up, then inserts it, so the
    slower one breaks the unique key. Forced here: the other run records it right before the first attempt
    fails as MLflow fails then."""
    from engine.ml.claims import generate_claims
    settings = make_settings(tmp_path, mlflow_template=mlflow_template)
    tracking = T.Tracking(settings.tracking_uri, settings.artifact_root)
    winner, loser = (tracking.start_run(name, {}) for name in ("winner", "loser"))
    frame = generate_claims(300, seed=7)
    real = tracking.client.log_inputs
    attempts = []

    def lose_the_race_once(run_id, datasets):
        attempts.append(run_id)
        if len(attempts) == 1:
            real(winner, datasets=datasets)
            raise mlflow.exceptions.MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, datasets.name, "
                "datasets.digest")
        return real(run_id, datasets=datasets)

    tracking.client.log_inputs = lose_the_race_once
    digest = tracking.log_dataset(loser, frame, name="claims-train", context="training", digest="d1")
    assert digest == "d1" and attempts == [loser, loser]
    for run_id in (winner, loser):
        (dataset,) = [i.dataset for i in tracking.client.get_run(run_id).inputs.dataset_inputs]
        assert (dataset.name, dataset.digest) == ("claims-train", "d1")

    def fails_otherwise(run_id, datasets):
        raise mlflow.exceptions.MlflowException("database is locked")

    tracking.client.log_inputs = fails_otherwise
    with pytest.raises(mlflow.exceptions.MlflowException, match="database is locked"):
        tracking.log_dataset(loser, frame, name="claims-other", context="training", digest="d2")


def test_several_artifacts_are_stored_in_one_upload(tmp_path, mlflow_template):
    settings = make_settings(tmp_path, mlflow_template=mlflow_template)
    tracking = T.Tracking(settings.tracking_uri, settings.artifact_root)
    run_id = tracking.start_run("artifacts", {})
    uploads = []
    real = tracking.client.log_artifacts
    tracking.client.log_artifacts = lambda *a, **k: uploads.append(a) or real(*a, **k)
    files = {"shap/beeswarm.png": b"\x89PNG\r\n\x1a\n", "shap/importance.csv": "feature,mean_abs_shap\n",
             "eval/reliability.json": '{"ece": 0.01}'}
    tracking.log_files(run_id, files)
    assert len(uploads) == 1
    assert sorted(tracking.run_detail(run_id)["artifacts"]) == sorted(files)
    for name, data in files.items():
        assert tracking.artifact_bytes(run_id, name) == (data if isinstance(data, bytes) else data.encode())
