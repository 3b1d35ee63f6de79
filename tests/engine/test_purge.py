"""Pruning for real (engine/purge.py, Lab.prune): old MLflow runs, registered versions, logged models and their
files are gone from disk, not marked deleted; what the lab still needs (the newest champions, every alias holder,
the runs they came from) stays, so a rollback works and the drift monitor keeps its reference.

One lab, three real promotions (versions 1, 2, 3 from runs 1, 2, 3), a prune keeping one run and two champions.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from engine.config import MODEL_NAME
from engine.errors import Refused
from engine.lab import Lab
from engine.stream import MIN_ROWS
from tests.conftest import make_settings
from tests.engine.test_stream import promote


def _path(uri: str) -> Path:
    return Path(unquote(urlsplit(uri).path))


def _records(lab: Lab) -> dict:
    """Every MLflow record of the lab by pipeline run: runs (deleted ones too), versions, logged models, files."""
    client = lab.tracking.client
    runs = client.search_runs([lab.tracking.experiment_id()], run_view_type=ViewType.ALL)
    versions = client.search_model_versions(f"name='{MODEL_NAME}'")
    models = client.search_logged_models(experiment_ids=[lab.tracking.experiment_id()])
    by_run = {r.info.run_id: int(r.data.tags["pipeline_run_id"]) for r in runs}
    files = {_path(r.info.artifact_uri): by_run[r.info.run_id] for r in runs} | {
        _path(m.artifact_location): by_run.get(m.source_run_id) for m in models}
    return {"runs": sorted(set(by_run.values())), "versions": sorted(int(v.version) for v in versions),
            "models": {m.model_id: by_run.get(m.source_run_id) for m in models},
            "files": {path: run for path, run in files.items() if path.exists()}}  # a run may log no file


@pytest.fixture(scope="module")
def pruned(tmp_path_factory, mlflow_template):
    """(lab, MLflow records before the prune): three promotions, then a prune to one run and two champions."""
    settings = make_settings(tmp_path_factory.mktemp("purge"), None, mlflow_template, keep_champions=2)
    lab = Lab(settings)
    try:
        for seed in (11, 12, 14):
            promote(lab, seed)
        before = _records(lab)
        lab.prune(1)
        yield lab, before
    finally:
        lab.close()


def test_a_prune_removes_old_runs_versions_logged_models_and_their_files_for_real(pruned):
    lab, before = pruned
    assert sorted(lab.store.run_ids()) == [2, 3]  # run 2 is older than the one kept, but a rollback restores it
    after = _records(lab)
    assert (before["runs"], after["runs"]) == ([1, 2, 3], [2, 3])  # not even marked deleted
    assert (before["versions"], after["versions"]) == ([1, 2, 3], [2, 3])
    assert sorted(after["models"].values()) == [2, 3]
    gone = [path for path, run in before["files"].items() if run == 1]
    assert gone and not any(path.exists() for path in gone)
    folders = lab.settings.data_dir / "runs"  # each run's working folder (CI sample, JUnit XML)
    assert sorted(int(f.name) for f in folders.iterdir()) == [2, 3]
    assert all(path.exists() for path, run in before["files"].items() if run in (2, 3))
    old_model = next(m for m, run in before["models"].items() if run == 1)
    with pytest.raises(MlflowException):
        lab.tracking.client.get_logged_model(old_model)
    assert lab.prune(1) == {"runs": 0, "mlflow_runs": 0, "model_versions": 0, "logged_models": 0, "run_folders": 0}


def test_a_prune_never_leaves_the_monitor_without_a_reference(pruned):
    # The finding: prune to one run, roll back to a version whose run was pruned, and every stream snapshot was
    # refused with "version 1 has no pipeline run in this lab's store".
    lab, _ = pruned
    moved = lab.rollback("operator", "v3 misbehaves")
    assert (moved["from_version"], moved["to_version"]) == (3, 2)
    lab.stream.start(rate=5, scenario="none", by="test")
    try:
        lab.stream.produce(MIN_ROWS)
        snapshot = lab.stream.take_snapshot()
    finally:
        lab.stream.stop(by="test")
    assert (snapshot["champion_version"], snapshot["status"]) == (2, "ok")
    assert snapshot["detail"]["reference"]["pipeline_run_id"] == 2
    # Version 1 was pruned with its run: the next rollback says so instead of serving a model that is gone.
    current, target = lab.rollback_target()
    assert target is None and current.startswith("version 1, the champion before version 2, was pruned with its run")
    with pytest.raises(Refused, match="was pruned with its run"):
        lab.rollback("operator", "further back")
