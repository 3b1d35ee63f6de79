"""The facade the dashboard and the CLI call. Every action checks its input, then changes state atomically.

A refused action raises (BadInput, IllegalTransition or Refused) before anything is written, so it changes
nothing; the message says why and what to do instead.
"""
from __future__ import annotations

import math
import re
import secrets
import time
from functools import cached_property

from engine import failures, pipeline
from engine.config import CHAMPION, MODEL_NAME, Settings
from engine.errors import BadInput, Refused
from engine.ml.claims import CATEGORICAL, CATEGORIES, FEATURES, NUMERIC, parse_window
from engine.runner import Runner, run_feed
from engine.states import RETRYABLE, RunStatus, StepStatus
from engine.store import Store

# A run that can still reach production: a drift-triggered retrain in one of these blocks another.
OPEN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL)

SHA_RE = re.compile(r"^[0-9a-fA-F]{4,64}$")


def _need_name(by: str, what: str) -> str:
    by = (by or "").strip()
    if not by:
        raise BadInput(f"{what} needs the name of who does it: pass --by NAME (dashboard: fill in 'Your name')")
    if len(by) > 200:
        raise BadInput(f"the name is {len(by)} characters long; keep it under 200")
    return by


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


class Lab:
    """One lab: a state store, a runner, and MLflow, configured from Settings."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.database_url)
        self.runner = Runner(self.store, self.settings)

    @cached_property
    def tracking(self):
        """MLflow as configured (imported lazily: it is slow to import)."""
        from engine.tracking import Tracking
        return Tracking(self.settings.tracking_uri, self.settings.artifact_root)

    @cached_property
    def stream(self):
        """The live claims stream (engine/stream.py)."""
        from engine.stream import Stream
        return Stream(self)

    def start(self) -> "Lab":
        """Start the background runner and the stream's producer job (it idles while the stream is off)."""
        self.runner.start()
        self.runner.add_interval_job(self.stream.tick, self.settings.stream_tick_seconds, "lab-stream")
        return self

    def close(self) -> None:
        """Stop the runner, give up the stream's lease and release connections."""
        self.runner.stop()
        if "stream" in self.__dict__:
            self.stream.release()
        self.store.dispose()

    # ---- actions ------------------------------------------------------------------------------------------
    def commit(self, sha: str | None = None, message: str = "", seed: int | None = None,
               window: str | None = None, author: str = "", trigger: str = "commit", shift: dict | None = None,
               detail: dict | None = None) -> int:
        """Start CI for a new commit (or a drift-triggered retrain, with its data shift); return the run id."""
        params = pipeline.spec("commit_received").params()
        if sha is not None and not SHA_RE.match(sha.strip()):
            raise BadInput(f"--sha {sha!r} is not a git SHA: give 4 to 64 hex digits, e.g. $(git rev-parse HEAD)")
        if seed is not None and not (0 <= int(seed) < 2**31):
            raise BadInput(f"--seed {seed} is out of range: use a whole number from 0 to 2147483647")
        window = window or params["default_window"]
        try:
            parse_window(window)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        sha = (sha or secrets.token_hex(params["fake_sha_length"] // 2)).strip().lower()
        seed = int(seed) if seed is not None else secrets.randbelow(10_000)
        modes = [name for name, on in self.store.failure_modes().items() if on]
        run_id = self.store.create_run(sha, (message or "").strip()[:2000] or "fake commit", author.strip()[:200],
                                       seed, window, modes)
        with self.store.tx() as c:
            if trigger != "commit":
                self.store.add_origin(c, run_id, trigger, shift, detail)
            self.store.add_audit(c, author or "cli", "commit", run_id, message or "",
                                 {"sha": sha, "seed": seed, "window": window, "failure_modes": modes,
                                  "trigger": trigger, "shift": shift})
        return run_id

    def open_drift_run(self) -> int | None:
        """The drift-triggered run still in progress (at most one is open at a time), or None."""
        return self.store.open_run_with_trigger("drift", OPEN_STATUSES)

    def _check_allowed(self, action: str, run: dict) -> None:
        reason = self.allowed_actions(run)[action]
        if reason:
            raise Refused(reason)

    def continue_run(self, run_id: int, by: str = "") -> None:
        """Start CD for a run that rests in ci_complete."""
        run = self._run(run_id)
        self._check_allowed("continue", run)
        with self.store.tx() as c:
            self.store.set_run_status(c, run_id, run["status"], RunStatus.QUEUED, finished_at=None)
            self.store.queue_step(c, run_id, "cd_full_train")
            self.store.add_audit(c, by or "cli", "continue", run_id)

    def approve(self, run_id: int, by: str, comment: str = "") -> None:
        """Pass the manual gate: the run goes on to deployment."""
        self._decide(run_id, _need_name(by, "approve"), comment, approved=True)

    def reject(self, run_id: int, by: str, comment: str = "") -> None:
        """Stop the run at the manual gate."""
        self._decide(run_id, _need_name(by, "reject"), comment, approved=False)

    def _decide(self, run_id: int, by: str, comment: str, approved: bool) -> None:
        run = self._run(run_id)
        self._check_allowed("approve" if approved else "reject", run)
        gate = self.store.step(run_id, "manual_approval")
        decision = {"decision": "approved" if approved else "rejected", "by": by, "comment": comment,
                    "at": time.time()}
        with self.store.tx() as c:
            if approved:
                self.store.set_run_status(c, run_id, run["status"], RunStatus.QUEUED, finished_at=None)
                self.store.set_step_status(c, gate, StepStatus.SUCCEEDED, outputs={**(gate["outputs"] or {}),
                                                                                    **decision})
                self.store.queue_step(c, run_id, "deploy_staging")
            else:
                self.store.set_run_status(c, run_id, run["status"], RunStatus.REJECTED)
                self.store.set_step_status(c, gate, StepStatus.FAILED, outputs={**(gate["outputs"] or {}),
                                                                                 **decision},
                                           error=f"rejected by {by}" + (f": {comment}" if comment else ""))
                self.store.skip_pending(c, run_id)
            self.store.add_audit(c, by, "approve" if approved else "reject", run_id, comment)
        version = (self.store.step(run_id, "cd_full_train")["outputs"] or {}).get("model_version")
        if version:
            try:
                self.tracking.set_version_tags(version, {"approval": decision["decision"], "approval_by": by,
                                                         "approval_comment": comment,
                                                         "approval_pipeline_run_id": str(run_id)})
            except Exception as exc:  # the decision stands (it is in the store); say the tags are missing
                with self.store.tx() as c:
                    self.store.add_audit(c, by, "tag_failed", run_id, f"version {version} not tagged: {exc}")

    def rollback(self, by: str, reason: str = "") -> dict:
        """Move champion back to the version it held before the current promotion; return {from, to}."""
        by = _need_name(by, "rollback")
        current, target = self.rollback_target()
        if target is None:
            raise Refused(current)
        self.store.move_alias(self.tracking, CHAMPION, target, None, by, reason, action="rollback",
                              expect_current=current)
        self.tracking.set_version_tags(target, {"rolled_back_to_by": by, "rollback_reason": reason})
        return {"from_version": current, "to_version": target, "model": MODEL_NAME}

    def rollback_target(self) -> tuple:
        """(current champion, version a rollback would restore); target None and a reason when there is none."""
        stack = []
        for row in self.store.alias_history_of(CHAMPION):
            if row["action"] == "rollback":
                stack.pop()
            else:
                stack.append(row["version"])
        if not stack:
            return "there is no champion yet: promote a model first", None
        if len(stack) == 1:
            return (f"version {stack[-1]} is the only model that has been champion on this line; "
                    "there is nothing earlier to roll back to"), None
        return stack[-1], stack[-2]

    def retry(self, run_id: int, from_step: str | None = None, by: str = "") -> str:
        """Re-run a failed, held or interrupted run from a step (default: the one that stopped it)."""
        run = self._run(run_id)
        self._check_allowed("retry", run)
        steps = self.store.steps_of(run_id)
        stopped = next((s for s in steps if s["status"] in (StepStatus.FAILED.value,
                                                              StepStatus.INTERRUPTED.value)), None)
        try:
            start = pipeline.spec(from_step).name if from_step else stopped["name"]
        except ValueError as exc:  # an unknown --from step is bad input (exit 2), not an unexpected error
            raise BadInput(str(exc)) from None
        pos = pipeline.NAMES.index(start)
        if stopped and pos > stopped["position"]:
            raise BadInput(f"cannot retry from {start}: {stopped['name']} (earlier) did not succeed; "
                           f"retry from {stopped['name']} or an earlier step")
        modes = [name for name, on in self.store.failure_modes().items() if on]
        with self.store.tx() as c:
            self.store.set_run_status(c, run_id, run["status"], RunStatus.QUEUED, finished_at=None,
                                      failure_modes=modes)
            for s in steps[pos:]:
                if s["status"] != StepStatus.PENDING.value:
                    self.store.set_step_status(c, s, StepStatus.PENDING, error=None)
            self.store.queue_step(c, run_id, start)
            self.store.add_audit(c, by or "cli", "retry", run_id, f"from {start}", {"failure_modes": modes})
        return start

    def set_failure_mode(self, name: str, enabled: bool, by: str = "") -> None:
        """Turn a failure mode on or off (applies to runs committed or retried from now on)."""
        try:
            failures.check_name(name)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        self.store.set_failure_mode(name, enabled, by or "cli")

    def failure_modes(self) -> list[dict]:
        """Every mode with its description and whether it is on."""
        on = self.store.failure_modes()
        return [{"name": m.name, "title": m.title, "breaks": m.breaks, "caught_by": m.caught_by,
                 "enabled": bool(on.get(m.name))} for m in failures.MODES]

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
        run = self.store.get_run(int(run_id))
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

    def champion_history(self) -> list[dict]:
        """Every holder of the champion alias: version, from, until, who moved it and why."""
        return self.store.alias_history_of(CHAMPION)

    def latest_change(self) -> tuple:
        """A cheap stamp that changes whenever a run is created or anyone acts on the lab (see Store)."""
        return self.store.latest_change()

    def allowed_actions(self, run: dict | None) -> dict[str, str | None]:
        """For each header action on `run`: None when allowed, else the sentence saying why not."""
        status = RunStatus(run["status"]) if run else None
        name = f"run {run['id']} is {status.value}" if run else "no run is selected"
        why_not, rollback_to = self.rollback_target()
        return {
            "continue": None if status == RunStatus.CI_COMPLETE else
            f"Continue to CD needs a run in ci_complete; {name}",
            "approve": None if status == RunStatus.AWAITING_APPROVAL else
            f"Approve needs a run in awaiting_approval; {name}",
            "reject": None if status == RunStatus.AWAITING_APPROVAL else
            f"Reject needs a run in awaiting_approval; {name}",
            "retry": None if status in RETRYABLE else
            f"Retry is for failed, held or interrupted runs; {name}",
            "rollback": None if rollback_to is not None else why_not,
        }
