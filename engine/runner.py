"""The runner: an APScheduler tick that claims queued steps, runs them in a worker thread and records everything.

Many runners (dashboard replicas, `python -m engine worker` processes) may share one database. Each step is
claimed atomically, so it runs exactly once. A step whose worker stops heartbeating is marked `interrupted`,
together with its run and every other running or queued step of that run, by whichever runner ticks next.

Liveness is judged on the database's clock, by a runner that has itself reached the database for a whole stale
window: when the database was away, nobody could heartbeat, so nobody is judged dead for it. A runner never
interrupts its own live steps, and a result a step produced while the database was away is written once it is
back.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import threading
import time
import traceback
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from engine import failures, pipeline
from engine.config import Settings, mask_url
from engine.errors import GateFailed, GateHeld
from engine.feeds import production_claims, production_of, run_feed
from engine.outage import Outage, first_line, is_outage
from engine.records import Run, Step
from engine.states import IllegalTransition, RunStatus, StepStatus
from engine.store import Store, timestamp

log = logging.getLogger(__name__)
# A killed worker never deregisters; its row stays listed (as not alive) this long, for diagnosis.
DEAD_WORKER_MEMORY = 3600.0
FORGET_EVERY = 60.0  # seconds between two clean-ups of those rows (by the heartbeat thread, not every tick)


class _NoSkipNotices(logging.Filter):
    """APScheduler warns "skipped: maximum number of running instances reached" each time a job's interval comes
    round while its previous run still goes. Ours are max_instances=1 and coalesced on purpose (a slow tick on a
    busy machine, or one waiting out the database), so that line would flood the log once a second per job: an
    outage is reported once by Outage instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_NoSkipNotices())


class StepContext:
    """What a step sees: its run, its parameters, upstream outputs, a logger into the store, MLflow."""

    def __init__(self, store: Store, settings: Settings, run: Run, step: Step, patiently=None):
        self.store, self.settings, self.run, self.step = store, settings, run, step
        # Calls that ride out a database outage (Runner._patiently: retried with backoff; None once it stops).
        self._patiently = patiently or (lambda call: call())
        self.registered: list[int] = []  # model versions this step registered (removed again if it fails)
        self.spec = pipeline.spec(step.name)
        self.params = self.spec.params()
        self.modes = frozenset(run.failure_modes or ())
        self.run_dir = Path(settings.data_dir) / "runs" / str(run.id)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._tracking = None
        self._unsent: list[tuple[str, str]] = []
        self._runs: list = []  # engine.warm.Run: the pytest runs this step started

    def log(self, message: str, level: str = "INFO") -> None:
        """Write a log line the dashboard shows while the step runs (kept and sent later if the database is away)."""
        self._unsent.append((level, self.settings.redact(str(message))))
        with contextlib.suppress(sa.exc.OperationalError, sa.exc.InterfaceError):
            self.flush_logs()

    def flush_logs(self) -> None:
        """Send log lines the database could not take yet; raises while it still cannot."""
        while self._unsent:
            level, message = self._unsent[0]
            self.store.add_log(self.run.id, self.step.name, self.step.attempt, level, message)
            self._unsent.pop(0)

    def upstream(self, name: str) -> dict:
        """Outputs of an earlier step of this run."""
        row = self.patient(lambda: self.store.step(self.run.id, name))
        if not row or row.status not in (StepStatus.SUCCEEDED, StepStatus.AWAITING_APPROVAL):
            raise RuntimeError(f"step {name!r} has not succeeded in run {self.run.id}; retry from it first")
        return row.outputs or {}

    @property
    def tracking(self):
        """MLflow for this run: the configured server, or a dead address under the mlflow_connection mode."""
        if self._tracking is None:
            from engine.tracking import Tracking, prepare_mlflow_backend
            uri = self.settings.unreachable_mlflow_uri if "mlflow_connection" in self.modes \
                else self.settings.tracking_uri
            prepare_mlflow_backend(uri)
            self._tracking = Tracking(uri, self.settings.artifact_root)
        return self._tracking

    def tags(self, stage: str, model_version: str = "unregistered") -> dict[str, str]:
        """The reproducibility tags every MLflow run of this pipeline run carries."""
        return {"commit_sha": self.run.sha, "stage": stage, "dataset_window": self.run.dataset_window,
                "seed": str(self.run.seed), "model_version": model_version,
                "pipeline_run_id": str(self.run.id)}

    def feed(self, rows: int):
        """This run's data feed (see run_feed)."""
        return run_feed(self.run, rows, self.store)

    @property
    def production(self) -> dict | None:
        """For a retrain on production data, the claim ranges it was committed with (see production_of)."""
        return production_of(self.run)

    def fresh(self, rows: int, purpose: int, shift=None):
        """Claims the model never saw (holdouts, shadow traffic): same window, a seed derived from `purpose`."""
        from engine.ml.claims import NO_SHIFT, derived_seed, generate_claims
        return generate_claims(rows, derived_seed(self.run.seed, purpose), self.run.dataset_window,
                               shift or NO_SHIFT)

    def holdout(self, rows: int, purpose: int):
        """Labelled claims the model did not train on: for a production retrain the newest production claims of
        its time-based split (all of them), otherwise `rows` fresh claims (see fresh)."""
        if self.production:
            return production_claims(self.store, self.run, "evaluation")
        return self.fresh(rows, purpose)

    def traffic(self, rows: int):
        """The newest `rows` labelled claims production served after this run's training claims (the current
        traffic a production retrain's shadow test scores), in generate_claims' layout."""
        from engine.ml.claims import stored_frame
        return stored_frame(self.store.production_traffic(self.production["training"][1], rows))

    def move_alias(self, alias: str, version: int, reason: str, by: str = "pipeline", tags=None) -> int | None:
        """Point a registry alias at `version` for this run, with version `tags` (a dict, or a function of the
        previous holder) set in the same all-or-nothing move; return the version that held it before."""
        # All or nothing (the registry is put back if the database fails), so an outage can be waited out.
        from engine.registry import move_alias
        previous = self.patient(lambda: move_alias(
            self.store, self.tracking, alias, version, self.run.id, by, reason,
            action="promote" if alias == "champion" else "deploy", tags=tags))
        self.log(f"alias {alias}: version {previous or '(none)'} -> {version}")
        return previous

    def patient(self, call):
        """`call()` for a step: its store reads and writes wait out a database outage instead of failing it."""
        answer = self._patiently(lambda: (call(),))  # a tuple, so a call that returns None is told from stopping
        if answer is None:
            raise RuntimeError("the worker stopped while the database was away; retry the run")
        return answer[0]

    def register(self, run_id: str, model, example, threshold: float) -> int:
        """Log `model` to MLflow run `run_id` and register it (Tracking.log_and_register); remembered, so that a
        step failing after this leaves no orphaned version in the registry."""
        version = self.tracking.log_and_register(run_id, model, example, threshold=threshold)
        self.registered.append(version)
        return version

    def discard_registered(self) -> None:
        """Delete the versions this step registered that no alias points at (the step failed after registering)."""
        from engine.purge import alias_versions
        for version in self.registered:
            try:
                if version in alias_versions(self.tracking):
                    continue
                self.tracking.delete_version(version)
                self.log(f"version {version} removed from the registry: the step that registered it failed")
            except Exception as exc:  # MLflow away too: say so, the operator can delete it
                self.log(f"could not remove version {version} from the registry ({first_line(exc)})", "WARNING")
        self.registered.clear()

    def mode(self, name: str) -> bool:
        """Whether failure mode `name` is on for this run."""
        failures.check_name(name)
        return name in self.modes

    def pytest(self, args: list[str], env: dict, output: Path):
        """Start `pytest ARGS` in a fresh child of this worker's warm interpreter (engine/warm.py), its output going
        to `output`. It has a process group of its own, which dies with the step and with this worker."""
        from engine import warm
        run = warm.pytest(args, env, warm.ROOT, output)
        self._runs.append(run)
        return run

    def kill_subprocesses(self) -> None:
        """SIGKILL the process group of every pytest run this step started that is still running."""
        for run in self._runs:
            run.kill()


def _stop_ticking_at_exit(runner: "Runner") -> None:
    """Stop `runner`'s scheduler when the interpreter starts to exit (a server stopped with Ctrl-C or SIGTERM).

    From that moment concurrent.futures refuses new work, so a scheduler still ticking would log "cannot schedule
    new futures after shutdown" with a traceback. threading's exit hooks run before that refusal (the last one
    registered first); the standard library offers no public hook that early.
    """
    ref = weakref.ref(runner)

    def stop() -> None:
        alive = ref()
        if alive is not None and alive._scheduler is not None:
            alive._scheduler.shutdown(wait=False)

    with contextlib.suppress(RuntimeError):  # already exiting
        threading._register_atexit(stop)


class Runner:
    """Claims and runs queued steps; up to `parallel` at once per process (independent DAG branches)."""

    def __init__(self, store: Store, settings: Settings, parallel: int = 2):
        self.store, self.settings = store, settings
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.worker_id = f"{self.host}:{self.pid}:{uuid.uuid4().hex[:6]}"
        self.started_at = timestamp()
        self._pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="lab-step")
        self._parallel, self._active = parallel, 0
        self._cond = threading.Condition()
        self._scheduler: BackgroundScheduler | None = None
        self._live: dict[int, StepContext] = {}   # step id -> context, for the steps this runner is running
        self._stopping = threading.Event()
        self._beat: threading.Thread | None = None
        self.outage = Outage(f"the database at {mask_url(store.url)}")

    # ---- scheduling ---------------------------------------------------------------------------------------
    def start(self) -> "Runner":
        """Start the background tick and the heartbeat (idempotent)."""
        if self._scheduler is None:
            self._start_heartbeat()
            self._scheduler = BackgroundScheduler(daemon=True)
            self._scheduler.add_job(self.tick, "interval", seconds=self.settings.tick_seconds, coalesce=True,
                                    max_instances=1, misfire_grace_time=max(1, int(self.settings.tick_seconds)),
                                    next_run_time=datetime.now(), id="lab-tick")
            self._scheduler.start()
            _stop_ticking_at_exit(self)
        return self

    def add_interval_job(self, job, seconds: float, job_id: str) -> None:
        """Run `job` every `seconds` in this runner's scheduler (started by start(); one instance at a time)."""
        self.start()
        self._scheduler.add_job(job, "interval", seconds=seconds, coalesce=True, max_instances=1,
                                misfire_grace_time=max(1, int(seconds)), next_run_time=datetime.now(),
                                id=job_id, replace_existing=True)

    def stop(self, wait: bool = True) -> None:
        """Stop ticking; with wait, let running steps finish. Deregisters this runner."""
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=wait)
            self._scheduler = None
        self._pool.shutdown(wait=wait)
        if self._beat is not None:
            self._beat.join(timeout=self.settings.heartbeat_seconds + self.settings.db_statement_timeout)
        with contextlib.suppress(Exception):  # a dead database must not stop a shutdown
            self.store.drop_worker(self.worker_id)

    def shutdown(self, grace: float) -> list[str]:
        """Stop claiming; give running steps `grace` seconds to finish, then release the rest to other runners.

        A released step goes back to `queued` (its subprocesses killed), so another runner re-runs it; its
        result, should this process still produce one, is discarded. Returns the released steps' names.
        """
        self._stopping.set()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)  # a tick or stream job in flight finishes (they are short)
            self._scheduler = None
        deadline = time.monotonic() + grace
        with self._cond:
            while self._active and time.monotonic() < deadline:
                self._cond.wait(min(0.5, max(0.01, deadline - time.monotonic())))
        released = []
        for ctx in list(self._live.values()):
            try:  # released first, then its processes killed: the failure their death causes is not recorded
                with self.store.tx() as c:
                    self.store.set_step_status(c, ctx.step, StepStatus.QUEUED, worker=None, queued_at=timestamp())
                ctx.log(f"released by {self.worker_id}: it was shutting down; another worker runs it again", "WARNING")
                released.append(ctx.step.name)
            except IllegalTransition:
                pass  # it finished (or was reaped) while we looked
            except Exception as exc:  # the database is away: the step is reaped as interrupted later
                log.warning("could not release %s: %s", ctx.step.name, first_line(exc))
            ctx.kill_subprocesses()
            self._live.pop(ctx.step.id, None)
        self._pool.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(Exception):
            self.store.drop_worker(self.worker_id)
        return released

    def tick(self) -> None:
        """One short scheduler tick: reap dead workers' steps, then hand queued steps to free worker threads."""
        if self._stopping.is_set() or self.outage.wait() > 0:
            return
        began = time.monotonic()
        try:
            self.reap_when_steady()
            self._fill()
        except Exception as exc:  # a tick must never kill the scheduler; the next tick tries again
            if is_outage(exc):
                self.outage.failed(exc)
            else:
                log.exception("runner tick failed")
            return
        self.outage.ok(began)

    def _fill(self) -> None:
        with self._cond:
            while self._active < self._parallel and not self._stopping.is_set():
                step = self.store.claim_step(self.worker_id)
                if step is None:
                    return
                self._active += 1
                self._pool.submit(self._drain, step)

    def _drain(self, step: Step) -> None:
        try:
            self.execute(step)
        except Exception:
            log.exception("runner worker failed")
        finally:
            with self._cond:
                self._active -= 1
                self._cond.notify_all()
        with contextlib.suppress(Exception):  # the tick retries (and reports an outage) if this fails
            self._fill()  # what this step made ready starts now, not at the next tick

    def run_until_idle(self) -> None:
        """Run queued steps (in parallel where the DAG allows) until none is left; for --wait and tests."""
        self._start_heartbeat()
        while True:
            self._fill()
            with self._cond:
                if self._active == 0:
                    return
                self._cond.wait(0.5)

    # ---- heartbeat ----------------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        with self._cond:
            if self._beat is None:
                self._beat = threading.Thread(target=self._heartbeat, name="lab-heartbeat", daemon=True)
                self._beat.start()

    def _heartbeat(self) -> None:
        """One thread for the runner: renew its own registration and every live step's heartbeat, and now and
        then forget runners that died without deregistering."""
        forgot_at = float("-inf")
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                ids = list(self._live)
                alive = self.store.heartbeat(ids)
                self.store.beat_worker(self.worker_id, self.host, self.pid, self.started_at, len(ids))
                if time.monotonic() - forgot_at > FORGET_EVERY:
                    self.store.forget_dead_workers(max(DEAD_WORKER_MEMORY, self.settings.stale_seconds))
                    forgot_at = time.monotonic()
            except Exception as exc:
                if is_outage(exc):
                    self.outage.failed(exc)
                else:
                    log.exception("heartbeat failed")
            else:
                self.outage.ok(began)
                for step_id in set(ids) - alive:  # marked interrupted (or released) elsewhere: stop its processes
                    ctx = self._live.get(step_id)
                    if ctx is not None:
                        ctx.kill_subprocesses()
            self._stopping.wait(self.settings.heartbeat_seconds)

    # ---- one step -----------------------------------------------------------------------------------------
    def execute(self, step: Step) -> None:
        """Run a claimed step, then record its outcome and move the run on (waiting out a database outage)."""
        run = self._patiently(lambda: self.store.get_run(step.run_id))
        if run is None:
            return  # stopping during an outage: the step is reaped as interrupted later
        ctx = StepContext(self.store, self.settings, run, step, patiently=self._patiently)
        self._live[step.id] = ctx
        try:
            ctx.log(f"started {step.name} (attempt {step.attempt}) on {self.worker_id}")
            try:
                module = importlib.import_module(f"engine.steps.{step.name}")
                outputs = module.run(ctx) or {}
            except GateFailed as gate:
                outcome = (self._finish_failed, str(gate), gate.outputs,
                           RunStatus.HELD if isinstance(gate, GateHeld) else RunStatus.FAILED)
            except Exception as exc:
                for line in traceback.format_exc().rstrip().splitlines():
                    ctx.log(line, "DEBUG")
                outcome = (self._finish_failed, f"{type(exc).__name__}: {exc}", {}, RunStatus.FAILED)
            else:
                outcome = (self._finish_ok, outputs)
            finally:
                ctx.kill_subprocesses()
            if outcome[0] is self._finish_failed:
                ctx.discard_registered()
            self._record(ctx, *outcome)
        finally:
            self._live.pop(step.id, None)

    def _record(self, ctx: StepContext, finish, *args) -> None:
        """Write a step's outcome, retrying through a database outage while this runner is not stopping."""
        def write():
            ctx.flush_logs()
            finish(ctx, *args)
            ctx.flush_logs()
            return True
        if self._patiently(write) is None:
            log.warning("%s of run %s: result not recorded (database away during shutdown)",
                        ctx.step.name, ctx.run.id)

    def _patiently(self, call):
        """`call()`, retried with backoff while the database is away; None if this runner stops meanwhile."""
        while True:
            began = time.monotonic()
            try:
                result = call()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
                if self._stopping.is_set():
                    return None
                self._stopping.wait(max(0.2, self.outage.wait()))
            else:
                self.outage.ok(began)
                return result

    def _finish_ok(self, ctx: StepContext, outputs: dict) -> None:
        step, spec, now = ctx.step, ctx.spec, timestamp()
        outputs = self.settings.redact(outputs)
        try:
            with self.store.tx() as c:
                run_status = self.store.get_run_status(c, step.run_id, lock=True)
                if spec.approval:
                    self.store.set_step_status(c, step, StepStatus.AWAITING_APPROVAL, outputs=outputs,
                                               finished_at=now)
                    self.store.set_run_status(c, step.run_id, run_status, RunStatus.AWAITING_APPROVAL)
                else:
                    self.store.set_step_status(c, step, StepStatus.SUCCEEDED, outputs=outputs, finished_at=now)
                    # If a sibling step stopped the run meanwhile, record this result but start nothing.
                    if run_status is RunStatus.RUNNING:
                        self._advance(c, step.run_id, spec.stage)
        except IllegalTransition as exc:  # reaped or released while it ran: its result is not recorded
            ctx.log(f"result discarded: {exc}", "WARNING")
            return
        ctx.log(f"{step.name} finished in {now - step.started_at:.2f} s")

    def _advance(self, conn, run_id: int, stage: str) -> None:
        """Queue what became ready in `stage`; rest the run when the whole stage has succeeded."""
        statuses = {s.name: s.status for s in self.store.steps_of(run_id, conn)}
        for name in pipeline.ready(stage, statuses):
            self.store.queue_step(conn, run_id, name)
        if pipeline.stage_done(stage, statuses):
            rest = pipeline.stage_rest(stage)
            if rest is not None:
                self.store.set_run_status(conn, run_id, RunStatus.RUNNING, rest)

    def _finish_failed(self, ctx: StepContext, message: str, outputs: dict, run_target: RunStatus) -> None:
        step = ctx.step
        message, outputs = self.settings.redact(message), self.settings.redact(outputs)
        ctx.log(message, "ERROR")
        ctx.flush_logs()
        try:
            with self.store.tx() as c:
                run_status = self.store.get_run_status(c, step.run_id, lock=True)
                self.store.set_step_status(c, step, StepStatus.FAILED, outputs=outputs, error=message,
                                           finished_at=timestamp())
                if run_status in (RunStatus.QUEUED, RunStatus.RUNNING):
                    self.store.set_run_status(c, step.run_id, run_status, run_target)
                self.store.skip_pending(c, step.run_id)
        except IllegalTransition as exc:
            ctx.log(f"result discarded: {exc}", "WARNING")

    # ---- dead workers -------------------------------------------------------------------------------------
    def reap_when_steady(self) -> int:
        """Reap stale steps, but only once this runner has reached the database for a whole stale window.

        While the database was away nobody could heartbeat; judging right after it returns would interrupt
        every live step in the system.
        """
        if self.outage.steady_for() < self.settings.stale_seconds:
            return 0
        return self.reap_stale()

    def reap_stale(self) -> int:
        """Interrupt every run with a step whose worker stopped heartbeating; return how many runs.

        The whole run is interrupted in one transaction (its running and queued steps with it), so a retry
        never finds a sibling still `running`. Runs where this runner has a live step are left alone: it
        finishes that step first, and the run is reaped on a later tick.
        """
        reaped = 0
        for run_id in sorted({s.run_id for s in self.store.stale_steps(self.settings.stale_seconds)}):
            if any(ctx.run.id == run_id for ctx in list(self._live.values())):
                continue
            try:
                with self.store.tx() as c:
                    stale = self.store.stale_steps(self.settings.stale_seconds, conn=c, run_id=run_id)
                    if not stale:  # it heartbeated or finished after all
                        continue
                    dead = stale[0]
                    msg = (f"worker {dead.worker} stopped heartbeating {dead.silent_for:.0f} s ago "
                           f"(its process died?); retry the run to re-run it")
                    hit = self.store.interrupt_run(c, run_id, msg)
            except IllegalTransition:
                continue  # another runner reaped it first
            for step in hit:
                self.store.add_log(run_id, step.name, step.attempt, "ERROR",
                                   f"interrupted: {msg} (noticed by {self.worker_id})")
            reaped += 1
        return reaped
