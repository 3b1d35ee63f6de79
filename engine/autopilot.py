"""The demo autopilot: plays the whole lifecycle through the public Lab API in a background thread.

commit -> CI -> continue -> CD -> approve -> promoted, then the live claims stream starts, a second model is
promoted (the stream switches to it), production is rolled back, and concept drift shows what the monitors really
see: input PSI stays quiet while the performance alert fires on arriving labels; with `retrain`, the closed loop's
retrain on those production claims is judged on production claims, approved and promoted, and cost per claim before
and after is measured on the drifted claims. The last line says what it saw, and nothing else.

Every action and every step it sees finish is narrated into the store (engine/store.py), so any process can show the
narration, and any process can stop it: the stop flag is a column of the session row, read between actions and
while waiting. A playing session holds a lease in the store, renewed on the database's clock; a session whose lease
lapsed died with its process, and another may start. It only calls public Lab methods (and the store for its own
session), so what it leaves behind is an ordinary, inspectable history.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import uuid

from engine import pipeline
from engine.errors import Refused
from engine.records import Run, Step
from engine.states import RESTING, RunStatus, StepStatus

# A session that has not heartbeaten for this long died with its process; another may start.
STALE_SECONDS = 20.0
HEARTBEAT_EVERY = 2.0
STREAM_RATE = 20.0      # claims a second while the demo plays
DRIFT_RATE = 1000.0     # faster during the drift act, so a drifted window fills in seconds
KEEP_SESSIONS = 100     # finished sessions kept with their narration (retention, Lab.tidy)


class Stopped(Exception):
    """Someone asked the autopilot to stop."""


class Halted(Exception):
    """A run came to rest somewhere the lifecycle cannot go on from (failed, held, rejected, timed out)."""


def is_active(session: dict | None) -> bool:
    """Whether a session row (from the functions below) is still playing: unfinished, its lease renewed lately."""
    return bool(session) and session["alive"]


def latest_session(lab) -> dict | None:
    """The most recent session, or None."""
    rows = lab.store.autopilot_sessions(STALE_SECONDS, limit=1)
    return rows[0] if rows else None


def active_session(lab) -> dict | None:
    """The session playing now, or None."""
    return next((r for r in lab.store.autopilot_sessions(STALE_SECONDS, playing=True) if r["alive"]), None)


def narration(lab, session: int, after_id: int = 0) -> list[dict]:
    """Narration lines of a session, oldest first."""
    return lab.store.narration(session, after_id)


def session_runs(lab, session: int) -> list[int]:
    """Pipeline runs a session created, in order."""
    return lab.store.session_runs(session)


def stop_session(lab, session: int, visitor: str | None = None, operator_key: str | None = None) -> str:
    """Ask a playing session to stop, for `visitor`: their own, or anyone's with the operator key (demo mode).

    Returns what the page says; the session itself stops what it started (the stream included) and narrates it."""
    row = next(iter(lab.store.autopilot_sessions(STALE_SECONDS, session=int(session))), None)
    if not is_active(row):
        raise Refused(f"demo session {session} is not playing; there is nothing to stop")
    if visitor is not None and row["visitor"] != visitor:
        lab.guard.operator(visitor, operator_key, "stopping an autopilot another visitor started")
    request_stop(lab, row["id"])
    return (f"Asked demo session {row['id']} to stop: it turns off the live stream if it started it, and says what "
            "it stopped below. Runs it already started finish on their own.")


def prune_sessions(lab, keep: int) -> int:
    """Delete finished sessions but the newest `keep`, with their narration; return how many went."""
    return lab.store.prune_autopilot(keep)


def request_stop(lab, session: int | None = None) -> int:
    """Ask a session (default: every unfinished one) to stop; return how many were asked."""
    return lab.store.ask_autopilot_to_stop(session)


def _step_detail(step: Step) -> str:
    """A few words on what a finished step found (its outputs), for the narration."""
    out, name = step.outputs or {}, step.name
    m = out.get("metrics") or {}
    if name == "ci_tests" and "passed" in out:
        return f"{out['passed']} tests passed"
    if name == "data_validation" and "n_rows" in out:
        return f"{out['n_rows']:,} claims met the data contract"
    if name in ("ci_quick_train", "cd_full_train") and "roc_auc" in m:
        version = f"registered version {out['model_version']}; " if out.get("model_version") else ""
        return f"{version}ROC-AUC {m['roc_auc']:.3f}, F1 {m['f1']:.3f}"
    if name == "mlflow_log_ci" and out.get("mlflow_run_id"):
        return f"MLflow run {out['mlflow_run_id'][:8]}"
    if name == "evaluate_vs_champion" and out.get("gate"):
        return f"gate {out['gate']['verdict']}: {out['gate']['rule']}"
    if name == "deploy_staging" and out.get("version"):
        return f"alias staging -> version {out['version']}"
    if name == "shadow_monitor" and out.get("drift"):
        agree = f"agreement {out['agreement_rate']:.1%}, " if "agreement_rate" in out else ""
        return f"{agree}input drift {out['drift'].get('level')}"
    if name == "promote_prod" and out.get("version"):
        was = out.get("previous_champion")
        return f"alias champion -> version {out['version']}" + (f" (was {was})" if was else "")
    return ""


def closing(seen: dict) -> str:
    """The autopilot's last line: what its drift act really saw, and nothing it did not."""
    parts = ["two promotions, live traffic and a rollback"]
    psi = f"max input PSI {seen['max_psi']:.3f}" if seen.get("max_psi") is not None else "no PSI reading"
    if seen.get("alert"):
        parts.append(f"concept drift caught by the performance alert on arriving labels while {psi}")
    else:
        parts.append(f"a concept-drift watch with no performance alert yet ({psi})")
    if seen.get("retrain"):
        parts.append(f"a retrain on production claims (run {seen['retrain']}) judged and promoted on production "
                     "claims")
    if seen.get("cost"):
        before, after = seen["cost"]
        parts.append(f"cost per claim {before:.3f} before and {after:.3f} after its promotion")
    return f"Lifecycle complete: {', '.join(parts[:-1])} and {parts[-1]}; all in the run history, the registry, " \
           "the stream's snapshots and the audit trail."


class Autopilot:
    """Plays the lifecycle once, narrating; `start()` runs it in a daemon thread, `stop()` ends it early."""

    def __init__(self, lab, by: str = "demo", seeds: tuple = (None, None), poll: float = 0.25,
                 wait_timeout: float = 900.0, visitor: str | None = None, retrain: bool = False):
        self.lab, self.by, self.seeds, self.visitor, self.retrain = lab, by, seeds, visitor, retrain
        self.poll, self.wait_timeout = poll, wait_timeout
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"  # who holds the session's lease
        self.session: int | None = None
        self.outcome: str | None = None
        self._thread: threading.Thread | None = None
        self._beat = 0.0
        self._seen: dict[int, dict[str, str]] = {}  # per run: the status each step was last narrated in
        self._stream_was_on: bool | None = None  # before this session started the stream; None until it did

    # ---- control ------------------------------------------------------------------------------------------
    def open(self) -> int:
        """Create this session's row with its opening narration (Refused while another session plays, at the
        demo's cap on active runs, or when the visitor pressed Play moments ago); return its id.

        The opening lines go in the same transaction as the row, so a page that sees the session sees them too.
        """
        opening = self._opening()
        with self.lab.store.tx() as c:
            self.lab.store.lock(c, "autopilot")
            busy = [r for r in self.lab.store.autopilot_sessions(STALE_SECONDS, playing=True, conn=c) if r["alive"]]
            if busy:
                raise Refused(f"the demo is already playing (session {busy[0]['id']}); stop it first")
            self.lab.guard.capacity(c)  # its first action is a commit: refuse now rather than fail then
            self.lab.guard.pace(c, self.visitor, "autopilot start", self.lab.settings.demo_commit_interval)
            self.session = self.lab.store.open_autopilot(c, self.by, self.visitor, self.owner)
            for message, level in opening:
                self._say(c, message, level)
        return self.session

    def start(self) -> int:
        """Open a session and play it in a background thread; return the session id."""
        session = self.open()
        self._thread = threading.Thread(target=self.run, name=f"autopilot-{session}", daemon=True)
        self._thread.start()
        return session

    def stop(self, timeout: float = 10.0) -> None:
        """Ask this session to stop and wait for its thread."""
        if self.session is not None:
            request_stop(self.lab, self.session)
        self.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the background thread, if any."""
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # ---- the play -----------------------------------------------------------------------------------------
    def run(self) -> str:
        """Play the lifecycle in this thread (opening a session if needed); return the outcome."""
        if self.session is None:
            self.open()
        try:
            self._play()
            outcome = "done"
        except Stopped:
            outcome = "stopped"
            left = ", ".join(f"run {r} is {self.lab.run(r).status}" for r in session_runs(self.lab, self.session))
            self.say("Stopped on request" + (f" ({left})" if left else "") + f". {self._stop_stream()} A run keeps "
                     "going on its own until it rests; carry it on from the dashboard.", "warning")
        except Halted as exc:
            outcome = "failed"
            self.say(f"{exc} The demo stops here; the run stays in the history for you to inspect. "
                     f"{self._stop_stream()}", "error")
        except Refused as exc:  # e.g. the public demo's cap on active runs, reached by others meanwhile
            outcome = "failed"
            self.say(f"The lab refused the autopilot's next action: {exc}. The demo stops here. "
                     f"{self._stop_stream()}", "error")
        except Exception as exc:  # narrate anything unexpected instead of dying silently in a thread
            outcome = "error"
            self.say(f"The autopilot hit an unexpected error: {type(exc).__name__}: {exc}. {self._stop_stream()}",
                     "error")
        self._finish(outcome)
        return outcome

    def _stop_stream(self) -> str:
        """Turn off the live stream if this session turned it on; one sentence saying what happened to it."""
        if self._stream_was_on is None:
            return "It had not started the live stream."
        if self._stream_was_on:
            return "It left the live stream on: it was on before the demo started."
        try:
            if not self.lab.stream.state()["enabled"]:
                return "The live stream it started is already off."
            self.lab.stream.stop(by=self.by)
        except Exception as exc:  # say so: the stream is the one thing it leaves running
            return (f"It could not turn off the live stream it started ({type(exc).__name__}: {exc}); stop it on the "
                    "dashboard's Claims panel.")
        return "It turned off the live stream it had started."

    def _opening(self) -> list[tuple[str, str]]:
        """The session's first narration lines: what the play does, and a warning when failure modes are on."""
        lines = [(f"Playing the lifecycle as '{self.by}': two commits, each through CI, CD, approval and "
                  "deployment, with live claims flowing after the first promotion, then a rollback of production to "
                  "the first model and concept drift on the live stream.", "info")]
        on = [m["title"] for m in self.lab.failure_modes() if m["enabled"]]
        if on:
            lines.append((f"Failure modes are on ({', '.join(on)}): a run will probably fail, and the demo will "
                          "show where and why.", "warning"))
        return lines

    def _play(self) -> None:
        self._cycle(1, "demo: first model for claims settlement", self.seeds[0])
        self._start_stream()
        self._cycle(2, "demo: retrain on fresh claims", self.seeds[1])
        self._rollback()
        self.say(closing(self._show_drift()), "success")

    def _cycle(self, n: int, message: str, seed) -> None:
        self._check_stop()
        run_id = self.lab.commit(message=message, seed=seed, author=self.by, trigger="autopilot")
        sha = self.lab.run(run_id).sha[:7]
        self.say(f"Commit {n}: fake commit {sha} ('{message}') started run {run_id}; CI begins.", run_id=run_id)
        self._await(run_id, RunStatus.CI_COMPLETE)
        self.say(f"Run {run_id} is ci_complete: CI passed. Continuing to CD (full training, evaluation "
                 "against the champion, then the manual gate).", run_id=run_id)
        self._check_stop()
        self.lab.continue_run(run_id, by=self.by)
        run = self._await(run_id, RunStatus.AWAITING_APPROVAL)
        self._check_stop()
        comment = self._approval_comment(run)
        self.lab.approve(run_id, self.by, comment)
        self.say(f"Approved run {run_id} as '{self.by}': {comment}", run_id=run_id)
        run = self._await(run_id, RunStatus.PROMOTED)
        version = run.outputs_of("promote_prod").get("version")
        self.say(f"Run {run_id} is promoted: version {version} is the champion now.", "success", run_id)

    def _approval_comment(self, run: Run) -> str:
        gate = run.outputs_of("evaluate_vs_champion").get("gate") or {}
        checks = "; ".join(f"{c['name']} {c['value']:+.4f} (margin {c['margin']:+.4f})"
                           for c in gate.get("checks", []))
        return f"demo: gate {gate.get('verdict', '?')}" + (f" ({checks})" if checks else "")

    def _rollback(self) -> None:
        self._check_stop()
        current, target = self.lab.rollback_target()
        if target is None:
            raise Halted(f"Rollback is not possible: {current}.")
        result = self.lab.rollback(self.by, "demo: show that production can go back to the previous model")
        self.say(f"Rolled production back: champion moved from version {result['from_version']} to version "
                 f"{result['to_version']}. models:/claims-settlement-rf@champion now serves the first model, and the "
                 "live stream's next claims are scored by it.",
                 "success")

    def _start_stream(self) -> None:
        self._check_stop()
        was_on = bool(self.lab.stream.state()["enabled"])
        self.lab.stream.start(rate=min(STREAM_RATE, self.lab.stream.max_rate), scenario="none", by=self.by)
        self._stream_was_on = was_on
        if not self.lab.stream.status()["producer"]["alive"] and not self._wait_for(
                lambda: self.lab.stream.status()["producer"]["alive"], 10):
            self.say("The claims stream is on, but no runner produces it in this process.", "warning")
            return
        self.say(f"Production traffic: the live stream sends {self.lab.stream.state()['rate']:g} claims a second to "
                 "models:/claims-settlement-rf@champion; every claim is stored with its decision, and its true "
                 "outcome arrives later.")

    def _show_drift(self) -> dict:
        """Concept drift on the live stream: the payer's rule turns while the inputs stay put. Narrate what the
        monitors really show (PSI, then the performance level on arriving labels) and, with `retrain`, the closed
        loop's retrain on those production claims through its gate, approval and promotion, and cost per claim
        before and after. Returns what it saw: {"alert": snapshot or None, "max_psi", "retrain": run or None,
        "cost": (before, after) or None}."""
        self._check_stop()
        seen = {"alert": None, "max_psi": None, "retrain": None, "cost": None}
        if not self.lab.stream.status()["producer"]["alive"]:
            return seen
        since = self.lab.stream.state()["next_seq"]
        loop_was_on = bool(self.lab.stream.state()["closed_loop"])
        if self.retrain and not loop_was_on:
            self.lab.stream.set_closed_loop(True, by=self.by)
        self.lab.stream.start(rate=min(DRIFT_RATE, self.lab.stream.max_rate), scenario="concept_drift", ramp=0,
                              by=self.by)
        self.say("Scenario 'concept_drift': from now on the payer's rule turns (a high allowed share counts against "
                 "approval) while the claims themselves look exactly as before. Input drift (PSI) compares inputs; "
                 "only the outcomes, arriving a few hundred claims after each decision, can show this.", "warning")
        try:
            seen["alert"] = self._wait_for(lambda: next((s for s in self.lab.stream.snapshots(limit=1)
                                                         if s["seq"] >= since and
                                                         s.get("performance_level") == "alert"), None), 180)
            after = [s for s in self.lab.stream.snapshots(limit=50) if s["seq"] >= since and s["max_psi"] is not None]
            seen["max_psi"] = max((s["max_psi"] for s in after), default=None)
            psi = f"max input PSI stayed at {seen['max_psi']:.3f}" if seen["max_psi"] is not None else "no PSI yet"
            if seen["alert"] is None:
                self.say(f"No performance alert yet ({psi}); the Claims panel keeps watching.", "warning")
            else:
                snap = seen["alert"]
                self.say(f"Performance alert (snapshot {snap['id']}): realised accuracy "
                         f"{snap['realised_accuracy']:.3f} on labelled claims, while {psi} (level "
                         f"{snap['level']}): concept drift is invisible to PSI.", "warning")
                if self.retrain:
                    seen["retrain"], seen["cost"] = self._retrain_on_production(since)
        finally:
            if self.retrain and not loop_was_on:
                self.lab.stream.set_closed_loop(False, by=self.by)
        self.lab.stream.stop(by=self.by)
        self.say("Stopped the stream; start it again from the Claims panel.")
        return seen

    def _retrain_on_production(self, since: int) -> tuple[int | None, tuple | None]:
        """Wait for the closed loop's retrain, take it through CD and approval, and compare cost per claim on the
        drifted claims served before and after its promotion; (run id, (before, after)) as far as it got."""
        run_id = self._wait_for(lambda: self.lab.open_drift_run(), 300)
        if run_id is None:
            self.say("The closed loop has not retrained yet (it waits for enough labelled claims since the alarm).",
                     "warning")
            return None, None
        run = self.lab.run(run_id)
        first, cut = run.origin["production"]["training"]
        self.say(f"The closed loop committed run {run_id}: it trains on production claims {first:,}..{cut - 1:,} "
                 f"whose outcomes had arrived ({run.origin.get('evidence', {}).get('why', 'the alarm')}).",
                 run_id=run_id)
        self._await(run_id, RunStatus.CI_COMPLETE)
        self.lab.continue_run(run_id, by=self.by)
        run = self._await(run_id, RunStatus.AWAITING_APPROVAL)
        gate = run.outputs_of("evaluate_vs_champion")
        self.say(f"Its gate judged it on {gate.get('holdout_rows', 0):,} {gate.get('holdout_source', 'claims')}: "
                 f"{gate.get('gate', {}).get('verdict', '?')}.", "success", run_id)
        self.lab.approve(run_id, self.by, self._approval_comment(run))
        run = self._await(run_id, RunStatus.PROMOTED)
        new = run.outputs_of("promote_prod").get("version")
        promoted_at = self.lab.stream.state()["next_seq"]
        delay = self.lab.stream.state()["label_delay"]
        self._wait_for(lambda: self.lab.stream.state()["labelled_seq"] >= promoted_at + 2000 + delay, 120)
        claims = self.lab.stream.claims(limit=self.lab.settings.stream_retention)
        claims = claims[(claims["seq"] >= since) & claims["outcome"].notna()]
        costs = pipeline.spec("cd_full_train").params()["costs"]

        def cost(frame) -> float | None:
            truth, approved = frame["outcome"].astype(bool), frame["approved"].astype(bool)
            wrong = (costs["false_denial"] * (truth & ~approved).sum()
                     + costs["false_approval"] * (~truth & approved).sum())
            return float(wrong / len(frame)) if len(frame) else None

        before = cost(claims[(claims["seq"] < promoted_at) & (claims["champion_version"] != new)])
        after = cost(claims[claims["champion_version"] == new])
        if before is not None and after is not None:
            self.say(f"Cost per claim on the drifted claims: {before:.3f} served by the old champion, {after:.3f} "
                     f"served by version {new} since its promotion.", "success", run_id)
            return run_id, (before, after)
        return run_id, None

    def _wait_for(self, predicate, seconds: float):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._check_stop()
            value = predicate()
            if value:
                return value
            time.sleep(self.poll)
        return None

    # ---- waiting and narrating ----------------------------------------------------------------------------
    def _await(self, run_id: int, expected: RunStatus) -> Run:
        """Narrate a run's steps until it rests; return it if it rests in `expected`, else raise Halted."""
        seen = self._seen.setdefault(run_id, {})
        deadline = time.monotonic() + self.wait_timeout
        while True:
            self._check_stop()
            run = self.lab.run(run_id)
            self._narrate_steps(run, seen)
            status = run.status
            if status in RESTING:
                if status != expected:
                    raise Halted(self._why(run))
                return run
            if time.monotonic() > deadline:
                raise Halted(f"Run {run_id} is still {status.value} after {self.wait_timeout:.0f} s: is a "
                             "worker running (the dashboard, or python -m engine worker)?")
            time.sleep(self.poll)

    def _narrate_steps(self, run: Run, seen: dict[str, StepStatus]) -> None:
        for step in run.steps:
            status, title = step.status, pipeline.spec(step.name).title
            if seen.get(step.name) is status or status in (StepStatus.PENDING, StepStatus.QUEUED, StepStatus.SKIPPED):
                continue
            seen[step.name] = status
            if status is StepStatus.RUNNING:
                self.say(f"{title} is running.", run_id=run.id)
            elif status is StepStatus.SUCCEEDED and step.finished_at and step.started_at:
                detail = _step_detail(step)
                took = step.finished_at - step.started_at
                self.say(f"{title} succeeded in {took:.1f} s" + (f": {detail}." if detail else "."), "success",
                         run.id)
            elif status is StepStatus.AWAITING_APPROVAL:
                self.say(f"{title}: the run waits for a reviewer.", run_id=run.id)
            elif status in (StepStatus.FAILED, StepStatus.INTERRUPTED):
                self.say(f"{title} {status}: {step.error}", "error", run.id)

    def _why(self, run: Run) -> str:
        stopped = next((s for s in run.steps if s.status in (StepStatus.FAILED, StepStatus.INTERRUPTED)), None)
        where = f" at {pipeline.spec(stopped.name).title}: {stopped.error}" if stopped else ""
        modes = f" (failure modes on for this run: {', '.join(run.failure_modes)})" if run.failure_modes else ""
        return f"Run {run.id} ended {run.status}{where}{modes}."

    def _check_stop(self) -> None:
        if time.monotonic() - self._beat > HEARTBEAT_EVERY:  # renew the lease, and hear a stop request
            self._beat = time.monotonic()
            stop = self.lab.store.beat_autopilot(self.session, self.owner)
        else:
            stop = self.lab.store.stop_asked(self.session)
        if stop:
            raise Stopped()

    def say(self, message: str, level: str = "info", run_id: int | None = None) -> None:
        """Append one narration line to this session."""
        self.lab.store.narrate(self.session, message, level, run_id)

    def _say(self, c, message: str, level: str = "info", run_id: int | None = None) -> None:
        self.lab.store.narrate(self.session, message, level, run_id, conn=c)

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        self.lab.store.finish_autopilot(self.session, outcome)
