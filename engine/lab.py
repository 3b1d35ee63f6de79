"""The facade the dashboard and the CLI call. Every action checks its input, then changes state atomically.

A refused action raises (BadInput, IllegalTransition or Refused) before anything is written, so it changes
nothing; the message says why and what to do instead.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import numbers
import os
import re
import secrets
import time
from functools import cached_property

import sqlalchemy as sa

from engine import failures, pipeline
from engine.config import CHALLENGER, CHAMPION, LIMITS, MODEL_NAME, STAGING, Settings, mask_url
from engine.errors import BadInput, NotFound, Refused
from engine.feeds import run_feed
from engine.guard import Guard
from engine.ml.claims import CATEGORIES, FEATURES, NUMERIC, parse_window
from engine.ml.contract import MAX_NUMBER_CHARS, claim_problems, shown  # noqa: F401 (ui/score.py reads it)
from engine.records import AuditEntry, Run, Step
from engine.registry import Undo, move_alias
from engine.runner import Runner
from engine.states import RETRYABLE, RunStatus, StepStatus
from engine.store import Store
from engine.tracking import prepare_mlflow_backend

log = logging.getLogger(__name__)

# A run that can still reach production: a drift-triggered retrain in one of these blocks another.
OPEN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL)
# Runs that retrain on production data: the closed loop's ("drift") and an operator's ("production").
LOOP_TRIGGERS = ("drift", "production")

SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")
_RUN_ID = re.compile(r"\s*[+-]?[0-9]+\s*")
MAX_RUN_ID = 2**63 - 1
# Where a retry may start: the first step of the run that did not succeed.
_NOT_REACHED = (StepStatus.FAILED, StepStatus.INTERRUPTED, StepStatus.SKIPPED)
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
    """A run id as int, or BadInput (ids are whole numbers from 1, written with the digits 0-9)."""
    # int() alone also reads other scripts' digits ("١" is 1) and "1_000": a typo must not name another run.
    plain = isinstance(run_id, numbers.Integral) and not isinstance(run_id, bool) or (
        isinstance(run_id, str) and _RUN_ID.fullmatch(run_id) is not None)
    if not plain:
        raise BadInput(f"run id {shown(run_id)} is not a whole number written with the digits 0-9; list runs with: "
                       "python -m engine runs")
    value = int(run_id)
    if not 1 <= value <= MAX_RUN_ID:
        raise BadInput(f"there is no run {value}: run ids are whole numbers from 1; "
                       "list runs with: python -m engine runs")
    return value


def claim_errors(claim: dict, names: dict[str, str] | None = None) -> tuple[dict, dict[str, str]]:
    """(clean row, {field: message}) for one raw claim; every bad field gets its own message saying the fix.
    `names` says each field as the caller shows it (a form's labels); default the field names. The rules are
    the claim contract's (engine/ml/contract.py), the same the served model applies."""
    numbers, errors = claim_problems({f: [claim.get(f)] for f in FEATURES}, 1, CATEGORIES, names)
    row = {f: (float(numbers[f][0]) if f in NUMERIC else claim[f]) for f in FEATURES if f not in errors}
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

    def work_until_idle(self) -> None:
        """Run queued steps in this process until none is left (the CLI's --wait), and interrupt the runs of
        workers that died, once this process has reached the database for a whole stale window."""
        self.runner.run_until_idle()
        self.runner.reap_when_steady()

    @property
    def worker_id(self) -> str:
        """This process's runner, as the workers table names it (host:pid:random)."""
        return self.runner.worker_id

    def release(self, runner: bool = False) -> None:
        """Release connections; with `runner`, first deregister this process's runner at once, without waiting
        for steps (a CLI call that worked on steps with --wait must not read as a live worker once it exits)."""
        if runner:
            self.runner.stop(wait=False)
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
               detail: dict | None = None, visitor: str | None = None, delivery: tuple[str, str] | None = None,
               production: tuple[int, int, int] | None = None) -> int:
        """Start CI for a new commit (or a drift-triggered retrain, with its data shift); return the run id.

        `trigger` says where the run came from (cli, dashboard, api, webhook, autopilot, drift; "commit" records
        none) and `detail` what the dashboard shows of it. `visitor` names who commits from the dashboard or a
        webhook's address (the demo paces each visitor). `delivery` is a webhook's (delivery id, payload digest),
        stored with the run so that a redelivery finds it (IntegrityError when one was stored already).
        `production` is a retrain's (first, cut, end) stream claim range, copied to the run in its transaction
        (see retrain_on_production)."""
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
            if production is not None:
                self._copy_production(c, run_id, *production)
            if delivery is not None:
                self.store.add_delivery(c, *delivery, run_id)
            self.store.add_audit(c, author or (trigger if trigger != "commit" else "cli"), "commit", run_id, message,
                                 {"sha": sha, "seed": seed, "window": window, "failure_modes": modes,
                                  "trigger": trigger, "shift": shift})
        return run_id

    def open_drift_run(self) -> int | None:
        """The retrain on production data still in progress, drift-triggered or asked for (at most one is open at a
        time), or None."""
        return next(filter(None, (self.store.open_run_with_trigger(t, OPEN_STATUSES) for t in LOOP_TRIGGERS)), None)

    def _refuse_a_second_retrain(self) -> None:
        """Refused, naming it, while a retrain on production data is open (one at a time)."""
        open_run = self.open_drift_run()
        if open_run is not None:
            raise Refused(f"run {open_run} is already retraining on production data; let it finish (or reject it) "
                          "first")

    def retrain_on_production(self, by: str = "", rows: int | None = None, since_seq: int | None = None,
                              trigger: str = "production", evidence: dict | None = None,
                              visitor: str | None = None, operator_key: str | None = None) -> int:
        """Commit a retrain on what production saw; return the run id.

        Its data are the stored stream claims whose outcome has arrived: the newest `rows` (default RETRAIN_ROWS, or
        the stream's retention if smaller),
        or every one from claim `since_seq` on (the closed loop: the claims since its alarm). They are split by
        time: the older claims train (CI and CD), the newest RETRAIN_EVALUATION_SHARE are the promotion gate's
        holdout, never trained on. No generator replay and no share of the original training data (see
        engine/stream.py). Refused, changing nothing, while another retrain is open or when fewer than
        RETRAIN_MIN_ROWS labelled claims are stored."""
        from engine.stream import RETRAIN_EVALUATION_SHARE, RETRAIN_MIN_ROWS, RETRAIN_ROWS
        by = _check_by(by)
        # The default is capped at what the stream keeps (its retention); a number asked for is checked as given.
        rows = min(RETRAIN_ROWS, self.settings.stream_retention) if rows is None else rows
        if isinstance(rows, bool) or not isinstance(rows, int) or not \
                RETRAIN_MIN_ROWS <= rows <= self.settings.stream_retention:
            raise BadInput(f"--rows {rows!r} is out of range: give a whole number of claims from {RETRAIN_MIN_ROWS:,} "
                           f"to {self.settings.stream_retention:,} (the stream keeps that many)")
        self.guard.operator(visitor, operator_key, "retraining on production data")
        self._refuse_a_second_retrain()
        span = self.store.labelled_span(0 if since_seq is None else since_seq)
        if span["count"] and since_seq is None:
            span = self.store.labelled_span(max(span["first"], span["end"] - rows))
        if span["count"] < RETRAIN_MIN_ROWS:
            raise Refused(f"only {span['count']:,} labelled production claims are stored"
                          + (f" since claim {since_seq:,}" if since_seq is not None else "")
                          + f"; a retrain needs at least {RETRAIN_MIN_ROWS:,}: keep the stream running until "
                            "more outcomes have arrived")
        first, end = span["first"], span["end"]
        cut = end - round(span["count"] * RETRAIN_EVALUATION_SHARE)
        days = [time.strftime("%Y-%m-%d", time.gmtime(t)) for t in (span["since_ts"], span["until_ts"])]
        detail = {"production": {"training": [first, cut], "evaluation": [cut, end],
                                 "evaluation_share": RETRAIN_EVALUATION_SHARE, "original_share": 0.0},
                  **({"evidence": evidence} if evidence else {})}
        message = (f"retrain on production claims {first:,}..{end - 1:,}: claims before {cut:,} train, the newest "
                   f"{end - cut:,} judge" + (f" ({evidence['why']})" if evidence and evidence.get("why") else ""))
        return self.commit(message=message, window=f"{days[0]}..{days[1]}", author=by or trigger,
                           trigger=trigger, detail=detail, visitor=visitor, production=(first, cut, end))

    def _copy_production(self, conn, run_id: int, first: int, cut: int, end: int) -> None:
        """Copy a retrain's claims into its run; Refused (rolling the commit back) if another retrain opened
        meanwhile or retention took some of the claims."""
        self.store.lock(conn, "retrain-on-production")  # one open retrain, even for two callers at once
        self._refuse_a_second_retrain()
        copied = self.store.copy_production_claims(conn, run_id, first, cut, end)
        if copied["training"] + copied["evaluation"] != end - first:
            raise Refused(f"the stream's retention removed some of claims {first:,}..{end - 1:,} while the retrain "
                          "was being committed; nothing was committed: try again")

    def delivered(self, delivery: str, digest: str) -> int | None:
        """The run a webhook delivery (or a delivery of the same payload) started, or None."""
        return self.store.delivery_run(delivery, digest)

    def _locked_run(self, conn, run_id) -> Run:
        run = self.store.lock_run(conn, check_run_id(run_id))
        if run is None:
            raise NotFound(f"there is no run {run_id}; list runs with: python -m engine runs")
        return run

    def _check_allowed(self, action: str, run: Run) -> None:
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
            self.store.set_run_status(c, run.id, run.status, RunStatus.QUEUED, finished_at=None)
            self.store.queue_step(c, run.id, "cd_full_train")
            self.store.add_audit(c, by or "cli", "continue", run.id)

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
            run_id = run.id
            self._check_allowed("approve" if approved else "reject", run)
            if approved:  # approving queues the deployment steps
                self.guard.capacity(c)
            gate = self.store.step(run_id, "manual_approval", c)
            outputs = {**(gate.outputs or {}), **decision}
            if approved:
                self.store.set_run_status(c, run_id, run.status, RunStatus.QUEUED, finished_at=None)
                self.store.set_step_status(c, gate, StepStatus.SUCCEEDED, outputs=outputs)
                self.store.queue_step(c, run_id, "deploy_staging")
            else:
                self.store.set_run_status(c, run_id, run.status, RunStatus.REJECTED)
                self.store.set_step_status(c, gate, StepStatus.FAILED, outputs=outputs,
                                           error=f"rejected by {by}" + (f": {comment}" if comment else ""))
                self.store.skip_pending(c, run_id)
            self.store.add_audit(c, by, "approve" if approved else "reject", run_id, comment)
            version = (self.store.step(run_id, "cd_full_train", c).outputs or {}).get("model_version")
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
        move_alias(self.store, self.tracking, CHAMPION, target, None, by, reason, action="rollback",
                   expect_current=current, tags={"rolled_back_to_by": by, "rollback_reason": reason})
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
            run_id = run.id
            self._check_allowed("retry", run)
            self.guard.capacity(c)
            steps = self.store.steps_of(run_id, c)
            running = [s for s in steps if s.status is StepStatus.RUNNING]
            if running:
                s = running[0]
                raise Refused(f"step {s.name} of run {run_id} is still running on {s.worker}; wait until it "
                              f"finishes, or until it is marked interrupted ({self.settings.stale_seconds:g} s "
                              "without a heartbeat), then retry")
            stopped = next((s for s in steps if s.status in _NOT_REACHED), None)
            if stopped is None:
                raise Refused(f"run {run_id} has no failed, interrupted or skipped step to re-run")
            start = from_step or stopped.name
            # By name and the run's own stored positions: a run may predate a step, or hold them in another order.
            row = next((s for s in steps if s.name == start), None)
            if row is None:
                raise BadInput(f"run {run_id} has no step {start} (it was created before that step was added); "
                               f"retry from {stopped.name} or an earlier step")
            pos = row.position
            if pos > stopped.position:
                raise BadInput(f"cannot retry from {start}: {stopped.name} (earlier) did not succeed; "
                               f"retry from {stopped.name} or an earlier step")
            again = [s for s in steps if s.position >= pos]
            for s in again:
                if s.status is not StepStatus.PENDING:
                    self.store.set_step_status(c, s, StepStatus.PENDING, error=None)
            statuses = {s.name: s.status for s in steps} | {s.name: StepStatus.PENDING for s in again}
            stage = pipeline.spec(start).stage
            ready = pipeline.ready(stage, statuses)
            if start not in ready:
                missing = [n for n in pipeline.spec(start).needs
                           if statuses.get(n, StepStatus.SUCCEEDED) is not StepStatus.SUCCEEDED]
                raise BadInput(f"cannot retry from {start}: it needs {', '.join(missing)} to have succeeded; "
                               f"retry from {missing[0]}")
            self.store.set_run_status(c, run_id, run.status, RunStatus.QUEUED, finished_at=None,
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
            # SHAP explains the forest; a calibrated version then maps the forest's p to the served one: a step too.
            forest_p = shap.base_value + float(shap.values[0].sum())
            if abs(out["p_approved"] - forest_p) > 1e-9:
                out["contributions"].append({"feature": "calibration", "value": "fitted in CD",
                                             "shap": out["p_approved"] - forest_p})
        return out

    # ---- MLflow reads (the pages cache them by the tracking URI and a stamp: ui/common.py) -------------------
    def mlflow_runs(self, stage: str | None = None, per_page: int = 20, page_token: str | None = None,
                    where: str = "") -> tuple[list[dict], str | None]:
        """One page of the pipeline's MLflow runs matching `where` (MLflow search syntax): (rows, next token)."""
        return self.tracking.search_runs(stage, per_page, page_token, where)

    def mlflow_run(self, run_id: str) -> dict:
        """Params, metrics, tags, inputs and artifact paths of one MLflow run."""
        return self.tracking.run_detail(run_id)

    def artifact(self, run_id: str, path: str) -> bytes:
        """An MLflow run's artifact, as stored."""
        return self.tracking.artifact_bytes(run_id, path)

    def model_versions(self) -> list[dict]:
        """Registered versions, newest first, each with the aliases that point at it now."""
        versions = self.tracking.versions()
        # MLflow's version search leaves `aliases` empty on this store: ask each alias where it points instead.
        holders = {alias: self.tracking.alias_version(alias) for alias in (CHALLENGER, STAGING, CHAMPION)}
        for v in versions:
            v["aliases"] = sorted(set(v["aliases"]) | {a for a, held in holders.items() if held == v["version"]})
        return versions

    def alias_version(self, alias: str = CHAMPION) -> int | None:
        """The version a registry alias points at, or None."""
        return self.tracking.alias_version(alias)

    def mlflow_experiment_id(self) -> str:
        """The pipeline's MLflow experiment id (for links into the MLflow UI)."""
        return self.tracking.experiment_id()

    # ---- reads --------------------------------------------------------------------------------------------
    def _run(self, run_id: int) -> Run:
        run = self.store.get_run(check_run_id(run_id))
        if run is None:
            raise NotFound(f"there is no run {run_id}; list runs with: python -m engine runs")
        return run

    def run(self, run_id: int) -> Run:
        """A run with its steps (outputs, errors, timings)."""
        run = self._run(run_id)
        return dataclasses.replace(run, steps=tuple(self.store.steps_of(run.id)))

    def runs(self, limit: int = 50, offset: int = 0, statuses=None) -> list[Run]:
        """Newest runs first."""
        if not 1 <= int(limit) <= 10_000:
            raise BadInput(f"--limit {limit} is out of range: use 1 to 10000")
        return self.store.list_runs(int(limit), int(offset), statuses)

    def steps_for_runs(self, run_ids: list[int]) -> dict[int, list[Step]]:
        """Steps of many runs at once (one query), by run id."""
        return self.store.steps_of_runs(run_ids)

    def logs(self, run_id: int, step: str | None = None, after_id: int = 0, limit: int = 2000) -> list[dict]:
        """Log lines of a run or one step."""
        return self.store.logs_of(run_id, step, after_id, limit)

    def audit(self, limit: int = 500, run_id: int | None = None) -> list[AuditEntry]:
        """Who did what, newest first."""
        return self.store.audit_trail(limit, run_id)

    def claims_sample(self, run_id: int, rows: int = 200):
        """The first `rows` claims of a run's data feed, exactly as its steps see them."""
        return run_feed(self._run(run_id), rows, self.store)

    def workers(self) -> list[dict]:
        """Registered runners (dashboard processes and `python -m engine worker`), each with `alive`."""
        return self.store.list_workers(self.settings.stale_seconds)

    def champion_history(self) -> list[dict]:
        """Every holder of the champion alias: version, from, until, who moved it and why."""
        return self.store.alias_history_of(CHAMPION)

    def latest_change(self) -> tuple:
        """A cheap stamp that changes whenever a run is created or anyone acts on the lab (see Store)."""
        return self.store.latest_change()

    def allowed_actions(self, run: Run | None) -> dict[str, str | None]:
        """For each header action on `run`: None when allowed, else the sentence saying why not."""
        return {action: self._why_not(action, run) for action in ("continue", "approve", "reject", "retry",
                                                                   "rollback")}

    def _why_not(self, action: str, run: Run | None) -> str | None:
        status = run.status if run else None
        name = f"run {run.id} is {status.value}" if run else "no run is selected"
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
