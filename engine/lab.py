"""The facade the dashboard and the CLI call. Every action checks its input, then changes state atomically.

A refused action raises (BadInput, IllegalTransition or Refused) before anything is written, so it changes
nothing; the message says why and what to do instead.
"""
from __future__ import annotations

import contextlib
import math
import os
import re
import secrets
import threading
import time
from functools import cached_property

import sqlalchemy as sa

from engine import failures, pipeline
from engine.config import CHAMPION, LIMITS, MODEL_NAME, Settings, mask_url
from engine.errors import BadInput, Refused
from engine.ml.claims import CATEGORICAL, CATEGORIES, FEATURES, NUMERIC, parse_window
from engine.runner import Runner, prepare_mlflow_backend, run_feed
from engine.states import RETRYABLE, RunStatus, StepStatus
from engine.store import Store, Undo

# A run that can still reach production: a drift-triggered retrain in one of these blocks another.
OPEN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL)

SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
MAX_RUN_ID = 2**63 - 1
# Where a retry may start: the first step of the run that did not succeed.
_NOT_REACHED = (StepStatus.FAILED.value, StepStatus.INTERRUPTED.value, StepStatus.SKIPPED.value)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_text(value: str | None, field: str, flag: str, multiline: bool = True) -> str:
    """`value` stripped, or BadInput naming `flag` when it is too long or holds control characters."""
    value = (value or "").strip()
    limit = LIMITS[field]
    if len(value) > limit:
        raise BadInput(f"{flag} is {len(value):,} characters long; the limit is {limit:,}: shorten it")
    bad = _CONTROL.search(value) or (None if multiline else re.search(r"[\r\n\t]", value))
    if bad:
        raise BadInput(f"{flag} contains the control character {bad.group()!r}; use plain text"
                       + ("" if multiline else " on one line"))
    return value


def _check_by(by: str | None) -> str:
    """The name of who acts (--by), checked like every free text; may be empty."""
    return check_text(by, "by", "--by (your name)", multiline=False)


def _need_name(by: str, what: str) -> str:
    by = _check_by(by)
    if not by:
        raise BadInput(f"{what} needs the name of who does it: pass --by NAME (dashboard: fill in 'Your name')")
    return by


def check_run_id(run_id) -> int:
    """A run id as int, or BadInput (ids are whole numbers from 1)."""
    try:
        value = int(run_id)
    except (TypeError, ValueError):
        raise BadInput(f"run id {run_id!r} is not a whole number; list runs with: python -m engine runs") from None
    if not 1 <= value <= MAX_RUN_ID:
        raise BadInput(f"there is no run {value}: run ids are whole numbers from 1; "
                       "list runs with: python -m engine runs")
    return value


def claim_errors(claim: dict) -> tuple[dict, dict[str, str]]:
    """(clean row, {field: message}) for one raw claim; every bad field gets its own message saying the fix."""
    row, errors = {}, {}
    for col in CATEGORICAL:
        value = claim.get(col)
        if value is None or value == "":
            errors[col] = f"{col} is missing; choose one of: {', '.join(CATEGORIES[col])}"
        elif value not in CATEGORIES[col]:
            errors[col] = f"{col} {value!r} is not a known category; use one of: {', '.join(CATEGORIES[col])}"
        else:
            row[col] = value
    for col in NUMERIC:
        value = claim.get(col)
        if value is None or value == "":
            errors[col] = f"{col} is missing; give a number like 1234.5"
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            errors[col] = f"{col} {value!r} is not a number; give it like 1234.5 (no currency signs)"
            continue
        if isinstance(value, bool) or not math.isfinite(number):  # the forest refuses inf: say so as bad input
            errors[col] = f"{col} {value!r} is not a finite number; give it like 1234.5"
        else:
            row[col] = number
    if "billed_amount" in row and row["billed_amount"] <= 0:
        errors["billed_amount"] = f"billed_amount {row.pop('billed_amount'):g} must be more than 0"
    if "allowed_amount" in row and row["allowed_amount"] <= 0:
        errors["allowed_amount"] = f"allowed_amount {row.pop('allowed_amount'):g} must be more than 0"
    if "allowed_amount" in row and "billed_amount" in row and row["allowed_amount"] > row["billed_amount"]:
        errors["allowed_amount"] = (f"allowed_amount {row['allowed_amount']:g} is more than billed_amount "
                                    f"{row['billed_amount']:g}; the payer cannot allow more than was billed")
    if "patient_age" in row and not 0 <= row["patient_age"] <= 110:
        errors["patient_age"] = f"patient_age {row['patient_age']:g} is outside 0..110"
    return row, errors


def claim_frame(claim: dict):
    """One claim dict as a one-row frame of model features; BadInput naming every wrong field."""
    import pandas as pd
    if not isinstance(claim, dict):
        raise BadInput(f"a claim is a JSON object with the fields {', '.join(FEATURES)}")
    row, errors = claim_errors(claim)
    if errors:
        raise BadInput("; ".join(errors.values()))
    return pd.DataFrame([row])[list(FEATURES)]


def champion_line(history: list[dict]) -> tuple[list[dict], dict[int, dict]]:
    """Replay the champion alias history (oldest first): a promotion pushes, a rollback pops what it undoes.

    Returns the rows still on the line (the last one holds the alias now) and, by run id, the rollback row (who,
    when, why) that undid each popped promotion. Rollback and every page that says "rolled back" read this."""
    stack: list[dict] = []
    undone: dict[int, dict] = {}
    for row in history:
        if row["action"] != "rollback":
            stack.append(row)
        elif stack:
            popped = stack.pop()
            if popped.get("run_id") is not None:
                undone[popped["run_id"]] = row
    return stack, undone


class Lab:
    """One lab: a state store, a runner, and MLflow, configured from Settings."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._check_data_dir()
        self.store = self._open_store()
        self.runner = Runner(self.store, self.settings)
        self._paced: dict[tuple[str, str], float] = {}  # (browser session, action) -> last time, demo mode
        self._pace_lock = threading.Lock()

    def _check_data_dir(self) -> None:
        path = self.settings.data_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise BadInput(f"the data directory {path} is not usable ({exc.strerror or exc}); set LAB_DATA_DIR to "
                           "a directory this user can write, or fix its permissions") from None

    def _open_store(self) -> Store:
        """The state store; BadInput naming DATABASE_URL or the file when it cannot be used as given."""
        url = self.settings.database_url
        try:
            return Store(url, self.settings.db_connect_timeout, self.settings.db_statement_timeout)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise BadInput(f"DATABASE_URL {mask_url(url)!r} is not a usable database URL ({exc}); use "
                           "sqlite:///path/to/lab.db or postgresql+psycopg2://user:password@host:5432/dbname") from None
        except sa.exc.OperationalError as exc:
            text = str(exc.orig)
            if not url.startswith("sqlite") or not ("readonly" in text or "unable to open" in text):
                raise  # a server that does not answer, or a lock held too long: exit 1 (see __main__)
            raise BadInput(f"the state database {url.split(':///', 1)[-1]} cannot be opened for writing "
                           f"({str(exc.orig).strip()}); fix its permissions, or set LAB_DATA_DIR or DATABASE_URL "
                           "to a writable place") from None

    @cached_property
    def tracking(self):
        """MLflow as configured (imported lazily: it is slow to import)."""
        from engine.tracking import Tracking
        prepare_mlflow_backend(self.settings.tracking_uri)
        return Tracking(self.settings.tracking_uri, self.settings.artifact_root)

    @cached_property
    def stream(self):
        """The live claims stream (engine/stream.py)."""
        from engine.stream import Stream
        return Stream(self)

    def start(self) -> "Lab":
        """Start the background runner and the stream's producer job (a demo first prunes old runs)."""
        if self.settings.demo:
            self.prune(self.settings.demo_keep_runs)
        self.runner.start()
        self.runner.add_interval_job(self.stream.tick, self.settings.stream_tick_seconds, "lab-stream")
        return self

    def close(self) -> None:
        """Stop the runner, give up the stream's lease and release connections."""
        self.runner.stop()
        if "stream" in self.__dict__:
            self.stream.release()
        self.store.dispose()

    def shutdown(self, grace: float) -> list[str]:
        """A worker told to stop (SIGTERM): steps get `grace` s to finish, the rest go back to the queue, the
        stream's lease is given up; returns the released steps."""
        released = self.runner.shutdown(grace)
        if "stream" in self.__dict__:
            self.stream.release()
        self.store.dispose()
        return released

    # ---- actions ------------------------------------------------------------------------------------------
    def commit(self, sha: str | None = None, message: str = "", seed: int | None = None,
               window: str | None = None, author: str = "", trigger: str = "commit", shift: dict | None = None,
               detail: dict | None = None, session: str | None = None) -> int:
        """Start CI for a new commit (or a drift-triggered retrain, with its data shift); return the run id.

        `session` names the browser session (demo pacing)."""
        params = pipeline.spec("commit_received").params()
        message = check_text(message, "message", "--message")
        author = check_text(author, "author", "--author", multiline=False)
        if sha is not None and not SHA_RE.match(sha.strip()):
            raise BadInput(f"--sha {sha[:80]!r} is not a git SHA: give 4 to 64 hex digits, e.g. $(git rev-parse HEAD)")
        if seed is not None and not (0 <= int(seed) < 2**31):
            raise BadInput(f"--seed {seed} is out of range: use a whole number from 0 to 2147483647")
        window = window or params["default_window"]
        try:
            if len(window) > 40:
                raise ValueError(f"--window is {len(window)} characters long; give it as YYYY-MM-DD..YYYY-MM-DD")
            parse_window(window)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        sha = (sha or secrets.token_hex(params["fake_sha_length"] // 2)).strip().lower()
        seed = int(seed) if seed is not None else secrets.randbelow(10_000)
        modes = [name for name, on in self.store.failure_modes().items() if on]
        with self.store.tx() as c:  # the run, its origin and its audit row commit together or not at all
            self._demo_guard_commit(c, session)
            run_id = self.store.create_run(sha, message or "fake commit", author, seed, window, modes, conn=c)
            if trigger != "commit":
                self.store.add_origin(c, run_id, trigger, shift, detail)
            self.store.add_audit(c, author or "cli", "commit", run_id, message,
                                 {"sha": sha, "seed": seed, "window": window, "failure_modes": modes,
                                  "trigger": trigger, "shift": shift})
        return run_id

    def open_drift_run(self) -> int | None:
        """The drift-triggered run still in progress (at most one is open at a time), or None."""
        return self.store.open_run_with_trigger("drift", OPEN_STATUSES)

    def _locked_run(self, conn, run_id) -> dict:
        run = self.store.lock_run(conn, check_run_id(run_id))
        if run is None:
            raise BadInput(f"there is no run {run_id}; list runs with: python -m engine runs")
        return run

    def _check_allowed(self, action: str, run: dict) -> None:
        reason = self._why_not(action, run)
        if reason:
            raise Refused(reason)

    def continue_run(self, run_id: int, by: str = "") -> None:
        """Start CD for a run that rests in ci_complete."""
        by = _check_by(by)
        with self.store.tx() as c:
            run = self._locked_run(c, run_id)
            self._check_allowed("continue", run)
            self.store.set_run_status(c, run["id"], run["status"], RunStatus.QUEUED, finished_at=None)
            self.store.queue_step(c, run["id"], "cd_full_train")
            self.store.add_audit(c, by or "cli", "continue", run["id"])

    def approve(self, run_id: int, by: str, comment: str = "") -> None:
        """Pass the manual gate: the run goes on to deployment."""
        self._decide(run_id, _need_name(by, "approve"), check_text(comment, "comment", "--comment"), approved=True)

    def reject(self, run_id: int, by: str, comment: str = "") -> None:
        """Stop the run at the manual gate."""
        self._decide(run_id, _need_name(by, "reject"), check_text(comment, "comment", "--comment"), approved=False)

    def _decide(self, run_id: int, by: str, comment: str, approved: bool) -> None:
        """Record the decision and tag the model version, all or nothing (the tags are undone on failure)."""
        decision = {"decision": "approved" if approved else "rejected", "by": by, "comment": comment,
                    "at": time.time()}
        with Undo() as undo, self.store.tx() as c:
            run = self._locked_run(c, run_id)
            run_id = run["id"]
            self._check_allowed("approve" if approved else "reject", run)
            gate = self.store.step(run_id, "manual_approval", c)
            outputs = {**(gate["outputs"] or {}), **decision}
            if approved:
                self.store.set_run_status(c, run_id, run["status"], RunStatus.QUEUED, finished_at=None)
                self.store.set_step_status(c, gate, StepStatus.SUCCEEDED, outputs=outputs)
                self.store.queue_step(c, run_id, "deploy_staging")
            else:
                self.store.set_run_status(c, run_id, run["status"], RunStatus.REJECTED)
                self.store.set_step_status(c, gate, StepStatus.FAILED, outputs=outputs,
                                           error=f"rejected by {by}" + (f": {comment}" if comment else ""))
                self.store.skip_pending(c, run_id)
            self.store.add_audit(c, by, "approve" if approved else "reject", run_id, comment)
            version = (self.store.step(run_id, "cd_full_train", c)["outputs"] or {}).get("model_version")
            if version:
                undo.tag_version(self.tracking, version, {
                    "approval": decision["decision"], "approval_by": by, "approval_comment": comment,
                    "approval_pipeline_run_id": str(run_id)})

    def rollback(self, by: str, reason: str = "") -> dict:
        """Move champion back to the version it held before the current promotion; return {from, to}."""
        by = _need_name(by, "rollback")
        reason = check_text(reason, "reason", "--reason")
        current, target = self.rollback_target()
        if target is None:
            raise Refused(current)
        self.store.move_alias(self.tracking, CHAMPION, target, None, by, reason, action="rollback",
                              expect_current=current,
                              tags={"rolled_back_to_by": by, "rollback_reason": reason})
        return {"from_version": current, "to_version": target, "model": MODEL_NAME}

    def rollback_target(self) -> tuple:
        """(current champion, version a rollback would restore); target None and a reason when there is none."""
        stack = [row["version"] for row in champion_line(self.champion_history())[0]]
        if not stack:
            return "there is no champion yet: promote a model first", None
        if len(stack) == 1:
            return (f"version {stack[-1]} is the only model that has been champion on this line; there is "
                    "nothing earlier to roll back to (a rollback needs two promotions)"), None
        return stack[-1], stack[-2]

    def retry(self, run_id: int, from_step: str | None = None, by: str = "") -> str:
        """Re-run a failed, held or interrupted run from a step (default: the first one that did not succeed).

        Reads and writes in one transaction with the run locked, and always leaves a claimable step queued, or
        refuses saying why.
        """
        by = _check_by(by)
        if from_step is not None:
            try:
                pipeline.spec(from_step)
            except ValueError as exc:  # an unknown --from step is bad input (exit 2), not an unexpected error
                raise BadInput(str(exc)) from None
        modes = [name for name, on in self.store.failure_modes().items() if on]
        with self.store.tx() as c:
            run = self._locked_run(c, run_id)
            run_id = run["id"]
            self._check_allowed("retry", run)
            steps = self.store.steps_of(run_id, c)
            running = [s for s in steps if s["status"] == StepStatus.RUNNING.value]
            if running:
                s = running[0]
                raise Refused(f"step {s['name']} of run {run_id} is still running on {s['worker']}; wait until it "
                              f"finishes, or until it is marked interrupted ({self.settings.stale_seconds:g} s "
                              "without a heartbeat), then retry")
            stopped = next((s for s in steps if s["status"] in _NOT_REACHED), None)
            if stopped is None:
                raise Refused(f"run {run_id} has no failed, interrupted or skipped step to re-run")
            start = from_step or stopped["name"]
            pos = pipeline.NAMES.index(start)
            if pos > stopped["position"]:
                raise BadInput(f"cannot retry from {start}: {stopped['name']} (earlier) did not succeed; "
                               f"retry from {stopped['name']} or an earlier step")
            for s in steps[pos:]:
                if s["status"] != StepStatus.PENDING.value:
                    self.store.set_step_status(c, s, StepStatus.PENDING, error=None)
            statuses = {s["name"]: (StepStatus.PENDING.value if s["position"] >= pos else s["status"])
                        for s in steps}
            stage = pipeline.spec(start).stage
            ready = pipeline.ready(stage, statuses)
            if start not in ready:
                missing = [n for n in pipeline.spec(start).needs if statuses[n] != StepStatus.SUCCEEDED.value]
                raise BadInput(f"cannot retry from {start}: it needs {', '.join(missing)} to have succeeded; "
                               f"retry from {missing[0]}")
            self.store.set_run_status(c, run_id, run["status"], RunStatus.QUEUED, finished_at=None,
                                      failure_modes=modes)
            for name in ready:
                self.store.queue_step(c, run_id, name)
            self.store.add_audit(c, by or "cli", "retry", run_id, f"from {start}", {"failure_modes": modes})
        return start

    def set_failure_mode(self, name: str, enabled: bool, by: str = "", session: str | None = None) -> None:
        """Turn a failure mode on or off (applies to runs committed or retried from now on)."""
        by = _check_by(by)
        try:
            failures.check_name(name)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        self._pace(session, "failure toggle", self.settings.demo_toggle_interval)
        self.store.set_failure_mode(name, enabled, by or "cli")

    def failure_modes(self) -> list[dict]:
        """Every mode with its description and whether it is on."""
        on = self.store.failure_modes()
        return [{"name": m.name, "title": m.title, "breaks": m.breaks, "caught_by": m.caught_by,
                 "enabled": bool(on.get(m.name))} for m in failures.MODES]

    # ---- the public demo (LAB_DEMO=1) --------------------------------------------------------------------
    def _pace(self, session: str | None, action: str, interval: float) -> None:
        """Demo mode: at most one `action` per `interval` seconds per browser session (Refused saying so)."""
        if not self.settings.demo or session is None:
            return
        with self._pace_lock:
            now = time.monotonic()
            last = self._paced.get((session, action))
            if last is not None and now - last < interval:
                raise Refused(f"this demo allows one {action} every {interval:g} s per visitor; "
                              f"try again in {interval - (now - last):.0f} s")
            self._paced[(session, action)] = now
            if len(self._paced) > 10_000:  # strangers come and go: forget sessions quiet for an hour
                self._paced = {k: t for k, t in self._paced.items() if now - t < 3600}

    def _demo_guard_commit(self, conn, session: str | None) -> None:
        if not self.settings.demo:
            return
        active = self.store.count_active_runs(conn)
        limit = self.settings.demo_max_active_runs
        if active >= limit:
            raise Refused(f"this demo runs at most {limit} queued or running pipeline runs at once and {active} "
                          "are in progress; wait for one to finish")
        self._pace(session, "commit", self.settings.demo_commit_interval)

    def reset(self, by: str) -> dict:
        """Operator: bring the lab back to a clean state (no runs, audit, toggles, aliases or MLflow runs)."""
        by = _need_name(by, "reset")
        removed = self.store.reset(by)
        removed["mlflow_runs"] = self._forget_mlflow(lambda _pid: True, registered_model=True)
        return removed

    def prune(self, keep: int) -> dict:
        """Keep the newest `keep` runs; delete older ones with their steps, logs, audit rows and MLflow runs."""
        pruned = self.store.prune_runs(keep)
        if not pruned:
            return {"runs": 0, "mlflow_runs": 0}
        gone = {str(r) for r in pruned}
        return {"runs": len(pruned), "mlflow_runs": self._forget_mlflow(lambda pid: pid in gone)}

    def _forget_mlflow(self, doomed, registered_model: bool = False) -> int:
        """Delete MLflow runs whose pipeline_run_id tag `doomed` accepts (and the registered model); count."""
        client, deleted, token = self.tracking.client, 0, None
        while True:
            page = client.search_runs([self.tracking.experiment_id()], max_results=500, page_token=token)
            for r in page:
                if doomed(r.data.tags.get("pipeline_run_id", "")):
                    client.delete_run(r.info.run_id)
                    deleted += 1
            token = page.token
            if not token:
                break
        if registered_model:
            with contextlib.suppress(Exception):  # there may be none yet
                client.delete_registered_model(MODEL_NAME)
        return deleted

    def score(self, claim: dict, explain: bool = False) -> dict:
        """The champion's decision for one raw claim, through the pyfunc model MLflow serves.

        With explain, the claim's own exact SHAP contributions toward P(Approved): base + their sum = p.
        """
        frame = claim_frame(claim)
        version, model = self.tracking.load_alias(CHAMPION)
        if model is None:
            raise Refused("there is no champion yet: promote a model first (commit, continue, approve)")
        served = model.predict(frame).iloc[0]
        out = {"model": MODEL_NAME, "version": version, "p_approved": float(served["p_approved"]),
               "threshold": model.threshold, "decision": str(served["decision"]),
               "claim": frame.iloc[0].to_dict()}
        if explain:
            from engine.ml.model import explain as shap_explain
            shap = shap_explain(model.pipeline, frame, sample_size=1)
            out["base_value"] = shap.base_value
            out["contributions"] = [{"feature": f, "value": out["claim"][f], "shap": float(v)}
                                    for f, v in zip(shap.encoded.columns, shap.values[0])]
        return out

    # ---- reads --------------------------------------------------------------------------------------------
    def _run(self, run_id: int) -> dict:
        run = self.store.get_run(check_run_id(run_id))
        if run is None:
            raise BadInput(f"there is no run {run_id}; list runs with: python -m engine runs")
        return run

    def run(self, run_id: int) -> dict:
        """A run with its steps (outputs, errors, timings)."""
        run = self._run(run_id)
        run["steps"] = self.store.steps_of(run["id"])
        return run

    def runs(self, limit: int = 50, offset: int = 0, statuses=None) -> list[dict]:
        """Newest runs first."""
        if not 1 <= int(limit) <= 10_000:
            raise BadInput(f"--limit {limit} is out of range: use 1 to 10000")
        return self.store.list_runs(int(limit), int(offset), statuses)

    def steps_for_runs(self, run_ids: list[int]) -> dict[int, list[dict]]:
        """Steps of many runs at once (one query), by run id."""
        return self.store.steps_of_runs(run_ids)

    def logs(self, run_id: int, step: str | None = None, after_id: int = 0, limit: int = 2000) -> list[dict]:
        """Log lines of a run or one step."""
        return self.store.logs_of(run_id, step, after_id, limit)

    def audit(self, limit: int = 500, run_id: int | None = None) -> list[dict]:
        """Who did what, newest first."""
        return self.store.audit_trail(limit, run_id)

    def claims_sample(self, run_id: int, rows: int = 200):
        """The first `rows` claims of a run's data feed, exactly as its steps see them."""
        return run_feed(self._run(run_id), rows)

    def workers(self) -> list[dict]:
        """Registered runners (dashboard processes and `python -m engine worker`), each with `alive`."""
        return self.store.list_workers(self.settings.stale_seconds)

    def champion_history(self) -> list[dict]:
        """Every holder of the champion alias: version, from, until, who moved it and why."""
        return self.store.alias_history_of(CHAMPION)

    def latest_change(self) -> tuple:
        """A cheap stamp that changes whenever a run is created or anyone acts on the lab (see Store)."""
        return self.store.latest_change()

    def allowed_actions(self, run: dict | None) -> dict[str, str | None]:
        """For each header action on `run`: None when allowed, else the sentence saying why not."""
        return {action: self._why_not(action, run) for action in ("continue", "approve", "reject", "retry",
                                                                   "rollback")}

    def _why_not(self, action: str, run: dict | None) -> str | None:
        status = RunStatus(run["status"]) if run else None
        name = f"run {run['id']} is {status.value}" if run else "no run is selected"
        if action == "rollback":
            why_not, rollback_to = self.rollback_target()
            return None if rollback_to is not None else why_not
        if action == "continue":
            return None if status == RunStatus.CI_COMPLETE else f"Continue to CD needs a run in ci_complete; {name}"
        if action in ("approve", "reject"):
            return None if status == RunStatus.AWAITING_APPROVAL else \
                f"{action.capitalize()} needs a run in awaiting_approval; {name}"
        if action == "retry":
            return None if status in RETRYABLE else f"Retry is for failed, held or interrupted runs; {name}"
        raise ValueError(f"unknown action {action!r}")
