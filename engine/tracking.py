"""MLflow: the experiment, runs, datasets, the registered model, its aliases, and reads for the explorer.

Clients are built per tracking URI. The only fluent-API call is `log_model` (it needs an active run), guarded
by a lock because the fluent API's tracking URI is process-global.
"""
from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.types import ColSpec, DataType, Schema
from mlflow.types.utils import _infer_schema

from engine.config import CHAMPION, EXPERIMENT, MODEL_NAME, mask_text, mask_url
from engine.errors import Refused
from engine.ml.claims import TARGET
from engine.ml.serving import ServedModel
from engine.store import advisory_lock

_FLUENT = threading.RLock()
# Error codes that mean "not there" rather than "could not ask".
_ABSENT = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}
# How SQLite and PostgreSQL report a unique key that another writer took first.
_DUPLICATE_KEY = ("UNIQUE constraint failed", "duplicate key value violates unique constraint")


class MlflowUnreachable(RuntimeError):
    """The tracking server did not answer; the message names the address."""


SERVABLE_TAG = "servable"


class NotServable(Refused):
    """A registered version without what serving needs today: an older lab registered it without a decision
    threshold. It stays in the registry (its history is real) but nothing can serve or judge against it."""
    MARK = "false: registered by an older lab without a decision threshold"

    def __init__(self, version: int):
        self.version = version
        super().__init__(
            f"version {version} of {MODEL_NAME} was registered by an older lab without a decision threshold, so it "
            "cannot be served; promote a version trained by a CD run (commit, continue, approve), or roll back "
            "to one")


def _unreachable(uri: str, exc: Exception) -> MlflowUnreachable:
    text = mask_text(str(exc))  # MLflow's message quotes the URL it called, password and all
    cause = next((c for c in ("Connection refused", "timed out", "Name or service not known") if c in text),
                 text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__)
    return MlflowUnreachable(f"MLflow at {mask_url(uri)} is unreachable ({cause}); start the server or fix "
                             f"MLFLOW_TRACKING_URI, or turn the mlflow_connection failure mode off")


def frame_schema(frame: pd.DataFrame) -> Schema | None:
    """The schema MLflow infers for a dataset record of `frame` (None where it cannot infer one), without its
    scan of every value in Python: 0.7-0.9 s per 40,000-claim frame, most of a dataset record's cost.

    As in MLflow, a column's type follows from its dtype; a text column (object or categorical) is recognised by
    pandas' C scan instead, `required` means no value is missing, and any other object column keeps MLflow's
    own inference.
    """
    specs = []
    try:
        for name, col in frame.items():
            values = col.cat.categories if isinstance(col.dtype, pd.CategoricalDtype) else col
            if col.dtype.kind == "O" and pd.api.types.infer_dtype(values, skipna=True) == "string":
                kind = DataType.string
            else:  # numbers, booleans and times: the dtype decides, so one row is enough
                kind = _infer_schema(col if col.dtype.kind == "O" else col.iloc[:1]).inputs[0].type
            specs.append(ColSpec(kind, name=name, required=not col.isna().any()))
    except MlflowException:
        return None  # e.g. an object column holding several types
    return Schema(specs)


_PREPARED: set[str] = set()
_PREPARE_LOCK = threading.Lock()


def prepare_mlflow_backend(uri: str) -> None:
    """Create MLflow's schema on a PostgreSQL backend once, under an advisory lock in that database.

    Workers starting together on a fresh backend would otherwise all run MLflow's migrations and all but one
    fail on `alembic_version` (UniqueViolation).
    """
    if not uri.startswith("postgresql") or uri in _PREPARED:
        return
    with _PREPARE_LOCK:
        if uri in _PREPARED:
            return
        with advisory_lock(uri, "lab-mlflow-schema"):
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)  # migrates, as any first use
            client.search_experiments(max_results=1)
            client.search_registered_models(max_results=1)
        _PREPARED.add(uri)


class Tracking:
    """One MLflow tracking server/store and the lab's experiment and registered model in it."""

    def __init__(self, uri: str, artifact_root: str | None = None):
        self.uri = uri
        self.artifact_root = artifact_root if not uri.startswith("http") else None
        self.client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        self._experiment_id: str | None = None

    # ---- runs ---------------------------------------------------------------------------------------------
    def experiment_id(self) -> str:
        """The lab's experiment, created on first use."""
        if self._experiment_id is None:
            try:
                exp = self.client.get_experiment_by_name(EXPERIMENT)
                self._experiment_id = exp.experiment_id if exp else self.client.create_experiment(
                    EXPERIMENT, artifact_location=self.artifact_root)
            except MlflowException as exc:
                if "RESOURCE_ALREADY_EXISTS" in str(exc) or "already exists" in str(exc):
                    return self.experiment_id()  # another process created it first
                raise _unreachable(self.uri, exc) from exc
            except Exception as exc:
                raise _unreachable(self.uri, exc) from exc
        return self._experiment_id

    def start_run(self, name: str, tags: dict[str, str]) -> str:
        """Create a run in the lab's experiment; return its id."""
        return self.client.create_run(self.experiment_id(), run_name=name, tags=tags).info.run_id

    def log(self, run_id: str, params: dict | None = None, metrics: dict | None = None,
            tags: dict | None = None) -> None:
        """Log params, numeric metrics and tags in one batch."""
        import time
        ts = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), ts, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    def log_dataset(self, run_id: str, frame: pd.DataFrame, name: str, context: str,
                    digest: str | None = None) -> str:
        """Record `frame` as an input of the run (schema, profile, digest); return the digest.

        Pass `digest` (engine.ml.provenance.frame_digest): MLflow's own hashes only the first 10,000 rows.
        """
        with _quiet_mlflow():  # its integer-column hint is about model signatures, not a dataset record
            ds = mlflow.data.from_pandas(frame, name=name, targets=TARGET if TARGET in frame else None,
                                         digest=digest)
            ds.__dict__["schema"] = frame_schema(frame)  # a cached_property: set first, MLflow's scan is skipped
            entity = ds._to_mlflow_entity()
        inputs = [DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])]
        try:
            self.client.log_inputs(run_id, datasets=inputs)
        except MlflowException as exc:
            # MLflow looks a dataset up, then inserts it: two runs logging the same data at once (same seed and
            # window) can both miss it, and the second insert breaks the unique key. Then it exists: log again.
            if not any(word in str(exc) for word in _DUPLICATE_KEY):
                raise
            self.client.log_inputs(run_id, datasets=inputs)
        return ds.digest

    def log_files(self, run_id: str, files: dict[str, bytes | str]) -> None:
        """Store several artifacts of the run in one upload: {"folder/name": bytes or text}."""
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                path = Path(tmp) / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data if isinstance(data, bytes) else data.encode())
            self.client.log_artifacts(run_id, tmp)

    def finish(self, run_id: str, ok: bool = True) -> None:
        """Close the run."""
        self.client.set_terminated(run_id, "FINISHED" if ok else "FAILED")

    # ---- the model ----------------------------------------------------------------------------------------
    def log_and_register(self, run_id: str, model, example: pd.DataFrame, threshold: float) -> int:
        """Log the pipeline as the serving pyfunc (skops inside, threshold in its config); register a version."""
        from engine.ml import contract
        from engine.ml.model import raw_features, save_model, save_model_kwargs
        from engine.ml.serving import PYFUNC_CODE, SIGNATURE
        kwargs = save_model_kwargs()
        with tempfile.TemporaryDirectory() as tmp, _fluent(self.uri), _quiet_mlflow():
            pipeline_dir = str(Path(tmp) / "pipeline")
            save_model(model, pipeline_dir)  # its size is remembered: model_size_bytes does not save it again
            with mlflow.start_run(run_id=run_id, nested=False):
                # Pinned requirements spare MLflow seconds of inference in a subprocess.
                info = mlflow.pyfunc.log_model(
                    name="model", python_model=str(PYFUNC_CODE), artifacts={"pipeline": pipeline_dir},
                    model_config={"threshold": float(threshold)}, signature=SIGNATURE,
                    input_example=raw_features(example.head(5)), pip_requirements=kwargs["pip_requirements"],
                    code_paths=[contract.__file__])  # the claim contract the pyfunc checks with, served along
            # The registry resolves the logged model through the process-wide URI, so register inside _fluent.
            return self._register(info, run_id)

    def _register(self, info, run_id: str) -> int:
        # Through the client, not log_model(registered_model_name=...), which prints to stderr on every call.
        try:
            self.client.create_registered_model(MODEL_NAME)
        except MlflowException as exc:
            if exc.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
                raise
        version = self.client.create_model_version(MODEL_NAME, source=info.model_uri, run_id=run_id,
                                                   model_id=info.model_id)
        return int(version.version)

    def delete_version(self, version: int) -> None:
        """Remove a registered version (its artifacts stay with its MLflow run)."""
        self.client.delete_model_version(MODEL_NAME, str(version))

    def set_alias(self, alias: str, version: int) -> None:
        """Point `alias` at `version`."""
        self.client.set_registered_model_alias(MODEL_NAME, alias, str(version))

    def alias_version(self, alias: str) -> int | None:
        """The version `alias` points at, or None when nothing holds it (MlflowUnreachable if MLflow is down)."""
        try:
            return int(self.client.get_model_version_by_alias(MODEL_NAME, alias).version)
        except MlflowException as exc:
            if exc.error_code in _ABSENT:
                return None
            raise _unreachable(self.uri, exc) from exc
        except Exception as exc:
            raise _unreachable(self.uri, exc) from exc

    def set_version_tags(self, version: int, tags: dict[str, str]) -> None:
        """Tag a model version (approval decisions, provenance)."""
        for k, v in tags.items():
            self.client.set_model_version_tag(MODEL_NAME, str(version), k, str(v))

    def load_model(self, version: int) -> ServedModel:
        """A registered version as MLflow serves it (cached: versions are immutable). NotServable for a version an
        older lab registered without today's serving contract; the version is tagged `servable=false` for the
        registry pages."""
        try:
            return _load(self.uri, int(version))
        except NotServable:
            self._mark_unservable(version)
            raise

    def servable_alias(self, alias: str = CHAMPION) -> int | None:
        """The version `alias` points at (None when nobody holds it), checked servable from its MLmodel without
        loading it: NotServable, the version marked, for one an older lab registered without a decision threshold.
        A page process asks this (the stream's Start); loading the model there would bring in scikit-learn and
        keep the model in memory, about 130 MB the process only needs to draw pages."""
        version = self.alias_version(alias)
        if version is None:
            return None
        try:
            _check_servable(self.uri, version)
        except NotServable:
            self._mark_unservable(version)
            raise
        return version

    def _mark_unservable(self, version: int) -> None:
        with contextlib.suppress(Exception):  # the mark is a courtesy; the refusal is what matters
            self.client.set_model_version_tag(MODEL_NAME, str(version), SERVABLE_TAG, NotServable.MARK)

    def load_alias(self, alias: str = CHAMPION) -> tuple[int | None, ServedModel | None]:
        """(version, served model) for an alias, or (None, None)."""
        version = self.alias_version(alias)
        return (version, self.load_model(version)) if version else (None, None)

    def comparable(self, alias: str = CHAMPION) -> tuple[int | None, ServedModel | None, str]:
        """What a gate compares against: (version, model, "") for a servable holder of `alias`, (version, None,
        why) when it holds a version that cannot be served (NotServable), and (None, None, "") when nobody does."""
        try:
            version, model = self.load_alias(alias)
        except NotServable as exc:
            return exc.version, None, str(exc)
        return version, model, ""

    # ---- reads for the explorer ---------------------------------------------------------------------------
    def versions(self) -> list[dict]:
        """Registered versions, newest first, with aliases, tags and the source run."""
        try:
            found = self.client.search_model_versions(f"name='{MODEL_NAME}'", max_results=200)
        except MlflowException:
            return []
        # search_model_versions leaves aliases empty on this store; the registered model has them all.
        by_version: dict[str, list[str]] = {}
        if found:
            for alias, version in self.client.get_registered_model(MODEL_NAME).aliases.items():
                by_version.setdefault(str(version), []).append(alias)
        out = [{"version": int(v.version), "aliases": sorted(by_version.get(str(v.version), [])),
                "tags": dict(v.tags), "run_id": v.run_id, "created": v.creation_timestamp / 1000,
                "status": v.status} for v in found]
        return sorted(out, key=lambda v: -v["version"])

    def search_runs(self, stage: str | None = None, max_results: int = 20, page_token: str | None = None,
                    where: str = ""):
        """One page of runs (newest first), optionally only one stage and only those matching `where` (MLflow's
        search syntax, e.g. "metrics.f1 > 0.8 and tags.seed = '11'"); returns (rows, next_page_token)."""
        flt = " and ".join(filter(None, (f"tags.stage = '{stage}'" if stage else "", where.strip())))
        page = self.client.search_runs([self.experiment_id()], filter_string=flt, max_results=max_results,
                                       order_by=["attributes.start_time DESC"], page_token=page_token)
        rows = [{"run_id": r.info.run_id, "name": r.info.run_name, "status": r.info.status,
                 "start": r.info.start_time / 1000, "stage": r.data.tags.get("stage", ""),
                 "commit_sha": r.data.tags.get("commit_sha", ""),
                 "pipeline_run_id": r.data.tags.get("pipeline_run_id", ""), **r.data.metrics} for r in page]
        return rows, page.token

    def run_detail(self, run_id: str) -> dict:
        """Params, metrics, tags, dataset inputs and artifact paths of one run."""
        run = self.client.get_run(run_id)
        inputs = [{"name": d.dataset.name, "digest": d.dataset.digest, "source_type": d.dataset.source_type,
                   "context": next((t.value for t in d.tags if t.key == "mlflow.data.context"), ""),
                   "schema": d.dataset.schema, "profile": d.dataset.profile}
                  for d in (run.inputs.dataset_inputs if run.inputs else [])]
        return {"run_id": run_id, "name": run.info.run_name, "status": run.info.status,
                "start": run.info.start_time / 1000, "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
                "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
                "inputs": inputs, "artifacts": self._artifact_paths(run_id)}

    def _artifact_paths(self, run_id: str, path: str | None = None) -> list[str]:
        out = []
        for f in self.client.list_artifacts(run_id, path):
            out.extend(self._artifact_paths(run_id, f.path) if f.is_dir else [f.path])
        return out

    def artifact_bytes(self, run_id: str, path: str) -> bytes:
        """Download one artifact."""
        with tempfile.TemporaryDirectory() as tmp:
            return Path(self.client.download_artifacts(run_id, path, tmp)).read_bytes()

    def artifact_json(self, run_id: str, path: str):
        """Download and parse one JSON artifact."""
        return json.loads(self.artifact_bytes(run_id, path))


@contextlib.contextmanager
def _fluent(uri: str):
    """Point the fluent API at `uri` for a moment, then restore it (set_tracking_uri also writes os.environ)."""
    with _FLUENT:
        saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
            mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


@contextlib.contextmanager
def _quiet_mlflow():
    """Silence MLflow's advice while logging a model whose signature and requirements are given explicitly."""
    loggers = [logging.getLogger(n) for n in ("mlflow.models.model", "mlflow.pyfunc", "mlflow.sklearn",
                                              "mlflow.models.signature", "mlflow.utils.requirements_utils")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _check_servable(uri: str, version: int) -> None:
    """NotServable unless the version's MLmodel gives its pyfunc a decision threshold (the serving contract of
    engine/ml/serving_pyfunc.py): read from the model's metadata, without loading the model."""
    with _fluent(uri):
        flavor = mlflow.models.get_model_info(f"models:/{MODEL_NAME}/{version}").flavors.get("python_function", {})
    if "threshold" not in (flavor.get("config") or {}):
        raise NotServable(version)


@functools.lru_cache(maxsize=8)
def _load(uri: str, version: int) -> ServedModel:
    _check_servable(uri, version)
    with _fluent(uri), _quiet_mlflow():
        return ServedModel(version, mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}/{version}"))
