"""The state store: SQLAlchemy Core over SQLite (embedded) or PostgreSQL (full stack and scale-out).

The schema is Alembic's (engine/migrations): a store is migrated to this code's revision when opened. Status
changes are conditional updates (`WHERE status = <expected>`), so two processes racing for the same move cannot
both win. Queued steps are claimed with `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING ...` on PostgreSQL; SQLite serialises writers, which gives the same guarantee there.
"""
from __future__ import annotations

import logging
import select
import time
from contextlib import contextmanager
from time import monotonic  # the wait callback's own clock (tests may replace `time` here)
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy import event

from engine import pipeline
from engine.records import AuditEntry, Run, Step
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

# Who is alive, on the database's clock: each runner's registration ("worker:<id>", its host, pid and load in
# `detail`), the stream producer's lease ("stream:producer") and each playing demo session ("autopilot:<id>"). One
# table and one set of helpers (Store.renew, take, release, leases, forget), so liveness is judged one way.
leases = sa.Table(
    "leases", metadata,
    sa.Column("name", sa.String(160), primary_key=True),
    sa.Column("owner", sa.String(120), nullable=False),    # host:pid:random for a runner, as in steps.worker
    sa.Column("since", sa.Float, nullable=False),          # the database's clock, as renewed_at
    sa.Column("renewed_at", sa.Float, nullable=False),
    sa.Column("detail", sa.JSON),
)
WORKER = "worker:"
AUTOPILOT = "autopilot:"
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
stream_state = sa.Table(  # one row: the stream's controls and its position (the producer's lease: leases)
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

# ---- the demo autopilot (engine/autopilot.py): its sessions and their narration; a playing session holds the lease
# AUTOPILOT + its id, renewed while it plays ----------------------------------------------------------------------
autopilot_sessions = sa.Table(
    "autopilot_sessions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("by", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Column("outcome", sa.String(20)),             # done, failed, stopped or error; None while it plays
    sa.Column("stop_requested", sa.Boolean, nullable=False, default=False),
    sa.Column("visitor", sa.String(120)),             # who pressed Play (engine/guard.py); None from the CLI
)
autopilot_log = sa.Table(
    "autopilot_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session", sa.Integer, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),  # info, success, warning, error
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("run_id", sa.Integer),
    sa.Index("ix_autopilot_log_session", "session", "id"),
)


# The labelled production claims a retrain on production data was committed with (Lab.retrain_on_production), copied
# from stream_claims in the run's own transaction: the stream's retention cannot take them away mid-run, and a retry
# sees the very same rows. `part` is the time-based split: the older claims train, the newest judge.
run_claims = sa.Table(
    "run_claims", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),  # the claim's place in the stream
    sa.Column("part", sa.String(16), nullable=False),            # "training" or "evaluation"
    sa.Column("claim_id", sa.BigInteger, nullable=False),
    sa.Column("ts", sa.Float, nullable=False),                    # when production scored it
    sa.Column("cpt_bucket", sa.String(40), nullable=False),
    sa.Column("provider_type", sa.String(40), nullable=False),
    sa.Column("diagnosis_group", sa.String(40), nullable=False),
    sa.Column("billed_amount", sa.Float, nullable=False),
    sa.Column("allowed_amount", sa.Float, nullable=False),
    sa.Column("patient_age", sa.Float, nullable=False),
    sa.Column("outcome", sa.Boolean, nullable=False),             # the label that had arrived
)
CLAIM_COLUMNS = ("claim_id", "ts", "cpt_bucket", "provider_type", "diagnosis_group", "billed_amount",
                 "allowed_amount", "patient_age", "outcome")


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


CLIENT_MARGIN = 2.0  # seconds a statement may run past the server's statement_timeout before the client gives up
_wait_limits = {"connect": 0.0, "statement": 0.0}


def _wait_with_deadline(conn) -> None:
    """psycopg2's wait callback: libpq's I/O, given up after a deadline the client keeps itself.

    PostgreSQL enforces statement_timeout on the server, so a server that hangs (SIGSTOP, a frozen VM) never
    answers it and a pooled connection would wait for ever. The error raised reads as a lost connection, so
    SQLAlchemy discards that connection and the caller sees an outage like any other.
    """
    import psycopg2
    from psycopg2 import extensions as ext
    limit = _wait_limits["connect" if conn.status == ext.STATUS_SETUP else "statement"]
    deadline = monotonic() + limit
    while True:
        state = conn.poll()
        if state == ext.POLL_OK:
            return
        left = deadline - monotonic()
        if left <= 0:
            raise psycopg2.OperationalError(
                f"could not receive data from server: client-side timeout, no answer in {limit:.0f} s (the "
                "database hangs?)")
        readable, writable = ([conn.fileno()], []) if state == ext.POLL_READ else ([], [conn.fileno()])
        select.select(readable, writable, [], left)


def _limit_every_wait(connect_timeout: float, statement_limit: float) -> None:
    """Route every psycopg2 wait in this process through _wait_with_deadline (the callback is process-wide, so
    MLflow's own PostgreSQL connections are bounded too), with the most generous limits any engine asked for."""
    from psycopg2 import extensions as ext
    _wait_limits["connect"] = max(_wait_limits["connect"], connect_timeout)
    _wait_limits["statement"] = max(_wait_limits["statement"], statement_limit)
    ext.set_wait_callback(_wait_with_deadline)


@contextmanager
def advisory_lock(url: str, name: str):
    """Hold a PostgreSQL session advisory lock named `name` in the database at `url` (another service's, such as
    MLflow's backend) for the block, on a connection of its own. The lab's SQL stays in this module."""
    eng = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": 5})
    try:
        with eng.connect() as c:
            c.execute(sa.text("SELECT pg_advisory_lock(hashtext(:n))"), {"n": name})
            try:
                yield
            finally:
                c.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:n))"), {"n": name})
                c.commit()
    finally:
        eng.dispose()


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
    _limit_every_wait(connect_timeout, statement_timeout + CLIENT_MARGIN)
    return sa.create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={
        "connect_timeout": max(1, round(connect_timeout)),
        "options": f"-c statement_timeout={int(statement_timeout * 1000)}",
        # A peer that vanished (host down, network cut) is noticed in seconds, not after the kernel's hours.
        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 3})


class Store:
    """All reads and writes of pipeline state."""

    def __init__(self, url: str, connect_timeout: float = 5.0, statement_timeout: float = 8.0):
        self.url = url
        self.engine = make_engine(url, connect_timeout, statement_timeout)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # Workers and replicas opening a store together would race to migrate it (PostgreSQL: duplicate key in
        # pg_type); one at a time under a lock, the others find it at head.
        from engine import migrations
        with self.tx() as conn:
            self.lock(conn, "lab-schema")
            migrations.upgrade(conn)

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

    def get_run(self, run_id: int) -> Run | None:
        """One run (with its trigger, data shift and origin; "commit", None, None when none was recorded), or None."""
        query = self._with_origin().where(runs.c.id == run_id)
        with self.engine.connect() as c:
            row = c.execute(query).mappings().first()
        return Run.from_row(row) if row else None

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

    # ---- production claims for retraining ---------------------------------------------------------------------
    def labelled_span(self, first: int = 0) -> dict:
        """Stored stream claims from seq `first` on whose outcome has arrived: {"first", "end" (one past the newest),
        "count", "since_ts", "until_ts"}. Outcomes arrive in seq order, so they are one contiguous run."""
        c_ = stream_claims.c
        query = sa.select(sa.func.min(c_.seq), sa.func.max(c_.seq), sa.func.count(), sa.func.min(c_.ts),
                          sa.func.max(c_.ts)).where(c_.outcome.is_not(None), c_.seq >= int(first))
        with self.engine.connect() as c:
            lo, hi, count, since, until = c.execute(query).one()
        return {"first": lo, "end": None if hi is None else hi + 1, "count": count, "since_ts": since,
                "until_ts": until}

    def copy_production_claims(self, conn, run_id: int, first: int, cut: int, end: int) -> dict[str, int]:
        """Copy the labelled stream claims first <= seq < end to `run_id` (before `cut`: training, from it:
        evaluation), in the caller's transaction; return how many of each were copied."""
        c_ = stream_claims.c
        part = sa.case((c_.seq < int(cut), "training"), else_="evaluation")
        source = sa.select(sa.literal(int(run_id)), c_.seq, part, *[c_[n] for n in CLAIM_COLUMNS]).where(
            c_.outcome.is_not(None), c_.seq >= int(first), c_.seq < int(end))
        conn.execute(sa.insert(run_claims).from_select(["run_id", "seq", "part", *CLAIM_COLUMNS], source))
        rows = conn.execute(sa.select(run_claims.c.part, sa.func.count()).where(run_claims.c.run_id == run_id)
                            .group_by(run_claims.c.part)).all()
        return {"training": 0, "evaluation": 0, **{p: n for p, n in rows}}

    def run_claims(self, run_id: int, part: str, limit: int | None = None) -> list[dict]:
        """A run's copied production claims of `part`, oldest first (the first `limit`)."""
        query = (sa.select(run_claims.c.seq, *[run_claims.c[n] for n in CLAIM_COLUMNS])
                 .where(run_claims.c.run_id == run_id, run_claims.c.part == part).order_by(run_claims.c.seq))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query.limit(limit) if limit else query).mappings()]

    def production_traffic(self, first: int, limit: int) -> list[dict]:
        """The newest `limit` labelled stream claims from seq `first` on, oldest first (what production serves
        now; the served decision and versions included)."""
        c_ = stream_claims.c
        query = (sa.select(c_.seq, *[c_[n] for n in CLAIM_COLUMNS], c_.champion_version, c_.approved)
                 .where(c_.outcome.is_not(None), c_.seq >= int(first)).order_by(c_.seq.desc()).limit(int(limit)))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()][::-1]

    def runs_with_trigger(self, triggers, since: float) -> list[Run]:
        """Runs of any of `triggers` created at or after `since`, newest first."""
        query = (self._with_origin().where(run_origin.c.trigger.in_(list(triggers)), runs.c.created_at >= since)
                 .order_by(runs.c.id.desc()))
        with self.engine.connect() as c:
            return [Run.from_row(r) for r in c.execute(query).mappings()]

    def list_runs(self, limit: int = 50, offset: int = 0, statuses: Iterable[str] | None = None) -> list[Run]:
        """Newest runs first (each with where it came from, as get_run)."""
        q = self._with_origin().order_by(runs.c.id.desc()).limit(limit).offset(offset)
        if statuses:
            q = q.where(runs.c.status.in_([str(s) for s in statuses]))
        with self.engine.connect() as c:
            return [Run.from_row(r) for r in c.execute(q).mappings()]

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
                for table in (logs, audit, steps, run_claims, run_origin):
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
                       for t in (logs, steps, run_claims, run_origin, runs, audit, failure_modes, alias_history,
                                 stream_claims, stream_snapshots, stream_state)}
            self.add_audit(c, by, "reset", comment="the lab was reset to a clean state", detail=removed)
        return removed

    def set_run_status(self, conn, run_id: int, current: RunStatus, target: RunStatus, **values) -> None:
        """Move a run from `current` to `target` (checked, conditional); IllegalTransition if it lost a race."""
        current = RunStatus(current)
        transition(current, target, f"run {run_id}")
        values.setdefault("updated_at", timestamp())
        if target in (RunStatus.CI_COMPLETE, RunStatus.AWAITING_APPROVAL, RunStatus.PROMOTED, RunStatus.FAILED,
                      RunStatus.REJECTED, RunStatus.HELD, RunStatus.INTERRUPTED):
            values.setdefault("finished_at", values["updated_at"])
        res = conn.execute(sa.update(runs).where(runs.c.id == run_id, runs.c.status == current.value)
                           .values(status=target.value, **values))
        if res.rowcount != 1:
            raise IllegalTransition(f"run {run_id}", current.value, target.value, "its status changed meanwhile")

    def get_run_status(self, conn, run_id: int, lock: bool = False) -> RunStatus:
        """A run's current status, read inside the caller's transaction (with `lock`, the row stays locked)."""
        q = sa.select(runs.c.status).where(runs.c.id == run_id)
        if lock and self.is_postgres:
            q = q.with_for_update()
        return RunStatus(conn.execute(q).scalar_one())

    def lock_run(self, conn, run_id: int) -> Run | None:
        """Read a run with its row locked until the transaction ends (SQLite: the write lock is already held)."""
        q = self._with_origin().where(runs.c.id == run_id)
        if self.is_postgres:
            q = q.with_for_update(of=runs)
        row = conn.execute(q).mappings().first()
        return Run.from_row(row) if row else None

    # ---- steps ------------------------------------------------------------------------------------------
    def steps_of(self, run_id: int, conn=None) -> list[Step]:
        """The steps of a run in pipeline order."""
        q = sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.position)
        if conn is not None:
            return [Step.from_row(r) for r in conn.execute(q).mappings()]
        with self.engine.connect() as c:
            return [Step.from_row(r) for r in c.execute(q).mappings()]

    def steps_of_runs(self, run_ids: list[int]) -> dict[int, list[Step]]:
        """Steps of many runs in one query, by run id, each list in pipeline order."""
        out: dict[int, list[Step]] = {int(r): [] for r in run_ids}
        if not out:
            return out
        q = (sa.select(steps).where(steps.c.run_id.in_(list(out)))
             .order_by(steps.c.run_id, steps.c.position))
        with self.engine.connect() as c:
            for row in c.execute(q).mappings():
                out[row["run_id"]].append(Step.from_row(row))
        return out

    def step(self, run_id: int, name: str, conn=None) -> Step | None:
        """One step row."""
        q = sa.select(steps).where(steps.c.run_id == run_id, steps.c.name == name)
        if conn is not None:
            row = conn.execute(q).mappings().first()
        else:
            with self.engine.connect() as c:
                row = c.execute(q).mappings().first()
        return Step.from_row(row) if row else None

    def set_step_status(self, conn, step: Step, target: StepStatus, **values) -> None:
        """Move a step (checked, conditional); IllegalTransition if it lost a race."""
        transition(step.status, target, f"step {step.name} of run {step.run_id}")
        # The attempt is part of the condition: a worker that lost its step (released, or reaped and re-run)
        # must not overwrite the newer attempt that has the same status.
        res = conn.execute(sa.update(steps).where(steps.c.id == step.id, steps.c.status == step.status.value,
                                                  steps.c.attempt == step.attempt)
                           .values(status=target.value, **values))
        if res.rowcount != 1:
            raise IllegalTransition(f"step {step.name}", step.status.value, target.value,
                                    "its status changed meanwhile")

    def queue_step(self, conn, run_id: int, name: str) -> None:
        """Queue step `name` of a run (it must be pending)."""
        self.set_step_status(conn, self.step(run_id, name, conn), StepStatus.QUEUED, queued_at=timestamp())

    def skip_pending(self, conn, run_id: int) -> None:
        """Mark the steps a stopped run will not reach as skipped."""
        skippable = [s.value for s in StepStatus if StepStatus.SKIPPED in STEP_MOVES[s]]
        conn.execute(sa.update(steps).where(steps.c.run_id == run_id, steps.c.status.in_(skippable))
                     .values(status=StepStatus.SKIPPED.value))

    def claim_step(self, worker: str) -> Step | None:
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
            if self.get_run_status(c, row["run_id"]) is RunStatus.QUEUED:
                self.set_run_status(c, row["run_id"], RunStatus.QUEUED, RunStatus.RUNNING)
            return Step.from_row(row)

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

    def stale_steps(self, older_than: float, conn=None, run_id: int | None = None) -> list[Step]:
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
            return [Step.from_row(r) for r in c.execute(q).mappings()]

    def interrupt_run(self, conn, run_id: int, message: str) -> list[Step]:
        """In the caller's transaction: every running or queued step of the run, and the run, become interrupted.

        A run stopped by one dead step must not keep a sibling `running` or `queued`: a retry in that gap would
        requeue from the wrong place and leave nothing claimable. Returns the steps interrupted.
        """
        run = self.lock_run(conn, run_id)
        if run is None:  # deleted meanwhile (a reset)
            return []
        status = run.status
        live = (StepStatus.RUNNING.value, StepStatus.QUEUED.value)
        hit = [Step.from_row(r) for r in conn.execute(sa.select(steps).where(steps.c.run_id == run_id,
                                                                   steps.c.status.in_(live))).mappings()]
        for step in hit:
            self.set_step_status(conn, step, StepStatus.INTERRUPTED, error=message,
                                 finished_at=timestamp())
        if status in (RunStatus.QUEUED, RunStatus.RUNNING):
            self.set_run_status(conn, run_id, status, RunStatus.INTERRUPTED)
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

    def audit_trail(self, limit: int = 500, run_id: int | None = None, action: str | None = None) -> list[AuditEntry]:
        """Newest audit events first (of one run, or one action, when given)."""
        q = sa.select(audit).order_by(audit.c.id.desc()).limit(limit)
        if run_id is not None:
            q = q.where(audit.c.run_id == run_id)
        if action is not None:
            q = q.where(audit.c.action == action)
        with self.engine.connect() as c:
            return [AuditEntry.from_row(r) for r in c.execute(q).mappings()]

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

    # ---- the live claims stream (engine/stream.py) ---------------------------------------------------------------
    def stream_state(self, defaults: dict, conn=None) -> dict:
        """The stream's one state row; inside a transaction (`conn`) locked where the backend can. Created from
        `defaults` (everything but id and updated_at) on first use."""
        if conn is None:
            with self.engine.connect() as c:
                row = c.execute(sa.select(stream_state).where(stream_state.c.id == 1)).mappings().first()
            if row is not None:
                return dict(row)
            with self.tx() as c:
                return self.stream_state(defaults, c)
        query = sa.select(stream_state).where(stream_state.c.id == 1)
        if self.is_postgres:
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            self.lock(conn, "stream-state")
            row = conn.execute(query).mappings().first()
        if row is None:
            row = {"id": 1, **defaults, "updated_at": timestamp(), "updated_by": ""}
            conn.execute(sa.insert(stream_state).values(**row))
        return dict(row)

    def set_stream(self, conn, **values) -> None:
        """Change the stream's state row (read it first with stream_state(conn=...), which creates it)."""
        conn.execute(sa.update(stream_state).where(stream_state.c.id == 1).values(**values))

    def advance_stream(self, conn, start: int, end: int, produced_at: float, labelled_seq: int | None = None) -> bool:
        """Move the stream from claim `start` to `end` (and its labels to `labelled_seq`, when given) if it is on and
        still at `start` (another producer or a Stop did not come in between); whether it moved."""
        values = {"next_seq": end, "produced_at": produced_at}
        if labelled_seq is not None:
            values["labelled_seq"] = labelled_seq
        return bool(conn.execute(sa.update(stream_state).where(
            stream_state.c.id == 1, stream_state.c.next_seq == start, stream_state.c.enabled.is_(True))
            .values(**values)).rowcount)

    def add_stream_claims(self, conn, columns: dict[str, list], label_until: int, labelled_from: int,
                          keep_from: int, kept_from: int | None = None) -> None:
        """Store a batch of scored claims, given column by column (every stream_claims column but `outcome` and
        `labelled_at`, one list each, `seq` ascending); give the outcome to every claim before `label_until` not
        labelled yet (from `labelled_from`); forget claims before `keep_from` (retention), only those from
        `kept_from` when the caller knows none is older. The caller records the new labelled_seq (advance_stream).

        At most three statements whatever the batch's size: the batch is one INSERT (on PostgreSQL its columns
        travel as array literals unnested by the server, several times cheaper than a multi-row VALUES), its own
        claims already due are stored labelled, and one UPDATE labels the earlier claims whose outcome arrives now
        (at a high rate only the last label_delay of the previous batch, not the whole batch again)."""
        seqs, now = columns["seq"], timestamp()
        due = [labelled_from <= s < label_until for s in seqs]
        columns = {**columns, "outcome": [h if d else None for h, d in zip(columns["hidden_outcome"], due)],
                   "labelled_at": [now if d else None for d in due]}
        if self.is_postgres:
            given = [c for c in stream_claims.c if c.name in columns]
            conn.execute(self._claims_from_arrays(given), {c.name: self._array_literal(
                columns[c.name], isinstance(c.type, sa.String)) for c in given})
        else:
            names = list(columns)
            conn.execute(sa.insert(stream_claims), [dict(zip(names, row)) for row in zip(*columns.values())])
        earlier = min(label_until, seqs[0]) if seqs else label_until
        if earlier > labelled_from:
            conn.execute(sa.update(stream_claims).where(stream_claims.c.seq >= labelled_from,
                                                        stream_claims.c.seq < earlier)
                         .values(outcome=stream_claims.c.hidden_outcome, labelled_at=now))
        if keep_from > max(kept_from or 0, 0):
            # A range from `kept_from` is found in the primary key at once; an open one (`seq < keep_from`) makes
            # PostgreSQL walk every forgotten claim autovacuum has not removed yet (or scan the whole table).
            older = stream_claims.c.seq >= kept_from if kept_from is not None else sa.true()
            conn.execute(sa.delete(stream_claims).where(older, stream_claims.c.seq < keep_from))

    @staticmethod
    def _claims_from_arrays(columns: list[sa.Column]) -> sa.Insert:
        """INSERT INTO stream_claims (columns) SELECT * FROM unnest(<one array parameter per column>) (PostgreSQL)."""
        from sqlalchemy.dialects.postgresql import ARRAY
        names = [c.name for c in columns]
        rows = sa.func.unnest(*[sa.cast(sa.bindparam(c.name, type_=sa.Text), ARRAY(c.type))
                                for c in columns]).table_valued(*names).render_derived()
        return sa.insert(stream_claims).from_select(names, sa.select(*rows.c))

    @staticmethod
    def _array_literal(values: list, text: bool) -> str:
        """`values` as a PostgreSQL array literal, as the server's array_in reads it: None is NULL, `text` elements are
        quoted and escaped (each distinct value once: claims repeat a few categories), others are numbers or
        booleans, whose str() it reads (and which never contains "None")."""
        if text:
            quoted = {v: "NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                      for v in set(values)}
            return "{" + ",".join(map(quoted.__getitem__, values)) + "}"
        return "{" + ",".join(map(str, values)).replace("None", "NULL") + "}"

    def stream_counts(self) -> tuple[int, int]:
        """(claims stored, claims whose label has arrived)."""
        with self.engine.connect() as c:
            stored = c.execute(sa.select(sa.func.count()).select_from(stream_claims)).scalar_one()
            labelled = c.execute(sa.select(sa.func.count()).select_from(stream_claims)
                                 .where(stream_claims.c.outcome.is_not(None))).scalar_one()
        return stored, labelled

    def newest_claims(self, limit: int, columns: Iterable[str] | None = None) -> tuple[list[str], list[tuple]]:
        """(column names, rows) of the newest `limit` stored claims, newest first; every column but the held-back
        truth unless `columns` are named."""
        cols = [stream_claims.c[n] for n in columns] if columns else \
            [c for c in stream_claims.c if c.name != "hidden_outcome"]
        with self.engine.connect() as c:
            rows = c.execute(sa.select(*cols).order_by(stream_claims.c.seq.desc()).limit(int(limit))).all()
        return [c.name for c in cols], [tuple(r) for r in rows]

    def stream_snapshots(self, limit: int, snapshot_id: int | None = None) -> list[dict]:
        """Stored snapshots, newest first (the one with `snapshot_id`, if given)."""
        q = sa.select(stream_snapshots).order_by(stream_snapshots.c.id.desc()).limit(int(limit))
        if snapshot_id is not None:
            q = q.where(stream_snapshots.c.id == int(snapshot_id))
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def add_snapshot(self, row: dict) -> int:
        """Store a snapshot; its id."""
        with self.tx() as c:
            return c.execute(sa.insert(stream_snapshots).values(**row).returning(stream_snapshots.c.id)).scalar_one()

    # ---- leases and heartbeats (the database's clock) ---------------------------------------------------------
    def renew(self, name: str, owner: str, detail: dict | None = None, conn=None) -> None:
        """Hold lease `name` for `owner` now (a heartbeat of something only `owner` holds, such as its own
        registration), with `detail` when given."""
        now = db_now(self.engine.dialect.name)
        values = {"owner": owner, "renewed_at": now, **({"detail": detail} if detail is not None else {})}
        with self._within(conn) as c:
            if not c.execute(sa.update(leases).where(leases.c.name == name).values(**values)).rowcount:
                c.execute(sa.insert(leases).values(name=name, since=now, **{"detail": detail, **values}))

    def take(self, name: str, owner: str, stale_seconds: float) -> bool:
        """Hold lease `name` for `owner` if it is free, already `owner`'s, or silent for `stale_seconds`; whether
        `owner` holds it now. Serialised per lease, so two takers never both win."""
        now = db_now(self.engine.dialect.name)
        with self.tx() as c:
            self.lock(c, f"lease:{name}")
            row = c.execute(sa.select(leases.c.owner, (now - leases.c.renewed_at).label("silent_for"))
                            .where(leases.c.name == name)).first()
            if row is not None and row.owner != owner and row.silent_for < stale_seconds:
                return False
            if row is not None and row.owner != owner:
                c.execute(sa.delete(leases).where(leases.c.name == name))  # a dead holder's: taken over
            self.renew(name, owner, conn=c)
        return True

    def release(self, name: str, owner: str) -> None:
        """Give lease `name` up if `owner` holds it."""
        with self.tx() as c:
            c.execute(sa.delete(leases).where(leases.c.name == name, leases.c.owner == owner))

    def holder(self, name: str, stale_seconds: float, conn=None) -> dict | None:
        """Who holds lease `name`: {owner, since, silent_for, alive, detail}, or None when nobody does."""
        rows = self.leases(name, stale_seconds, conn=conn, exact=True)
        return rows[0] if rows else None

    def leases(self, prefix: str, stale_seconds: float, conn=None, exact: bool = False) -> list[dict]:
        """Leases whose name starts with `prefix` (or is it, with exact), newest renewal first, each with
        `silent_for` seconds and `alive` (silent for less than `stale_seconds`), on the database's clock."""
        now = db_now(self.engine.dialect.name)
        where = leases.c.name == prefix if exact else leases.c.name.startswith(prefix, autoescape=True)
        q = (sa.select(leases, (now - leases.c.renewed_at).label("silent_for")).where(where)
             .order_by(leases.c.renewed_at.desc()))
        with self._reading(conn) as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
        for r in rows:
            r["alive"] = r["silent_for"] < stale_seconds
        return rows

    def forget(self, prefix: str, older_than: float) -> int:
        """Delete leases under `prefix` silent for longer than `older_than` seconds (their holders died)."""
        now = db_now(self.engine.dialect.name)
        with self.tx() as c:
            return c.execute(sa.delete(leases).where(leases.c.name.startswith(prefix, autoescape=True),
                                                     leases.c.renewed_at < now - older_than)).rowcount

    @contextmanager
    def _reading(self, conn):
        """The caller's connection, or a new one for a read."""
        if conn is not None:
            yield conn
        else:
            with self.engine.connect() as c:
                yield c

    # ---- workers (runners: leases under WORKER) --------------------------------------------------------------
    def beat_worker(self, worker_id: str, host: str, pid: int, started_at: float, active_steps: int) -> None:
        """Register a runner or renew its heartbeat."""
        self.renew(WORKER + worker_id, worker_id, {"host": host, "pid": pid, "started_at": started_at,
                                                   "active_steps": active_steps})

    def drop_worker(self, worker_id: str) -> None:
        """Remove a runner that stopped cleanly."""
        self.release(WORKER + worker_id, worker_id)

    def list_workers(self, stale_seconds: float) -> list[dict]:
        """Registered runners, newest heartbeat first: id, host, pid, started_at, active_steps, heartbeat_at,
        `silent_for` seconds and `alive`."""
        return [{"id": r["owner"], **(r["detail"] or {}), "heartbeat_at": r["renewed_at"],
                 "silent_for": r["silent_for"], "alive": r["alive"]} for r in self.leases(WORKER, stale_seconds)]

    def forget_dead_workers(self, older_than: float) -> int:
        """Delete registrations silent for longer than `older_than` seconds (killed runners never deregister)."""
        return self.forget(WORKER, older_than)

    # ---- the demo autopilot's sessions (engine/autopilot.py) -----------------------------------------------------
    def autopilot_sessions(self, stale_seconds: float, session: int | None = None, playing: bool = False,
                           limit: int | None = None, conn=None) -> list[dict]:
        """Sessions, newest first (one, with `session`; only unfinished ones, with `playing`), each with `alive`:
        unfinished and its lease renewed within `stale_seconds`."""
        q = sa.select(autopilot_sessions).order_by(autopilot_sessions.c.id.desc()).limit(limit)
        if session is not None:
            q = q.where(autopilot_sessions.c.id == session)
        if playing:
            q = q.where(autopilot_sessions.c.finished_at.is_(None))
        with self._reading(conn) as c:
            rows = [dict(r) for r in c.execute(q).mappings()]
            held = {r["name"]: r for r in self.leases(AUTOPILOT, stale_seconds, conn=c)} if rows else {}
        for r in rows:
            lease = held.get(f"{AUTOPILOT}{r['id']}")
            r["alive"] = r["finished_at"] is None and bool(lease and lease["alive"])
        return rows

    def open_autopilot(self, conn, by: str, visitor: str | None, owner: str) -> int:
        """A new session playing for `owner` (its lease taken), in the caller's transaction; its id."""
        session = conn.execute(sa.insert(autopilot_sessions).values(
            by=by, started_at=timestamp(), stop_requested=False, visitor=visitor)
            .returning(autopilot_sessions.c.id)).scalar_one()
        self.renew(f"{AUTOPILOT}{session}", owner, conn=conn)
        return session

    def beat_autopilot(self, session: int, owner: str) -> bool:
        """Renew a playing session's lease; whether someone asked it to stop."""
        with self.tx() as c:
            self.renew(f"{AUTOPILOT}{session}", owner, conn=c)
            return self.stop_asked(session, conn=c)

    def stop_asked(self, session: int, conn=None) -> bool:
        """Whether someone asked `session` to stop (read on `conn` when given)."""
        with self._reading(conn) as c:
            return bool(c.execute(sa.select(autopilot_sessions.c.stop_requested)
                                  .where(autopilot_sessions.c.id == session)).scalar())

    def ask_autopilot_to_stop(self, session: int | None = None) -> int:
        """Ask a session (default: every unfinished one) to stop; how many were asked."""
        q = sa.update(autopilot_sessions).where(autopilot_sessions.c.finished_at.is_(None))
        if session is not None:
            q = q.where(autopilot_sessions.c.id == session)
        with self.tx() as c:
            return c.execute(q.values(stop_requested=True)).rowcount

    def finish_autopilot(self, session: int, outcome: str) -> None:
        """Record how a session ended and give its lease up."""
        with self.tx() as c:
            c.execute(sa.update(autopilot_sessions).where(autopilot_sessions.c.id == session)
                      .values(finished_at=timestamp(), outcome=outcome))
            c.execute(sa.delete(leases).where(leases.c.name == f"{AUTOPILOT}{session}"))

    def narrate(self, session: int, message: str, level: str = "info", run_id: int | None = None, conn=None) -> None:
        """Append one narration line to a session."""
        with self._within(conn) as c:
            c.execute(sa.insert(autopilot_log).values(session=session, ts=timestamp(), level=level, message=message,
                                                      run_id=run_id))

    def narration(self, session: int, after_id: int = 0) -> list[dict]:
        """A session's narration lines after `after_id`, oldest first."""
        with self.engine.connect() as c:
            return [dict(r) for r in c.execute(
                sa.select(autopilot_log).where(autopilot_log.c.session == session, autopilot_log.c.id > after_id)
                .order_by(autopilot_log.c.id)).mappings()]

    def session_runs(self, session: int) -> list[int]:
        """Pipeline runs a session narrated, in order."""
        with self.engine.connect() as c:
            ids = c.execute(sa.select(autopilot_log.c.run_id).where(autopilot_log.c.session == session,
                                                                   autopilot_log.c.run_id.is_not(None))
                            .order_by(autopilot_log.c.id)).scalars()
            return list(dict.fromkeys(ids))

    def prune_autopilot(self, keep: int) -> int:
        """Delete finished sessions but the newest `keep`, with their narration; how many went."""
        with self.tx() as c:
            cutoff = c.execute(sa.select(autopilot_sessions.c.id).order_by(autopilot_sessions.c.id.desc())
                               .offset(keep).limit(1)).scalar()
            if cutoff is None:
                return 0
            old = sa.select(autopilot_sessions.c.id).where(autopilot_sessions.c.id <= cutoff,
                                                           autopilot_sessions.c.finished_at.is_not(None))
            c.execute(sa.delete(autopilot_log).where(autopilot_log.c.session.in_(old)))
            return c.execute(sa.delete(autopilot_sessions).where(
                autopilot_sessions.c.id <= cutoff, autopilot_sessions.c.finished_at.is_not(None))).rowcount

    def row_counts(self) -> dict[str, Any]:
        """Rows per table (for status and benchmarks)."""
        with self.engine.connect() as c:
            return {t.name: c.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in metadata.sorted_tables}
