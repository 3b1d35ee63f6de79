"""The runner: an APScheduler tick that claims queued steps, runs them in a worker thread and records everything.

Many runners (dashboard replicas, `python -m engine worker` processes) may share one database. Each step is
claimed atomically, so it runs exactly once. A step whose worker stops heartbeating is marked `interrupted`,
and so is its run, by whichever runner ticks next.
"""
from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from engine import failures, pipeline
from engine.config import Settings
from engine.errors import GateFailed, GateHeld
from engine.states import IllegalTransition, RunStatus, StepStatus
from engine.store import Store, timestamp

log = logging.getLogger(__name__)


def run_feed(run: dict, rows: int):
    """A run's claims: the first `rows` of its seed, window and data shift; the schema failure mode drops a column."""
    from engine.ml.claims import Shift, generate_claims
    frame = generate_claims(rows, run["seed"], run["dataset_window"], Shift(**(run.get("shift") or {})))
    if "schema_validation" in (run["failure_modes"] or ()):
        frame = failures.drop_schema_column(frame)
    return frame


class StepContext:
    """What a step sees: its run, its parameters, upstream outputs, a logger into the store, MLflow."""

    def __init__(self, store: Store, settings: Settings, run: dict, step: dict):
        self.store, self.settings, self.run, self.step = store, settings, run, step
        self.spec = pipeline.spec(step["name"])
        self.params = self.spec.params()
        self.modes = frozenset(run["failure_modes"] or ())
        self.run_dir = Path(settings.data_dir) / "runs" / str(run["id"])
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tracking = None

    def log(self, message: str, level: str = "INFO") -> None:
        """Write a log line the dashboard shows while the step runs."""
        self.store.add_log(self.run["id"], self.step["name"], self.step["attempt"], level, str(message))

    def upstream(self, name: str) -> dict:
        """Outputs of an earlier step of this run."""
        row = self.store.step(self.run["id"], name)
        if not row or row["status"] not in (StepStatus.SUCCEEDED.value, StepStatus.AWAITING_APPROVAL.value):
            raise RuntimeError(f"step {name!r} has not succeeded in run {self.run['id']}; retry from it first")
        return row["outputs"] or {}

    @property
    def tracking(self):
        """MLflow for this run: the configured server, or a dead address under the mlflow_connection mode."""
        if self._tracking is None:
            from engine.tracking import Tracking
            uri = self.settings.unreachable_mlflow_uri if "mlflow_connection" in self.modes \
                else self.settings.tracking_uri
            self._tracking = Tracking(uri, self.settings.artifact_root)
        return self._tracking

    def tags(self, stage: str, model_version: str = "unregistered") -> dict[str, str]:
        """The reproducibility tags every MLflow run of this pipeline run carries."""
        return {"commit_sha": self.run["sha"], "stage": stage, "dataset_window": self.run["dataset_window"],
                "seed": str(self.run["seed"]), "model_version": model_version,
                "pipeline_run_id": str(self.run["id"])}

    def feed(self, rows: int):
        """This run's data feed (see run_feed)."""
        return run_feed(self.run, rows)

    def fresh(self, rows: int, purpose: int, shift=None):
        """Claims the model never saw (holdouts, shadow traffic): same window, a seed derived from `purpose`."""
        from engine.ml.claims import NO_SHIFT, derived_seed, generate_claims
        return generate_claims(rows, derived_seed(self.run["seed"], purpose), self.run["dataset_window"],
                               shift or NO_SHIFT)

    def move_alias(self, alias: str, version: int, reason: str, by: str = "pipeline") -> int | None:
        """Point a registry alias at `version` for this run; return the version that held it before."""
        previous = self.store.move_alias(self.tracking, alias, version, self.run["id"], by, reason,
                                         action="promote" if alias == "champion" else "deploy")
        self.log(f"alias {alias}: version {previous or '(none)'} -> {version}")
        return previous

    def mode(self, name: str) -> bool:
        """Whether failure mode `name` is on for this run."""
        failures.check_name(name)
        return name in self.modes


class Runner:
    """Claims and runs queued steps; up to `parallel` at once per process (independent DAG branches)."""

    def __init__(self, store: Store, settings: Settings, parallel: int = 2):
        self.store, self.settings = store, settings
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="lab-step")
        self._parallel, self._active = parallel, 0
        self._cond = threading.Condition()
        self._scheduler: BackgroundScheduler | None = None

    # ---- scheduling ---------------------------------------------------------------------------------------
    def start(self) -> "Runner":
        """Start the background tick (idempotent)."""
        if self._scheduler is None:
            self._scheduler = BackgroundScheduler(daemon=True)
            self._scheduler.add_job(self.tick, "interval", seconds=self.settings.tick_seconds, coalesce=True,
                                    max_instances=1, misfire_grace_time=max(1, int(self.settings.tick_seconds)),
                                    next_run_time=datetime.now(), id="lab-tick")
            self._scheduler.start()
        return self

    def add_interval_job(self, job, seconds: float, job_id: str) -> None:
        """Run `job` every `seconds` in this runner's scheduler (started by start(); one instance at a time)."""
        self.start()
        self._scheduler.add_job(job, "interval", seconds=seconds, coalesce=True, max_instances=1,
                                misfire_grace_time=max(1, int(seconds)), next_run_time=datetime.now(),
                                id=job_id, replace_existing=True)

    def stop(self, wait: bool = True) -> None:
        """Stop ticking; with wait, let running steps finish."""
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        self._pool.shutdown(wait=wait)

    def tick(self) -> None:
        """One short scheduler tick: reap dead workers' steps, then hand queued steps to free worker threads."""
        try:
            self.reap_stale()
            self._fill()
        except Exception:  # a tick must never kill the scheduler; the next tick tries again
            log.exception("runner tick failed")

    def _fill(self) -> None:
        with self._cond:
            while self._active < self._parallel:
                step = self.store.claim_step(self.worker_id)
                if step is None:
                    return
                self._active += 1
                self._pool.submit(self._drain, step)

    def _drain(self, step: dict) -> None:
        try:
            self.execute(step)
        except Exception:
            log.exception("runner worker failed")
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()
        self._fill()  # what this step made ready starts now, not at the next tick

    def run_until_idle(self) -> None:
        """Run queued steps (in parallel where the DAG allows) until none is left; for --wait and tests."""
        while True:
            self._fill()
            with self._cond:
                if self._active == 0:
                    return
                self._cond.wait(0.5)

    # ---- one step -----------------------------------------------------------------------------------------
    def execute(self, step: dict) -> None:
        """Run a claimed step with a heartbeat, then record its outcome and move the run on."""
        run = self.store.get_run(step["run_id"])
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(step["id"], done), daemon=True)
        beat.start()
        try:
            ctx = StepContext(self.store, self.settings, run, step)
            ctx.log(f"started {step['name']} (attempt {step['attempt']}) on {self.worker_id}")
            module = importlib.import_module(f"engine.steps.{step['name']}")
            outputs = module.run(ctx) or {}
        except GateFailed as gate:
            self._finish_failed(step, str(gate), gate.outputs,
                                RunStatus.HELD if isinstance(gate, GateHeld) else RunStatus.FAILED)
        except Exception as exc:
            for line in traceback.format_exc().rstrip().splitlines():
                self._log(step, "DEBUG", line)
            self._finish_failed(step, f"{type(exc).__name__}: {exc}", {}, RunStatus.FAILED)
        else:
            self._finish_ok(step, outputs)
        finally:
            done.set()
            beat.join()

    def _heartbeat(self, step_id: int, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_seconds):
            try:
                if not self.store.heartbeat(step_id):
                    return
            except Exception:
                log.exception("heartbeat failed")

    def _log(self, step: dict, level: str, message: str) -> None:
        self.store.add_log(step["run_id"], step["name"], step["attempt"], level, message)

    def _finish_ok(self, step: dict, outputs: dict) -> None:
        spec = pipeline.spec(step["name"])
        now = timestamp()
        try:
            with self.store.tx() as c:
                run_status = self.store.get_run_status(c, step["run_id"])
                if spec.approval:
                    self.store.set_step_status(c, step, StepStatus.AWAITING_APPROVAL, outputs=outputs,
                                               finished_at=now)
                    self.store.set_run_status(c, step["run_id"], run_status, RunStatus.AWAITING_APPROVAL)
                else:
                    self.store.set_step_status(c, step, StepStatus.SUCCEEDED, outputs=outputs, finished_at=now)
                    # If a sibling step stopped the run meanwhile, record this result but start nothing.
                    if run_status == RunStatus.RUNNING.value:
                        self._advance(c, step["run_id"], spec.stage)
        except IllegalTransition as exc:  # reaped as interrupted while it ran: its result is not recorded
            self._log(step, "WARNING", f"result discarded: {exc}")
            return
        self._log(step, "INFO", f"{step['name']} finished in {now - step['started_at']:.2f} s")

    def _advance(self, conn, run_id: int, stage: str) -> None:
        """Queue what became ready in `stage`; rest the run when the whole stage has succeeded."""
        statuses = {s["name"]: s["status"] for s in self.store.steps_of(run_id, conn)}
        for name in pipeline.ready(stage, statuses):
            self.store.queue_step(conn, run_id, name)
        if all(statuses[s.name] == StepStatus.SUCCEEDED.value for s in pipeline.STEPS if s.stage == stage):
            rest = pipeline.stage_rest(stage)
            if rest is not None:
                self.store.set_run_status(conn, run_id, RunStatus.RUNNING.value, rest)

    def _finish_failed(self, step: dict, message: str, outputs: dict, run_target: RunStatus) -> None:
        self._log(step, "ERROR", message)
        try:
            with self.store.tx() as c:
                run_status = self.store.get_run_status(c, step["run_id"])
                self.store.set_step_status(c, step, StepStatus.FAILED, outputs=outputs, error=message,
                                           finished_at=timestamp())
                self.store.set_run_status(c, step["run_id"], run_status, run_target)
                self.store.skip_pending(c, step["run_id"])
        except IllegalTransition as exc:
            self._log(step, "WARNING", f"result discarded: {exc}")

    # ---- dead workers -------------------------------------------------------------------------------------
    def reap_stale(self) -> int:
        """Mark steps whose worker stopped heartbeating (and their runs) interrupted; return how many."""
        reaped = 0
        for step in self.store.stale_steps(self.settings.stale_seconds):
            msg = (f"worker {step['worker']} stopped heartbeating "
                   f"{timestamp() - step['heartbeat_at']:.0f} s ago (its process died?); retry the run to re-run it")
            try:
                with self.store.tx() as c:
                    self.store.set_step_status(c, step, StepStatus.INTERRUPTED, error=msg, finished_at=timestamp())
                    status = self.store.get_run_status(c, step["run_id"])
                    if status == RunStatus.RUNNING.value:
                        self.store.set_run_status(c, step["run_id"], status, RunStatus.INTERRUPTED)
                    self.store.skip_pending(c, step["run_id"])
            except IllegalTransition:
                continue  # another runner reaped it first, or it finished after all
            self._log(step, "ERROR", f"interrupted: {msg} (noticed by {self.worker_id})")
            reaped += 1
        return reaped
