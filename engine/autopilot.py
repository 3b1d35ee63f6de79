"""The demo autopilot: plays the whole lifecycle through the public Lab API in a background thread.

commit -> CI -> continue -> CD -> approve -> promoted, then the live claims stream starts, a second model is
promoted (the stream switches to it), production is rolled back, and an inflation scenario shows the drift
monitor turning major before the stream is stopped again. Every action and every step it sees
finish is narrated into its own tables in the lab's database, so any process can show the narration, and any
process can stop it: the stop flag is a column of the session row, read between actions and while waiting.
It only calls public Lab methods, so what it leaves behind is an ordinary, inspectable history.
"""
from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from engine import pipeline
from engine.errors import Refused
from engine.states import RESTING, RunStatus, StepStatus

meta = sa.MetaData()  # its own metadata: the engine's schema stays exactly as the store declares it

sessions = sa.Table(
    "autopilot_sessions", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("outcome", sa.String(20)),             # done, failed, stopped or error; None while it plays
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("visitor", sa.String(120)),             # who pressed Play (engine/guard.py); None from the CLI
)
narration_log = sa.Table(
    "autopilot_log", meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),  # info, success, warning, error
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Index("ix_autopilot_log_session", "session", "id"),
)

# A session that has not heartbeaten for this long died with its process; another may start.
STALE_SECONDS = 20.0
HEARTBEAT_EVERY = 2.0
STREAM_RATE = 20.0      # claims a second while the demo plays
DRIFT_RATE = 1000.0     # faster during the drift act, so a drifted window fills in seconds
DRIFT_WINDOW_SHARE = 3000  # claims after the scenario starts before a snapshot counts as showing it
KEEP_SESSIONS = 100     # finished sessions kept with their narration (retention, Lab.tidy)
_created: set[str] = set()


class Stopped(Exception):
    """Someone asked the autopilot to stop."""


class Halted(Exception):
    """A run came to rest somewhere the lifecycle cannot go on from (failed, held, rejected, timed out)."""


def ensure_tables(lab) -> None:
    """Create the autopilot's tables in the lab's database on first use."""
    if lab.store.url not in _created:
        # Inside a write transaction: on SQLite a deferred one that reads the schema and then writes can be
        # refused ("database is locked") when the runner commits in between.
        with lab.store.tx() as c:
            meta.create_all(c)
            # A table made before sessions had a visitor gets the column (nullable: old sessions had none).
            if "visitor" not in {col["name"] for col in sa.inspect(c).get_columns(sessions.name)}:
                c.execute(sa.text(f"ALTER TABLE {sessions.name} ADD COLUMN visitor VARCHAR(120)"))
        _created.add(lab.store.url)


def _read(lab, query) -> list[dict]:
    ensure_tables(lab)
    with lab.store.engine.connect() as c:
        return [dict(r) for r in c.execute(query).mappings()]


def is_active(session: dict | None, now: float | None = None) -> bool:
    """Whether a session row is still playing (not finished, heartbeat fresh)."""
    now = time.time() if now is None else now
    return bool(session) and session["finished_at"] is None and now - session["heartbeat_at"] < STALE_SECONDS


def latest_session(lab) -> dict | None:
    """The most recent session, or None."""
    rows = _read(lab, sa.select(sessions).order_by(sessions.c.id.desc()).limit(1))
    return rows[0] if rows else None


def active_session(lab) -> dict | None:
    """The session playing now, or None."""
    rows = _read(lab, sa.select(sessions).where(sessions.c.finished_at.is_(None)).order_by(sessions.c.id.desc()))
    return next((r for r in rows if is_active(r)), None)


def narration(lab, session: int, after_id: int = 0) -> list[dict]:
    """Narration lines of a session, oldest first."""
    return _read(lab, sa.select(narration_log).where(narration_log.c.session == session,
                                                     narration_log.c.id > after_id).order_by(narration_log.c.id))


def session_runs(lab, session: int) -> list[int]:
    """Pipeline runs a session created, in order."""
    rows = _read(lab, sa.select(narration_log.c.run_id).where(narration_log.c.session == session,
                                                              narration_log.c.run_id.is_not(None))
                 .order_by(narration_log.c.id))
    return list(dict.fromkeys(r["run_id"] for r in rows))


def stop_session(lab, session: int, visitor: str | None = None, operator_key: str | None = None) -> str:
    """Ask a playing session to stop, for `visitor`: their own, or anyone's with the operator key (demo mode).

    Returns what the page says; the session itself stops what it started (the stream included) and narrates it."""
    row = next(iter(_read(lab, sa.select(sessions).where(sessions.c.id == int(session)))), None)
    if not is_active(row):
        raise Refused(f"demo session {session} is not playing; there is nothing to stop")
    if visitor is not None and row["visitor"] != visitor:
        lab.guard.operator(visitor, operator_key, "stopping an autopilot another visitor started")
    request_stop(lab, row["id"])
    return (f"Asked demo session {row['id']} to stop: it turns off the live stream if it started it, and says what "
            "it stopped below. Runs it already started finish on their own.")


def prune_sessions(lab, keep: int) -> int:
    """Delete finished sessions but the newest `keep`, with their narration; return how many went."""
    ensure_tables(lab)
    with lab.store.tx() as c:
        cutoff = c.execute(sa.select(sessions.c.id).order_by(sessions.c.id.desc()).offset(keep).limit(1)).scalar()
        if cutoff is None:
            return 0
        old = sa.select(sessions.c.id).where(sessions.c.id <= cutoff, sessions.c.finished_at.is_not(None))
        c.execute(sa.delete(narration_log).where(narration_log.c.session.in_(old)))
        return c.execute(sa.delete(sessions).where(sessions.c.id <= cutoff,
                                                   sessions.c.finished_at.is_not(None))).rowcount


def request_stop(lab, session: int | None = None) -> int:
    """Ask a session (default: every unfinished one) to stop; return how many were asked."""
    ensure_tables(lab)
    q = sa.update(sessions).where(sessions.c.finished_at.is_(None))
    if session is not None:
        q = q.where(sessions.c.id == session)
    with lab.store.tx() as c:
        return c.execute(q.values(stop_requested=True)).rowcount


def _step_detail(step: dict) -> str:
    """A few words on what a finished step found (its outputs), for the narration."""
    out, name = step["outputs"] or {}, step["name"]
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


class Autopilot:
    """Plays the lifecycle once, narrating; `start()` runs it in a daemon thread, `stop()` ends it early."""

    def __init__(self, lab, by: str = "demo", seeds: tuple = (None, None), poll: float = 0.25,
                 wait_timeout: float = 900.0, visitor: str | None = None):
        self.lab, self.by, self.seeds, self.visitor = lab, by, seeds, visitor
        self.poll, self.wait_timeout = poll, wait_timeout
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
        ensure_tables(self.lab)
        opening = self._opening()
        with self.lab.store.tx() as c:
            self.lab.store.lock(c, "autopilot")
            busy = [r for r in c.execute(sa.select(sessions).where(sessions.c.finished_at.is_(None))).mappings()
                    if is_active(dict(r))]
            if busy:
                raise Refused(f"the demo is already playing (session {busy[0]['id']}); stop it first")
            self.lab.guard.capacity(c)  # its first action is a commit: refuse now rather than fail then
            self.lab.guard.pace(c, self.visitor, "autopilot start", self.lab.settings.demo_commit_interval)
            now = time.time()
            self.session = c.execute(sa.insert(sessions).values(by=self.by, started_at=now, heartbeat_at=now,
                                                                stop_requested=False, visitor=self.visitor)
                                     .returning(sessions.c.id)).scalar_one()
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
            left = ", ".join(f"run {r} is {self.lab.run(r)['status']}" for r in session_runs(self.lab, self.session))
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
                  "the first model and a drift scenario on the live stream.", "info")]
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
        alarm = "a drift alarm" if self._show_drift() else "a drift watch with no alarm yet"
        self.say(f"Lifecycle complete: two promotions, live traffic, a rollback and {alarm}, all in the run "
                 "history, the registry, the stream's snapshots and the audit trail.", "success")

    def _cycle(self, n: int, message: str, seed) -> None:
        self._check_stop()
        run_id = self.lab.commit(message=message, seed=seed, author=self.by, trigger="autopilot")
        sha = self.lab.run(run_id)["sha"][:7]
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
        version = (self._outputs(run, "promote_prod") or {}).get("version")
        self.say(f"Run {run_id} is promoted: version {version} is the champion now.", "success", run_id)

    def _approval_comment(self, run: dict) -> str:
        gate = (self._outputs(run, "evaluate_vs_champion") or {}).get("gate") or {}
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

    def _show_drift(self) -> bool:
        """Turn on inflation and wait for a snapshot after it that shows major drift (or say what it shows);
        whether one did."""
        self._check_stop()
        if not self.lab.stream.status()["producer"]["alive"]:
            return False
        since = self.lab.stream.state()["next_seq"]
        self.lab.stream.start(rate=min(DRIFT_RATE, self.lab.stream.max_rate), scenario="inflation", ramp=0,
                              by=self.by)
        self.say("Scenario 'inflation': billed amounts rise by 80% from now on. The drift monitor compares each "
                 "window of claims with the champion's own training data.", "warning")

        def drifted():
            snaps = [s for s in self.lab.stream.snapshots(limit=1) if s["seq"] >= since + DRIFT_WINDOW_SHARE]
            return snaps[0] if snaps and snaps[0]["level"] == "major" else None

        snap = self._wait_for(drifted, 120)
        if snap:
            self.say(f"Drift is major (snapshot {snap['id']}): max feature PSI {snap['max_psi']:.2f}, P(Approved) "
                     f"PSI {snap['prediction_psi']:.2f}. In production this is the moment to retrain.", "warning")
        else:
            self.say("No major drift yet; the Claims panel keeps watching.", "warning")
        self.lab.stream.stop(by=self.by)
        self.say("Stopped the stream; start it again from the Claims panel.")
        return snap is not None

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
    def _await(self, run_id: int, expected: RunStatus) -> dict:
        """Narrate a run's steps until it rests; return it if it rests in `expected`, else raise Halted."""
        seen = self._seen.setdefault(run_id, {})
        deadline = time.monotonic() + self.wait_timeout
        while True:
            self._check_stop()
            run = self.lab.run(run_id)
            self._narrate_steps(run, seen)
            status = RunStatus(run["status"])
            if status in RESTING:
                if status != expected:
                    raise Halted(self._why(run))
                return run
            if time.monotonic() > deadline:
                raise Halted(f"Run {run_id} is still {status.value} after {self.wait_timeout:.0f} s: is a "
                             "worker running (the dashboard, or python -m engine worker)?")
            time.sleep(self.poll)

    def _narrate_steps(self, run: dict, seen: dict[str, str]) -> None:
        for step in run["steps"]:
            status, title = step["status"], pipeline.spec(step["name"]).title
            if seen.get(step["name"]) == status or status in (StepStatus.PENDING.value, StepStatus.QUEUED.value,
                                                              StepStatus.SKIPPED.value):
                continue
            seen[step["name"]] = status
            if status == StepStatus.RUNNING.value:
                self.say(f"{title} is running.", run_id=run["id"])
            elif status == StepStatus.SUCCEEDED.value and step["finished_at"] and step["started_at"]:
                detail = _step_detail(step)
                took = step["finished_at"] - step["started_at"]
                self.say(f"{title} succeeded in {took:.1f} s" + (f": {detail}." if detail else "."), "success",
                         run["id"])
            elif status == StepStatus.AWAITING_APPROVAL.value:
                self.say(f"{title}: the run waits for a reviewer.", run_id=run["id"])
            elif status in (StepStatus.FAILED.value, StepStatus.INTERRUPTED.value):
                self.say(f"{title} {status}: {step['error']}", "error", run["id"])

    def _why(self, run: dict) -> str:
        stopped = next((s for s in run["steps"] if s["status"] in (StepStatus.FAILED.value,
                                                                   StepStatus.INTERRUPTED.value)), None)
        where = f" at {pipeline.spec(stopped['name']).title}: {stopped['error']}" if stopped else ""
        modes = f" (failure modes on for this run: {', '.join(run['failure_modes'])})" if run["failure_modes"] else ""
        return f"Run {run['id']} ended {run['status']}{where}{modes}."

    @staticmethod
    def _outputs(run: dict, name: str) -> dict | None:
        return next((s["outputs"] for s in run["steps"] if s["name"] == name), None)

    def _check_stop(self) -> None:
        ensure_tables(self.lab)
        with self.lab.store.engine.connect() as c:
            stop = c.execute(sa.select(sessions.c.stop_requested).where(sessions.c.id == self.session)).scalar()
        if stop:
            raise Stopped()
        if time.monotonic() - self._beat > HEARTBEAT_EVERY:
            self._beat = time.monotonic()
            with self.lab.store.tx() as c:
                c.execute(sa.update(sessions).where(sessions.c.id == self.session).values(heartbeat_at=time.time()))

    def say(self, message: str, level: str = "info", run_id: int | None = None) -> None:
        """Append one narration line to this session."""
        with self.lab.store.tx() as c:
            self._say(c, message, level, run_id)

    def _say(self, c, message: str, level: str = "info", run_id: int | None = None) -> None:
        c.execute(sa.insert(narration_log).values(session=self.session, ts=time.time(), level=level,
                                                  message=message, run_id=run_id))

    def _finish(self, outcome: str) -> None:
        self.outcome = outcome
        with self.lab.store.tx() as c:
            c.execute(sa.update(sessions).where(sessions.c.id == self.session)
                      .values(finished_at=time.time(), heartbeat_at=time.time(), outcome=outcome))
