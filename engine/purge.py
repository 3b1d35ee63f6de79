"""Removing what a pruned run leaves outside the store, for real: its MLflow runs, registered versions, logged
models and their artifacts, and its working folder.

MLflow's `delete_run` and `delete_logged_model` only mark a record deleted, and its files stay where they are;
`mlflow gc` is what removes them. `forget` does for the lab's own records what `mlflow gc` does: it deletes the
artifacts through MLflow's artifact repository (a local directory, or the server's proxied store), then the
record, permanently where the tracking store can (a SQLite or PostgreSQL backend: `_hard_delete_run`, the method
`mlflow gc` calls). Behind a tracking server only the server's backend can hard-delete, so there the records stay
marked deleted for the server's own `mlflow gc`, while their artifacts are already gone. What MLflow itself keeps
of a deleted version (a redacted row and its tags) and of a run's dataset records (`mlflow gc` leaves them too) is
a few kilobytes a run.

A record is doomed when its pipeline run (the `pipeline_run_id` tag) is no longer in the lab's store and is older
than the newest run there (a run committed while this sweeps is newer, and its steps may be logging right now);
a version that holds an alias, or that `keep_versions` names, never is. Whatever a failure leaves behind is
doomed again at the next call, so the sweep is safe to repeat.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from engine.config import CHALLENGER, CHAMPION, MODEL_NAME, STAGING
from engine.tracking import _ABSENT as ABSENT

ALIASES = (CHALLENGER, STAGING, CHAMPION)


def forget(tracking, live_runs: set[int], keep_versions: set[int] = frozenset()) -> dict[str, int]:
    """Permanently remove the MLflow runs, versions and logged models of pipeline runs not in `live_runs`.

    Versions in `keep_versions` or holding an alias stay, and so do the runs (and logged models) they came from."""
    keep = set(keep_versions) | alias_versions(tracking)
    versions = _versions(tracking)
    kept_runs = {v.run_id for v in versions if int(v.version) in keep}
    runs = [r for r in doomed_runs(tracking, live_runs) if r.info.run_id not in kept_runs]
    ids = {r.info.run_id for r in runs}
    newest = max(live_runs, default=0)
    doomed = [v for v in versions if int(v.version) not in keep
              and (v.run_id in ids or _gone(v.tags.get("pipeline_run_id", ""), live_runs, newest))]
    for version in doomed:
        tracking.delete_version(int(version.version))
    models = _delete_logged_models(tracking, ids)
    for run in runs:
        _delete_run(tracking, run)
    return {"mlflow_runs": len(runs), "model_versions": len(doomed), "logged_models": models}


def forget_run_dirs(data_dir: Path, live_runs: set[int]) -> int:
    """Delete the working folders (`<data dir>/runs/<id>`: CI sample, JUnit XML) of pipeline runs that are gone,
    by the same rule as their MLflow records; return how many went."""
    newest, removed = max(live_runs, default=0), 0
    for folder in (Path(data_dir) / "runs").glob("*"):
        if folder.is_dir() and _gone(folder.name, live_runs, newest):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def pipeline_run_of(tracking, version: int) -> int | None:
    """The pipeline run a registered version came from (its `pipeline_run_id` tag), or None (no such version).

    MLflow not answering raises: a prune must not go on without knowing what to keep."""
    try:
        tags = tracking.client.get_model_version(MODEL_NAME, str(version)).tags
    except MlflowException as exc:
        if exc.error_code in ABSENT:
            return None
        raise
    tag = tags.get("pipeline_run_id", "")
    return int(tag) if tag.isascii() and tag.isdigit() else None


def alias_versions(tracking) -> set[int]:
    """The versions the lab's aliases point at now (MlflowUnreachable when MLflow does not answer)."""
    return {v for v in (tracking.alias_version(a) for a in ALIASES) if v is not None}


def doomed_runs(tracking, live_runs: set[int]) -> list:
    """MLflow runs (deleted ones too) tagged with a pipeline run that is not in `live_runs` and older than them."""
    client, found, token = tracking.client, [], None
    newest = max(live_runs, default=0)
    while True:
        page = client.search_runs([tracking.experiment_id()], run_view_type=ViewType.ALL, max_results=500,
                                  page_token=token)
        found += [r for r in page if _gone(r.data.tags.get("pipeline_run_id", ""), live_runs, newest)]
        token = page.token
        if not token:
            return found


def _gone(tag: str, live_runs: set[int], newest: int) -> bool:
    # A run without the tag is not the lab's to delete; with no live run at all (a reset), every tagged one is.
    if not (tag.isascii() and tag.isdigit()):
        return False
    return int(tag) not in live_runs and (not live_runs or int(tag) < newest)


def _versions(tracking) -> list:
    """Every live registered version of the lab's model."""
    client, found, token = tracking.client, [], None
    while True:
        page = client.search_model_versions(f"name='{MODEL_NAME}'", max_results=200, page_token=token)
        found += list(page)
        token = page.token
        if not token:
            return found


def _delete_logged_models(tracking, run_ids: set[str]) -> int:
    client, deleted, token = tracking.client, 0, None
    doomed = []
    while True:
        page = client.search_logged_models(experiment_ids=[tracking.experiment_id()], page_token=token)
        doomed += [m for m in page if m.source_run_id in run_ids]
        token = page.token
        if not token:
            break
    for model in doomed:
        _delete_files(tracking, model.artifact_location)
        client.delete_logged_model(model.model_id)
        hard = getattr(_backend(tracking), "_hard_delete_logged_model", None)
        if hard is not None:
            hard(model.model_id)
        deleted += 1
    return deleted


def _delete_run(tracking, run) -> None:
    _delete_files(tracking, run.info.artifact_uri)
    if run.info.lifecycle_stage != "deleted":
        tracking.client.delete_run(run.info.run_id)
    hard = getattr(_backend(tracking), "_hard_delete_run", None)
    if hard is not None:
        hard(run.info.run_id)


def _delete_files(tracking, uri: str | None) -> None:
    """Delete the artifacts under `uri`, and the folder MLflow made for them when it is local and left empty."""
    if not uri:
        return
    get_artifact_repository(uri, tracking_uri=tracking.uri).delete_artifacts()
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        folder = Path(unquote(parts.path)).parent  # <experiment>/<run id> or <experiment>/models/<model id>
        try:
            folder.rmdir()
        except OSError:  # not empty, or already gone: nothing of ours to tidy
            pass


def _backend(tracking):
    """The tracking client's store (a SqlAlchemyStore can delete permanently; a server's RestStore cannot)."""
    return tracking.client._tracking_client.store
