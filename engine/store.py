"""The state store: SQLAlchemy Core over SQLite (embedded) or PostgreSQL (full stack and scale-out).

The schema is created on first use. Status changes are conditional updates (`WHERE status = <expected>`), so
two processes racing for the same move cannot both win. Queued steps are claimed with
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING ...` on PostgreSQL; SQLite
serialises writers, which gives the same guarantee there.
"""
from __future__ import annotations

import contextlib
import logging
import time
from contextlib import contextmanager
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy import event

from engine import pipeline
from engine.errors import Refused
from engine.states import STEP_MOVES, IllegalTransition, RunStatus, StepStatus, transition

log = logging.getLogger(__name__)
metadata = sa.MetaData()

runs = sa.Table(
    "runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha", sa.String(64), nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("author", sa.String(200), nullable=False, default=""),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("dataset_window", sa.String(40), nullable=False),
    sa.Column("failure_modes", sa.JSON, nullable=False, default=list),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index("ix_runs_created", "created_at"),
    sa.Index("ix_runs_status", "status"),
)
steps = sa.Table(
    "steps", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(16), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=0),
    sa.Column("queued_at", sa.Float),
    sa.Column("started_at", sa.Float),
    sa.Column("finished_at", sa.Float),
    sa.Column("heartbeat_at", sa.Float),
    sa.Column("worker", sa.String(120)),
    sa.Column("outputs", sa.JSON),
    sa.Column("error", sa.Text),
    sa.UniqueConstraint("run_id", "name", name="uq_steps_run_name"),
    sa.Index("ix_steps_run", "run_id", "position"),
    sa.Index("ix_steps_status_queued", "status", "queued_at"),
)
logs = sa.Table(
    "logs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("step", sa.String(64), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False, default=1),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Index("ix_logs_run_step_id", "run_id", "step", "id"),
)
audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("comment", sa.Text, nullable=False, default=""),
    sa.Column("detail", sa.JSON),
    sa.Index("ix_audit_ts", "ts"),
)
failure_modes = sa.Table(
    "failure_modes", metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)
alias_history = sa.Table(
    "alias_history", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alias", sa.String(40), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Column("since", sa.Float, nullable=False),
    sa.Column("until", sa.Float),
    sa.Column("action", sa.String(20), nullable=False),   # promote, rollback or deploy
    sa.Column("moved_by", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Index("ix_alias_history", "alias", "since"),
)

workers = sa.Table(
    "workers", metadata,
    sa.Column("id", sa.String(120), primary_key=True),     # host:pid:random, as in steps.worker
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("heartbeat_at", sa.Float, nullable=False),    # the database's clock
    sa.Column("active_steps", sa.Integer, nullable=False, default=0),
)
# What one visitor of the public demo did when (engine/guard.py): its pacing and operator-key limits hold across
# every app process and a page reload, and retention forgets rows older than VISITOR_EVENTS_SECONDS.
visitor_events = sa.Table(
    "visitor_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("visitor", sa.String(120), nullable=False),   # "ip:<hash>" or "session:<id>" (ui/common.visitor)
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("at", sa.Float, nullable=False),               # the database's clock
    sa.Index("ix_visitor_events", "visitor", "action", "at"),
)
VISITOR_EVENTS_SECONDS = 3600.0
# ---- the live claims stream (engine/stream.py) ----------------------------------------------------------------
run_origin = sa.Table(  # where a run came from (runs without a row: "commit") and the data shift its feed replays
    "run_origin", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("trigger", sa.String(40), nullable=False),         # cli, dashboard, api, webhook, autopilot, drift
    sa.Column("shift", sa.JSON),                                  # engine.ml.claims.Shift fields
    sa.Column("detail", sa.JSON),                                 # e.g. a webhook's repository and commit link
)
# A webhook delivery that started a run (api/webhook.py): a redelivery (same X-GitHub-Delivery) or the same signed
# payload sent again finds its run here instead of starting another, across restarts and app processes.
webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("delivery", sa.String(80), primary_key=True),      # X-GitHub-Delivery
    sa.Column("digest", sa.String(64), nullable=False, unique=True),  # SHA-256 of the signed body
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)
stream_state = sa.Table(  # one row: the stream's controls, its position and the producer's lease
    "stream_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("rate", sa.Float, nullable=False),
    sa.Column("scenario", sa.String(40), nullable=False),
    sa.Column("ramp", sa.Integer, nullable=False),
    sa.Column("scenario_seq", sa.BigInteger, nullable=False),    # seq at which the scenario was chosen
    sa.Column("label_delay", sa.Integer, nullable=False),        # claims until an outcome arrives
    sa.Column("closed_loop", sa.Boolean, nullable=False),
    sa.Column("next_seq", sa.BigInteger, nullable=False),        # the next claim's position in the sequence
    sa.Column("labelled_seq", sa.BigInteger, nullable=False),    # every claim before this one has its label
    sa.Column("produced_at", sa.Float),                          # when the last batch was produced
    sa.Column("lease_owner", sa.String(120)),
    sa.Column("lease_until", sa.Float),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.Column("updated_by", sa.String(200), nullable=False, default=""),
)
stream_claims = sa.Table(
    "stream_claims", metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("claim_id", sa.BigInteger, nullable=False, unique=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("scenario", sa.String(40), nullable=False),
    sa.Column("intensity", sa.Float, nullable=False),
    sa.Column("cpt_bucket", sa.String(40), nullable=False),
    sa.Column("provider_type", sa.String(40), nullable=False),
    sa.Column("diagnosis_group", sa.String(40), nullable=False),
    sa.Column("billed_amount", sa.Float, nullable=False),
    sa.Column("allowed_amount", sa.Float, nullable=False),
    sa.Column("patient_age", sa.Float, nullable=False),
    sa.Column("champion_version", sa.Integer, nullable=False),
    sa.Column("p_approved", sa.Float, nullable=False),
    sa.Column("approved", sa.Boolean, nullable=False),           # the served decision
    sa.Column("shadow_version", sa.Integer),                     # staging, scored but never served
    sa.Column("shadow_p_approved", sa.Float),
    sa.Column("shadow_approved", sa.Boolean),
    sa.Column("hidden_outcome", sa.Boolean, nullable=False),     # the truth, held back until the label arrives
    sa.Column("outcome", sa.Boolean),                            # the label, once it has arrived
    sa.Column("labelled_at", sa.Float),
)
stream_snapshots = sa.Table(
    "stream_snapshots", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),             # the newest claim in the window
    sa.Column("champion_version", sa.Integer),
    sa.Column("scenario", sa.String(40), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),          # "ok" or "not_enough_data"
    sa.Column("level", sa.String(20)),
    sa.Column("max_psi", sa.Float),
    sa.Column("prediction_psi", sa.Float),
    sa.Column("drift_share", sa.Float),
    sa.Column("realised_accuracy", sa.Float),
    sa.Column("estimated_accuracy", sa.Float),
    sa.Column("agreement", sa.Float),
    sa.Column("detail", sa.JSON, nullable=False),                # per-feature PSI with bins, counts, calibration
    sa.Index("ix_stream_snapshots_seq", "seq"),
)


def timestamp() -> float:
    """Wall-clock seconds since the epoch: how every timestamp is stored."""
    return time.time()


def db_now(dialect: str) -> sa.ColumnElement:
    """The database's own clock in epoch seconds, as an SQL expression.

    Heartbeats are written and judged with it, so a worker whose clock is off (or a reaper on another host)
    cannot make a live step look dead.
    """
    if dialect == "postgresql":
        return sa.cast(sa.func.extract("epoch", sa.func.clock_timestamp()), sa.Float)
    return (sa.func.julianday("now") - 2440587.5) * 86400.0


def _switch_to_wal(cur, patience: float) -> None:
    """PRAGMA journal_mode=WAL, retried for up to `patience` seconds while the file is locked.

    The switch needs an exclusive lock that SQLite does not wait for (the busy timeout does not apply), so
    processes opening a fresh file together can get "database is locked" at once. WAL then stays set in the file,
    so only the first opening can meet this.
    """
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # sqlite3.OperationalError; the driver module is not imported here
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)  # back off, then try again


def make_engine(url: str, connect_timeout: float = 5.0, statement_timeout: float = 8.0) -> sa.Engine:
    """An engine for `url` that never waits for ever: a hung or locked database fails a call within seconds.

    PostgreSQL: `connect_timeout` for opening a connection, `statement_timeout` per statement. SQLite: WAL and a
    busy timeout, so threads and processes can share the file.
    """
    if url.startswith("sqlite"):
        eng = sa.create_engine(url, connect_args={"timeout": statement_timeout, "check_same_thread": False})

        @event.listens_for(eng, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            _switch_to_wal(cur, statement_timeout)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(eng, "begin")
        def _begin(conn):
            # Writers take the lock up front: a deferred transaction that later writes can fail with
            # "database is locked" instead of waiting. Readers stay deferred so WAL lets them run alongside.
            immediate = conn.get_execution_options().get("immediate")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        # pysqlite's own transaction handling must be off for the BEGIN above to be the real one.
        @event.listens_for(eng, "connect", insert=True)
        def _autocommit(conn, _record):
            conn.isolation_level = None

        return eng
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={
        "connect_timeout": max(1, round(connect_timeout)),
        "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
        # A peer that vanished (host down, network cut) is noticed in seconds, not after the kernel's hours.
        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3})


class Undo:
    """Side effects outside the database (MLflow tags and aliases), each with the step that takes it back.

    Used as `with Undo() as undo, store.tx() as c:`: if anything in the block, or the commit after it, fails,
    the effects are undone newest first and the error propagates, so the registry is left as it was.
    """

    def __init__(self):
        self._steps: list = []

    def __enter__(self) -> "Undo":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None:
            self.undo()
        return False

    def undo(self) -> None:
        """Take back every recorded effect, newest first; a step that fails does not stop the others."""
        while self._steps:
            step = self._steps.pop()
            try:
                step()
            except Exception:  # reported; the original error is the one raised
                log.exception("could not undo a registry change")

    def tag_version(self, tracking, version: int, tags: dict) -> None:
        """Set model version tags, remembering the values they replace."""
        from engine.config import MODEL_NAME
        before = dict(tracking.client.get_model_version(MODEL_NAME, str(version)).tags)

        def restore():
            for key in tags:
                if key in before:
                    tracking.client.set_model_version_tag(MODEL_NAME, str(version), key, before[key])
                else:
                    with contextlib.suppress(Exception):
                        tracking.client.delete_model_version_tag(MODEL_NAME, str(version), key)
        self._steps.append(restore)  # registered first: a failure half-way through the tags is undone too
        tracking.set_version_tags(version, tags)

    def set_alias(self, tracking, alias: str, version: int, previous: int | None) -> None:
        """Move an alias, remembering where it pointed."""
        from engine.config import MODEL_NAME

        def restore():
            if previous is None:
                tracking.client.delete_registered_model_alias(MODEL_NAME, alias)
            else:
                tracking.set_alias(alias, previous)
        self._steps.append(restore)
        tracking.set_alias(alias, version)


class Store:
    """All reads and writes of pipeline state."""

    def __init__(self, url: str, connect_timeout: float = 5.0, statement_timeout: float = 8.0):
        self.url = url
        self.engine = make_engine(url, connect_timeout, statement_timeout)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # Workers and replicas starting together on a fresh database would race to create the same tables
        # (PostgreSQL: duplicate key in pg_type); one at a time, the others find the tables there.
        with self.tx() as conn:
            self.lock(conn, "lab-schema")
            metadata.create_all(conn)

    @contextmanager
    def tx(self):
        """A transaction."""
        with self.engine.connect() as conn:
            conn.execution_options(immediate=True)
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        """Close pooled connections."""
        self.engine.dispose()

    # ---- runs -------------------------------------------------------------------------------------------
    @contextmanager
    def _within(self, conn):
        """The caller's transaction, or a new one."""
        if conn is not None:
            yield conn
        else:
            with self.tx() as c:
                yield c

    def create_run(self, sha: str, message: str, author: str, seed: int, window: str, modes: list[str],
                   conn=None) -> int:
        """Insert a run with every step pending and the first one queued; return its id."""
        now = timestamp()
        with self._within(conn) as c:
            run_id = c.execute(sa.insert(runs).values(
                sha=sha, message=message, author=author, seed=seed, dataset_window=window,
                failure_modes=sorted(modes), status=RunStatus.QUEUED.value, created_at=now, updated_at=now,
            ).returning(runs.c.id)).scalar_one()
            c.execute(sa.insert(steps), [
                dict(run_id=run_id, name=s.name, position=i, stage=s.stage, attempt=0,
                     status=(StepStatus.QUEUED if i == 0 else StepStatus.PENDING).value,
                     queued_at=now if i == 0 else None)
                for i, s in enumerate(pipeline.STEPS)
            ])
        return run_id

    @staticmethod
    def _with_origin() -> sa.Select:
        """Runs with where each came from: `trigger` ("commit" when none was recorded), `shift` and `origin` (the
        trigger's detail, e.g. a webhook's repository and commit link)."""
        return (sa.select(runs, sa.func.coalesce(run_origin.c.trigger, "commit").label("trigger"),
                          run_origin.c.shift.label("shift"), run_origin.c.detail.label("origin"))
                .select_from(runs.outerjoin(run_origin, run_origin.c.run_id == runs.c.id)))

    def get_run(self, run_id: int) -> dict | None:
        """One run as a dict (with its trigger, data shift and origin; "commit", None, None when none was recorded),
        or None."""
        query = self._with_origin().where(runs.c.id == run_id)
        with self.engine.connect() as c:
            row = c.execute(query).mappings().first()
        return dict(row) if row else None

    def add_origin(self, conn, run_id: int, trigger: str, shift: dict | None, detail: dict | None) -> None:
        """Record why a run exists when it is not a person's commit (e.g. drift) and the shift its feed replays."""
        conn.execute(sa.insert(run_origin).values(run_id=run_id, trigger=trigger, shift=shift, detail=detail))

    def add_delivery(self, conn, delivery: str, digest: str, run_id: int) -> None:
        """Record that webhook `delivery` (payload SHA-256 `digest`) started `run_id`, in the run's transaction;
        IntegrityError when either was recorded already (a concurrent redelivery won)."""
        conn.execute(sa.insert(webhook_deliveries).values(delivery=delivery, digest=digest, run_id=run_id,
                                                          received_at=timestamp()))

    def delivery_run(self, delivery: str, digest: str) -> int | None:
        """The run that webhook `delivery`, or a delivery of the same payload, started; None if none did."""
        with self.engine.connect() as c:
            return c.execute(sa.select(webhook_deliveries.c.run_id).where(sa.or_(
                webhook_deliveries.c.delivery == delivery, webhook_deliveries.c.digest == digest)).limit(1)).scalar()

    def open_run_with_trigger(self, trigger: str, statuses) -> int | None:
        """The newest run of `trigger` whose status is one of `statuses`, or None."""
        with self.engine.connect() as c:
            return c.execute(sa.select(runs.c.id).join(run_origin, run_origin.c.run_id == runs.c.id)
                             .where(run_origin.c.trigger == trigger,
                                    runs.c.status.in_([getattr(s, "value", s) for s in statuses]))
                             .order_by(runs.c.id.desc()).limit(1)).scalar()

    def list_runs(self, limit: int = 50, offset: int = 0, statuses: Iterable[str] | None = None) -> list[dict]:
        """Newest runs first (each with where it came from, as get_run)."""
        q = self._with_origin().order_by(runs.c.id.desc()).limit(limit).offset(offset)
        if statuses:
            q = q.where(runs.c.status.in_(list(statuses)))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def count_runs(self) -> int:
        """How many runs exist."""
        with self.engine.connect() as c:
            return c.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()

    def count_active_runs(self, conn) -> int:
        """Runs queued or running (inside the caller's transaction)."""
        active = (RunStatus.QUEUED.value, RunStatus.RUNNING.value)
        return conn.execute(sa.select(sa.func.count()).select_from(runs).where(runs.c.status.in_(active))
                            ).scalar_one()

    def run_ids(self) -> set[int]:
        """The id of every run in the store."""
        with self.engine.connect() as c:
            return set(c.execute(sa.select(runs.c.id)).scalars())

    def prune_runs(self, keep: int, protect: Iterable[int] = ()) -> list[int]:
        """Delete all but the newest `keep` runs with their steps, logs and audit rows; return the deleted ids.

        Runs in `protect` stay, and so do queued or running ones: a worker may be inside one of their steps."""
        active, protect = (RunStatus.QUEUED.value, RunStatus.RUNNING.value), set(protect)
        with self.tx() as c:
            self.lock(c, "lab-prune")
            cutoff = c.execute(sa.select(runs.c.id).order_by(runs.c.id.desc()).offset(keep).limit(1)).scalar()
            if cutoff is None:
                return []
            doomed = [r.id for r in c.execute(sa.select(runs.c.id).where(
                runs.c.id <= cutoff, runs.c.status.not_in(active)).order_by(runs.c.id)) if r.id not in protect]
            for start in range(0, len(doomed), 500):  # bounded IN lists, whatever the backend's parameter limit
                chunk = doomed[start:start + 500]
                for table in (logs, audit, steps, run_origin):
                    c.execute(sa.delete(table).where(table.c.run_id.in_(chunk)))
                c.execute(sa.delete(runs).where(runs.c.id.in_(chunk)))
        return doomed

    def apply_retention(self, keep_snapshots: int, keep_log_runs: int, keep_audit: int) -> dict[str, int]:
        """Bound what grows in every mode; return the rows deleted per kind.

        Keeps the newest `keep_snapshots` stream snapshots, the step logs of the newest `keep_log_runs` runs (and
        none of runs that are gone), the newest `keep_audit` audit rows without a run (none whose run is gone),
        and visitor events of the last VISITOR_EVENTS_SECONDS."""
        with self.tx() as c:
            self.lock(c, "lab-prune")
            removed = {"stream_snapshots": self._keep_newest(c, stream_snapshots, keep_snapshots)}
            log_cutoff = c.execute(sa.select(runs.c.id).order_by(runs.c.id.desc())
                                   .offset(keep_log_runs).limit(1)).scalar()
            gone = sa.or_(logs.c.run_id.not_in(sa.select(runs.c.id)),
                          logs.c.run_id <= log_cutoff if log_cutoff is not None else sa.false())
            removed["logs"] = c.execute(sa.delete(logs).where(gone)).rowcount
            removed["audit"] = self._keep_newest(c, audit, keep_audit, audit.c.run_id.is_(None)) + c.execute(
                sa.delete(audit).where(audit.c.run_id.is_not(None), audit.c.run_id.not_in(sa.select(runs.c.id)))
            ).rowcount
            removed["visitor_events"] = c.execute(sa.delete(visitor_events).where(
                visitor_events.c.at < db_now(self.engine.dialect.name) - VISITOR_EVENTS_SECONDS)).rowcount
        return removed

    @staticmethod
    def _keep_newest(conn, table: sa.Table, keep: int, where=sa.true()) -> int:
        """Delete the rows of `table` matching `where` but the newest `keep` by id; return how many went."""
        cutoff = conn.execute(sa.select(table.c.id).where(where).order_by(table.c.id.desc())
                              .offset(keep).limit(1)).scalar()
        if cutoff is None:
            return 0
        return conn.execute(sa.delete(table).where(where, table.c.id <= cutoff)).rowcount

    # ---- visitors of the public demo (engine/guard.py) --------------------------------------------------------
    def visitor_wait(self, conn, visitor: str, action: str, limit: int, window: float) -> float:
        """Seconds until `visitor` may do `action` again, at most `limit` times in any `window` seconds (0: now).

        Read inside the caller's transaction, on the database's clock, so every process agrees."""
        now = conn.execute(sa.select(db_now(self.engine.dialect.name))).scalar_one()
        times = conn.execute(sa.select(visitor_events.c.at).where(
            visitor_events.c.visitor == visitor, visitor_events.c.action == action,
            visitor_events.c.at > now - window).order_by(visitor_events.c.at.desc()).limit(limit)).scalars().all()
        return 0.0 if len(times) < limit else max(times[-1] + window - now, 0.0)

    def add_visitor_event(self, conn, visitor: str, action: str) -> None:
        """Record that `visitor` did `action` now (inside the caller's transaction)."""
        conn.execute(sa.insert(visitor_events).values(visitor=visitor, action=action,
                                                      at=db_now(self.engine.dialect.name)))

    def reset(self, by: str) -> dict[str, int]:
        """Delete every run, step, log line, audit row, toggle and alias move; audit the reset itself."""
        with self.tx() as c:
            self.lock(c, "lab-prune")
            removed = {t.name: c.execute(sa.delete(t)).rowcount
                       for t in (logs, steps, run_origin, runs, audit, failure_modes, alias_history,
                                 stream_claims, stream_snapshots, stream_state)}
            self.add_audit(c, by, "reset", comment="the lab was reset to a clean state", detail=removed)
        return removed

    def set_run_status(self, conn, run_id: int, current: str, target: RunStatus, **values) -> None:
        """Move a run from `current` to `target` (checked, conditional); IllegalTransition if it lost a race."""
        transition(RunStatus(current), target, f"run {run_id}")
        values.setdefault("updated_at", timestamp())
        if target in (RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL, RunStatus.PROMOTED, RunStatus.FAILED,
                      RunStatus.REJECTED, RunStatus.HELD, RunStatus.INTERRUPTED):
            values.setdefault("finished_at", values["updated_at"])
        res = conn.execute(sa.update(runs).where(runs.c.id == run_id, runs.c.status == current)
                           .values(status=target.value, **values))
        if res.rowcount != 1:
            raise IllegalTransition(f"run {run_id}", current, target.value, "its status changed meanwhile")

    def get_run_status(self, conn, run_id: int, lock: bool = False) -> str:
        """A run's current status, read inside the caller's transaction (with `lock`, the row stays locked)."""
        q = sa.select(runs.c.status).where(runs.c.id == run_id)
        if lock and self.is_postgres:
            q = q.with_for_update()
        return conn.execute(q).scalar_one()

    def lock_run(self, conn, run_id: int) -> dict | None:
        """Read a run with its row locked until the transaction ends (SQLite: the write lock is already held)."""
        q = sa.select(runs).where(runs.c.id == run_id)
        if self.is_postgres:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        return dict(row) if row else None

    # ---- steps ------------------------------------------------------------------------------------------
    def steps_of(self, run_id: int, conn=None) -> list[dict]:
        """The steps of a run in pipeline order."""
        q = sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.position)
        if conn is not None:
            return [dict(r) for r in conn.execute(q).mappings()]
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def steps_of_runs(self, run_ids: list[int]) -> dict[int, list[dict]]:
        """Steps of many runs in one query, by run id, each list in pipeline order."""
        out: dict[int, list[dict]] = {int(r): [] for r in run_ids}
        if not out:
            return out
        q = (sa.select(steps).where(steps.c.run_id.in_(list(out)))
             .order_by(steps.c.run_id, steps.c.position))
        with self.engine.connect() as c:
            for row in c.execute(q).mappings():
                out[row["run_id"]].append(dict(row))
        return out

    def step(self, run_id: int, name: str, conn=None) -> dict | None:
        """One step row."""
        q = sa.select(steps).where(steps.c.run_id == run_id, steps.c.name == name)
        if conn is not None:
            row = conn.execute(q).mappings().first()
        else:
            with self.engine.connect() as c:
                row = c.execute(q).mappings().first()
        return dict(row) if row else None

    def set_step_status(self, conn, step: dict, target: StepStatus, **values) -> None:
        """Move a step (checked, conditional); IllegalTransition if it lost a race."""
        transition(StepStatus(step["status"]), target, f"step {step['name']} of run {step['run_id']}")
        # The attempt is part of the condition: a worker that lost its step (released, or reaped and re-run)
        # must not overwrite the newer attempt that has the same status.
        res = conn.execute(sa.update(steps).where(steps.c.id == step["id"], steps.c.status == step["status"],
                                                  steps.c.attempt == step["attempt"])
                           .values(status=target.value, **values))
        if res.rowcount != 1:
            raise IllegalTransition(f"step {step['name']}", step["status"], target.value,
                                    "its status changed meanwhile")

    def queue_step(self, conn, run_id: int, name: str) -> None:
        """Queue step `name` of a run (it must be pending)."""
        self.set_step_status(conn, self.step(run_id, name, conn), StepStatus.QUEUED, queued_at=timestamp())

    def skip_pending(self, conn, run_id: int) -> None:
        """Mark the steps a stopped run will not reach as skipped."""
        skippable = [s.value for s in StepStatus if StepStatus.SKIPPED in STEP_MOVES[s]]
        conn.execute(sa.update(steps).where(steps.c.run_id == run_id, steps.c.status.in_(skippable))
                     .values(status=StepStatus.SKIPPED.value))

    def claim_step(self, worker: str) -> dict | None:
        """Atomically take the oldest queued step for `worker`; mark it running. None when nothing is queued."""
        now = timestamp()
        pick = (sa.select(steps.c.id).where(steps.c.status == StepStatus.QUEUED.value)
                .order_by(steps.c.queued_at, steps.c.id).limit(1))
        if self.is_postgres:
            pick = pick.with_for_update(skip_locked=True)
        with self.tx() as c:
            row = c.execute(
                sa.update(steps).where(steps.c.id == pick.scalar_subquery(),
                                       steps.c.status == StepStatus.QUEUED.value)
                .values(status=StepStatus.RUNNING.value, worker=worker, started_at=now,
                        heartbeat_at=db_now(self.engine.dialect.name),
                        finished_at=None, error=None, outputs=None, attempt=steps.c.attempt + 1)
                .returning(*steps.c)
            ).mappings().first()
            if row is None:
                return None
            run = c.execute(sa.select(runs.c.status).where(runs.c.id == row["run_id"])).scalar_one()
            if run == RunStatus.QUEUED.value:
                self.set_run_status(c, row["run_id"], run, RunStatus.RUNNING)
            return dict(row)

    def heartbeat(self, step_ids: Iterable[int]) -> set[int]:
        """Record that running steps are alive (on the database's clock); return the ids still running."""
        ids = list(step_ids)
        if not ids:
            return set()
        with self.tx() as c:
            c.execute(sa.update(steps).where(steps.c.id.in_(ids), steps.c.status == StepStatus.RUNNING.value)
                      .values(heartbeat_at=db_now(self.engine.dialect.name)))
            rows = c.execute(sa.select(steps.c.id).where(steps.c.id.in_(ids),
                                                         steps.c.status == StepStatus.RUNNING.value))
            return {r.id for r in rows}

    def stale_steps(self, older_than: float, conn=None, run_id: int | None = None) -> list[dict]:
        """Running steps whose heartbeat is older than `older_than` seconds on the database's clock.

        Each row carries `silent_for`: seconds since its last heartbeat.
        """
        now = db_now(self.engine.dialect.name)
        q = (sa.select(steps, (now - steps.c.heartbeat_at).label("silent_for"))
             .where(steps.c.status == StepStatus.RUNNING.value, steps.c.heartbeat_at < now - older_than)
             .order_by(steps.c.run_id, steps.c.position))
        if run_id is not None:
            q = q.where(steps.c.run_id == run_id)
        with (self._within(conn) if conn is not None else self.engine.connect()) as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def interrupt_run(self, conn, run_id: int, message: str) -> list[dict]:
        """In the caller's transaction: every running or queued step of the run, and the run, become interrupted.

        A run stopped by one dead step must not keep a sibling `running` or `queued`: a retry in that gap would
        requeue from the wrong place and leave nothing claimable. Returns the steps interrupted.
        """
        run = self.lock_run(conn, run_id)
        if run is None:  # deleted meanwhile (a reset)
            return []
        status = RunStatus(run["status"])
        live = (StepStatus.RUNNING.value, StepStatus.QUEUED.value)
        hit = [dict(r) for r in conn.execute(sa.select(steps).where(steps.c.run_id == run_id,
                                                                   steps.c.status.in_(live))).mappings()]
        for step in hit:
            self.set_step_status(conn, step, StepStatus.INTERRUPTED, error=message,
                                 finished_at=timestamp())
        if status in (RunStatus.QUEUED, RunStatus.RUNNING):
            self.set_run_status(conn, run_id, status.value, RunStatus.INTERRUPTED)
        self.skip_pending(conn, run_id)
        return hit

    # ---- logs -------------------------------------------------------------------------------------------
    def add_log(self, run_id: int, step: str, attempt: int, level: str, message: str) -> None:
        """Append one log line (committed at once, so readers see it while the step runs)."""
        with self.tx() as c:
            c.execute(sa.insert(logs).values(run_id=run_id, step=step, attempt=attempt, ts=timestamp(),
                                             level=level, message=message))

    def logs_of(self, run_id: int, step: str | None = None, after_id: int = 0, limit: int = 2000) -> list[dict]:
        """Log lines of a run (or one step) with id > after_id, oldest first."""
        q = sa.select(logs).where(logs.c.run_id == run_id, logs.c.id > after_id)
        if step:
            q = q.where(logs.c.step == step)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q.order_by(logs.c.id).limit(limit)).mappings()]

    # ---- audit, failure modes, alias history ------------------------------------------------------------
    def add_audit(self, conn, actor: str, action: str, run_id: int | None = None, comment: str = "",
                  detail: dict | None = None) -> None:
        """Record who did what (inside the caller's transaction, so it commits with the change)."""
        conn.execute(sa.insert(audit).values(ts=timestamp(), actor=actor, action=action, run_id=run_id,
                                             comment=comment, detail=detail or {}))

    def audit_trail(self, limit: int = 500, run_id: int | None = None) -> list[dict]:
        """Newest audit events first."""
        q = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
        if run_id is not None:
            q = q.where(audit.c.run_id == run_id)
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def failure_modes(self) -> dict[str, bool]:
        """Persisted toggles by name (only the ones ever set)."""
        with self.engine.connect() as c:
            return {r.name: r.enabled for r in c.execute(sa.select(failure_modes))}

    def set_failure_mode(self, name: str, enabled: bool, actor: str, conn=None) -> None:
        """Persist one toggle and audit it (in the caller's transaction, if given)."""
        with self._within(conn) as c:
            updated = c.execute(sa.update(failure_modes).where(failure_modes.c.name == name)
                                .values(enabled=enabled, updated_at=timestamp())).rowcount
            if not updated:
                c.execute(sa.insert(failure_modes).values(name=name, enabled=enabled, updated_at=timestamp()))
            self.add_audit(c, actor, "failure_mode", comment=f"{name} {'on' if enabled else 'off'}",
                           detail={"mode": name, "enabled": enabled})

    def lock(self, conn, name: str) -> None:
        """Serialise a critical section across processes until the transaction ends (SQLite: already serial)."""
        if self.is_postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})

    def record_alias(self, conn, alias: str, version: int, run_id: int | None, by: str, reason: str,
                     action: str) -> None:
        """Close the alias's open history row and open a new one for `version`."""
        now = timestamp()
        conn.execute(sa.update(alias_history).where(alias_history.c.alias == alias, alias_history.c.until.is_(None))
                     .values(until=now))
        conn.execute(sa.insert(alias_history).values(alias=alias, version=version, run_id=run_id, since=now,
                                                     moved_by=by, reason=reason, action=action))

    def move_alias(self, tracking, alias: str, version: int, run_id: int | None, by: str, reason: str,
                   action: str, expect_current: int | None = None, tags=None) -> int | None:
        """Point MLflow `alias` at `version` (tagging the version with `tags`, a dict or a function of the
        previous holder), record the move, serialised per alias; return the previous holder.

        All or nothing: the history and audit rows are written first in an open transaction, then the tags and
        the alias (each undone if anything after it fails), then the transaction commits. With
        `expect_current`, refuse (Refused, nothing changed) if another process moved the alias meanwhile.
        """
        with Undo() as undo, self.tx() as c:  # the commit is inside Undo: a failed commit undoes too
            self.lock(c, f"alias:{alias}")
            previous = tracking.alias_version(alias)  # strict: an MLflow outage raises, never reads as "none"
            if expect_current is not None and previous != expect_current:
                raise Refused(f"{alias} moved to version {previous} meanwhile; look again before acting")
            self.record_alias(c, alias, version, run_id, by, reason, action)
            self.add_audit(c, by, f"{action}:{alias}", run_id, reason, {"from": previous, "to": version})
            tags = tags(previous) if callable(tags) else tags
            if tags:
                undo.tag_version(tracking, version, tags)
            undo.set_alias(tracking, alias, version, previous)
        return previous

    def alias_history_of(self, alias: str) -> list[dict]:
        """Every holder of `alias`, oldest first."""
        with self.engine.connect() as c:
            rows = c.execute(sa.select(alias_history).where(alias_history.c.alias == alias)
                             .order_by(alias_history.c.id))
            return [dict(r) for r in rows.mappings()]

    def latest_change(self) -> tuple:
        """(newest run id, newest audit id, newest alias move id) in one query over three primary keys: it changes
        whenever a run is created or anyone acts (every action writes an audit row), so pages can poll it."""
        newest = [sa.select(sa.func.max(t.c.id)).scalar_subquery() for t in (runs, audit, alias_history)]
        with self.engine.connect() as c:
            return tuple(c.execute(sa.select(*newest)).one())

    # ---- workers ----------------------------------------------------------------------------------------
    def beat_worker(self, worker_id: str, host: str, pid: int, started_at: float, active_steps: int) -> None:
        """Register a runner or renew its heartbeat (on the database's clock)."""
        now = db_now(self.engine.dialect.name)
        with self.tx() as c:
            done = c.execute(sa.update(workers).where(workers.c.id == worker_id)
                             .values(heartbeat_at=now, active_steps=active_steps)).rowcount
            if not done:
                c.execute(sa.insert(workers).values(id=worker_id, host=host, pid=pid, started_at=started_at,
                                                    heartbeat_at=now, active_steps=active_steps))

    def drop_worker(self, worker_id: str) -> None:
        """Remove a runner that stopped cleanly."""
        with self.tx() as c:
            c.execute(sa.delete(workers).where(workers.c.id == worker_id))

    def list_workers(self, stale_seconds: float) -> list[dict]:
        """Registered runners, newest heartbeat first, each with `silent_for` seconds and `alive`."""
        now = db_now(self.engine.dialect.name)
        q = sa.select(workers, (now - workers.c.heartbeat_at).label("silent_for")).order_by(
            workers.c.heartbeat_at.desc())
        with self.engine.connect() as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
        for r in rows:
            r["alive"] = r["silent_for"] < stale_seconds
        return rows

    def forget_dead_workers(self, older_than: float) -> int:
        """Delete registrations silent for longer than `older_than` seconds (killed runners never deregister)."""
        now = db_now(self.engine.dialect.name)
        with self.tx() as c:
            return c.execute(sa.delete(workers).where(workers.c.heartbeat_at < now - older_than)).rowcount

    def row_counts(self) -> dict[str, Any]:
        """Rows per table (for status and benchmarks)."""
        with self.engine.connect() as c:
            return {t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in metadata.sorted_tables}
