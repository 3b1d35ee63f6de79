"""The facade the dashboard and the CLI call. Every action checks its input, then changes state atomically.

A refused action raises (BadInput, IllegalTransition or Refused) before anything is written, so it changes
nothing; the message says why and what to do instead.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import time
from functools import cached_property

import sqlalchemy as sa

from engine import failures, pipeline
from engine.config import CHAMPION, LIMITS, MODEL_NAME, Settings, mask_url
from engine.errors import BadInput, NotFound, Refused
from engine.guard import Guard
from engine.ml.claims import CATEGORICAL, CATEGORIES, FEATURES, NUMERIC, parse_window
from engine.runner import Runner, prepare_mlflow_backend, run_feed
from engine.states import RETRYABLE, RunStatus, StepStatus
from engine.store import Store, Undo

log = logging.getLogger(__name__)

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


def claim_errors(claim: dict, names: dict[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """(clean row, {field: message}) for one raw claim; every bad field gets its own message saying the fix.
    `names` says each field as the caller shows it (a form's labels); default the field names."""
    name = {**{f: f for f in FEATURES}, **(names or {})}
    row, errors = {}, {}
    for col in CATEGORICAL:
        value = claim.get(col)
        if value is None or value == "":
            errors[col] = f"{name[col]} is missing; choose one of: {', '.join(CATEGORIES[col])}"
        elif value not in CATEGORIES[col]:
            errors[col] = (f"{name[col]} {_shown(value)} is not a known category; use one of: "
                           f"{', '.join(CATEGORIES[col])}")
        else:
            row[col] = value
    for col in NUMERIC:
        value = claim.get(col)
        if value is None or value == "":
            errors[col] = f"{name[col]} is missing; give a number like 1234.5"
        elif (problem := _number_problem(value)) is not None:
            errors[col] = f"{name[col]} {_shown(value)} {problem}"
        else:
            row[col] = float(value)
    billed, allowed, age = name["billed_amount"], name["allowed_amount"], name["patient_age"]
    if "billed_amount" in row and row["billed_amount"] <= 0:
        errors["billed_amount"] = f"{billed} {row.pop('billed_amount'):g} must be more than 0"
    if "allowed_amount" in row and row["allowed_amount"] <= 0:
        errors["allowed_amount"] = f"{allowed} {row.pop('allowed_amount'):g} must be more than 0"
    if "allowed_amount" in row and "billed_amount" in row and row["allowed_amount"] > row["billed_amount"]:
        errors["allowed_amount"] = (f"{allowed} {row['allowed_amount']:g} is more than {billed} "
                                    f"{row['billed_amount']:g}; the payer cannot allow more than was billed")
    if "patient_age" in row and not 0 <= row["patient_age"] <= 110:
        errors["patient_age"] = f"{age} {row['patient_age']:g} is outside 0..110"
    return row, errors


# The forest reads its input as float32: beyond this, scikit-learn raises deep inside prediction instead.
FLOAT32_MAX = 3.4028234663852886e38
# A number as typed: ASCII digits with an optional point and exponent. float() alone also takes "nan", "1_000",
# other scripts' digits and thousands of characters.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
MAX_NUMBER_CHARS = 40


def _number_problem(value) -> str | None:
    """What is wrong with `value` as one of the model's numbers (with the fix), or None when it is fine."""
    plain = "is not a number; give it like 1234.5 (digits, no currency signs)"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return plain
    if isinstance(value, str) and (len(value) > MAX_NUMBER_CHARS or not _NUMBER.fullmatch(value.strip())):
        return plain
    try:
        number = float(value)
    except OverflowError:  # an int too large for any float
        number = math.inf
    if not math.isfinite(number):  # the forest refuses inf and nan: say so as bad input
        return "is not a finite number; give it like 1234.5"
    if abs(number) > FLOAT32_MAX:
        return f"is beyond what the model can read (at most {FLOAT32_MAX:.4g}); give it like 1234.5"
    return None


def _shown(value, limit: int = 40) -> str:
    """`value` quoted for a message, cut to `limit` characters (a message never echoes a whole pasted page)."""
    try:
        text = repr(value)
    except ValueError:  # an int of more digits than Python will print
        return f"(a whole number of about {int(value.bit_length() * 0.30103):,} digits)"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


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
        self.guard = Guard(self.store, self.settings)

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
        """Start the background runner, the stream's producer job and retention (at once, then every interval)."""
        self.runner.start()
        self.runner.add_interval_job(self.stream.tick, self.settings.stream_tick_seconds, "lab-stream")
        self.runner.add_interval_job(self._tidy_quietly, self.settings.retention_seconds, "lab-retention")
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
               detail: dict | None = None, visitor: str | None = None, delivery: tuple[str, str] | None = None) -> int:
        """Start CI for a new commit (or a drift-triggered retrain, with its data shift); return the run id.

        `trigger` says where the run came from (cli, dashboard, api, webhook, autopilot, drift; "commit" records
        none) and `detail` what the dashboard shows of it. `visitor` names who commits from the dashboard or a
        webhook's address (the demo paces each visitor). `delivery` is a webhook's (delivery id, payload digest),
        stored with the run so that a redelivery finds it (IntegrityError when one was stored already)."""
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
            self.guard.capacity(c)
            self.guard.pace(c, visitor, "commit", self.settings.demo_commit_interval)
            run_id = self.store.create_run(sha, message or "fake commit", author, seed, window, modes, conn=c)
            if trigger != "commit":
                self.store.add_origin(c, run_id, trigger, shift, detail)
            if delivery is not None:
                self.store.add_delivery(c, *delivery, run_id)
            self.store.add_audit(c, author or (trigger if trigger != "commit" else "cli"), "commit", run_id, message,
                                 {"sha": sha, "seed": seed, "window": window, "failure_modes": modes,
                                  "trigger": trigger, "shift": shift})
        return run_id

    def open_drift_run(self) -> int | None:
        """The drift-triggered run still in progress (at most one is open at a time), or None."""
        return self.store.open_run_with_trigger("drift", OPEN_STATUSES)

    def delivered(self, delivery: str, digest: str) -> int | None:
        """The run a webhook delivery (or a delivery of the same payload) started, or None."""
        return self.store.delivery_run(delivery, digest)

    def _locked_run(self, conn, run_id) -> dict:
        run = self.store.lock_run(conn, check_run_id(run_id))
        if run is None:
            raise NotFound(f"there is no run {run_id}; list runs with: python -m engine runs")
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
            self.guard.capacity(c)
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
            if approved:  # approving queues the deployment steps
                self.guard.capacity(c)
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

    def rollback(self, by: str, reason: str = "", visitor: str | None = None, operator_key: str | None = None) -> dict:
        """Move champion back to the version it held before the current promotion; return {from, to}."""
        by = _need_name(by, "rollback")
        reason = check_text(reason, "reason", "--reason")
        self.guard.operator(visitor, operator_key, "a rollback")
        current, target = self.rollback_target()
        if target is None:
            raise Refused(current)
        self.store.move_alias(self.tracking, CHAMPION, target, None, by, reason, action="rollback",
                              expect_current=current,
                              tags={"rolled_back_to_by": by, "rollback_reason": reason})
        return {"from_version": current, "to_version": target, "model": MODEL_NAME}

    def rollback_target(self) -> tuple:
        """(current champion, version a rollback would restore); target None and a reason when there is none."""
        line = champion_line(self.champion_history())[0]
        stack = [row["version"] for row in line]
        if not stack:
            return "there is no champion yet: promote a model first", None
        if len(stack) == 1:
            return (f"version {stack[-1]} is the only model that has been champion on this line; there is "
                    "nothing earlier to roll back to (a rollback needs two promotions)"), None
        earlier = line[-2].get("run_id")
        if earlier is not None and self.store.get_run(earlier) is None:  # pruned: its model is gone too
            return (f"version {stack[-2]}, the champion before version {stack[-1]}, was pruned with its run (a "
                    f"prune keeps the newest {self.settings.keep_champions} champions, LAB_KEEP_CHAMPIONS); there "
                    "is nothing left to roll back to"), None
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
            self.guard.capacity(c)
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

    def set_failure_mode(self, name: str, enabled: bool, by: str = "", visitor: str | None = None,
                         operator_key: str | None = None) -> None:
        """Turn a failure mode on or off (applies to runs committed or retried from now on)."""
        by = _check_by(by)
        try:
            failures.check_name(name)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        self.guard.operator(visitor, operator_key, "turning a failure mode on or off")
        with self.store.tx() as c:
            self.guard.pace(c, visitor, "failure toggle", self.settings.demo_toggle_interval)
            self.store.set_failure_mode(name, enabled, by or "cli", conn=c)

    def failure_modes(self) -> list[dict]:
        """Every mode with its description and whether it is on."""
        on = self.store.failure_modes()
        return [{"name": m.name, "title": m.title, "breaks": m.breaks, "caught_by": m.caught_by,
                 "enabled": bool(on.get(m.name))} for m in failures.MODES]

    def reset(self, by: str, visitor: str | None = None, operator_key: str | None = None) -> dict:
        """Operator: bring the lab back to a clean state (no runs, audit, toggles, aliases or MLflow records)."""
        by = _need_name(by, "reset")
        self.guard.operator(visitor, operator_key, "a reset")
        from engine import purge  # imports MLflow: only what touches it pays for that
        removed = self.store.reset(by)
        with contextlib.suppress(Exception):  # there may be none yet; it takes its versions and aliases along
            self.tracking.client.delete_registered_model(MODEL_NAME)
        removed.update(purge.forget(self.tracking, live_runs=set()))
        removed["run_folders"] = purge.forget_run_dirs(self.settings.data_dir, live_runs=set())
        return removed

    def prune(self, keep: int) -> dict:
        """Keep the newest `keep` runs and every run a model the lab still needs came from; remove the rest for
        real: store rows, MLflow runs, registered versions, logged models, their artifacts and the run folders."""
        from engine import purge
        protected = self.protected_runs()
        pruned = self.store.prune_runs(keep, protected["runs"])
        live = self.store.run_ids()
        gone = purge.forget(self.tracking, live, protected["versions"])
        return {"runs": len(pruned), **gone, "run_folders": purge.forget_run_dirs(self.settings.data_dir, live)}

    def protected_runs(self) -> dict[str, set[int]]:
        """{"versions", "runs"} a prune must keep: the newest LAB_KEEP_CHAMPIONS versions on the champion line (what
        rollbacks restore, and the monitor's reference after them), every alias holder, and their pipeline runs."""
        from engine import purge
        line = champion_line(self.champion_history())[0][-self.settings.keep_champions:]
        versions = {row["version"] for row in line} | purge.alias_versions(self.tracking)
        runs = {row["run_id"] for row in line if row.get("run_id")}
        runs |= {r for r in (purge.pipeline_run_of(self.tracking, v) for v in versions) if r is not None}
        return {"versions": versions, "runs": runs}

    def tidy(self) -> dict:
        """Retention in every mode (snapshots, logs, audit rows, visitor events, autopilot sessions); a demo also
        prunes runs to its newest LAB_DEMO_KEEP_RUNS. Returns what went, by kind."""
        from engine import autopilot
        s = self.settings
        removed = self.store.apply_retention(s.keep_snapshots, s.keep_log_runs, s.keep_audit)
        removed["autopilot_sessions"] = autopilot.prune_sessions(self, autopilot.KEEP_SESSIONS)
        if s.demo:
            removed.update(self.prune(s.demo_keep_runs))
        return removed

    def _tidy_quietly(self) -> None:
        """The retention job: a failure is logged once per pass and retried at the next one."""
        try:
            removed = self.tidy()
        except Exception as exc:  # MLflow or the database away: nothing is lost by trying again later
            log.warning("retention: %s: %s", type(exc).__name__, self.settings.redact(str(exc))[:300])
            return
        if any(removed.values()):
            log.info("retention removed %s", {k: v for k, v in removed.items() if v})

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
            raise NotFound(f"there is no run {run_id}; list runs with: python -m engine runs")
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
