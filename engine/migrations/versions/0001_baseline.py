"""Baseline: every table as the lab had it when Alembic took over (December 2026).

Stores made before then were built with `create_all` by whatever commit made them, so they hold a subset of these
tables and columns (the schema only ever grew). This revision brings any of them, or an empty database, to the
baseline: a missing table is created, a missing column added (nullable: older rows had none), a missing index
built. What is already there is left as it is, rows included.

Revision ID: 0001
Revises:
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _baseline(meta: sa.MetaData) -> None:
    """The baseline schema, frozen here: later changes are later revisions, never edits to this one."""
    sa.Table("runs", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("sha", sa.String(64), nullable=False),
             sa.Column("message", sa.Text, nullable=False),
             sa.Column("author", sa.String(200), nullable=False),
             sa.Column("seed", sa.Integer, nullable=False),
             sa.Column("dataset_window", sa.String(40), nullable=False),
             sa.Column("failure_modes", sa.JSON, nullable=False),
             sa.Column("status", sa.String(32), nullable=False),
             sa.Column("created_at", sa.Float, nullable=False),
             sa.Column("updated_at", sa.Float, nullable=False),
             sa.Column("finished_at", sa.Float),
             sa.Index("ix_runs_status", "status"),
             sa.Index("ix_runs_created", "created_at"))
    sa.Table("steps", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
             sa.Column("name", sa.String(64), nullable=False),
             sa.Column("position", sa.Integer, nullable=False),
             sa.Column("stage", sa.String(16), nullable=False),
             sa.Column("status", sa.String(32), nullable=False),
             sa.Column("attempt", sa.Integer, nullable=False),
             sa.Column("queued_at", sa.Float),
             sa.Column("started_at", sa.Float),
             sa.Column("finished_at", sa.Float),
             sa.Column("heartbeat_at", sa.Float),
             sa.Column("worker", sa.String(120)),
             sa.Column("outputs", sa.JSON),
             sa.Column("error", sa.Text),
             sa.UniqueConstraint("run_id", "name", name="uq_steps_run_name"),
             sa.Index("ix_steps_run", "run_id", "position"),
             sa.Index("ix_steps_status_queued", "status", "queued_at"))
    sa.Table("logs", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("run_id", sa.Integer, nullable=False),
             sa.Column("step", sa.String(64), nullable=False),
             sa.Column("attempt", sa.Integer, nullable=False),
             sa.Column("ts", sa.Float, nullable=False),
             sa.Column("level", sa.String(10), nullable=False),
             sa.Column("message", sa.Text, nullable=False),
             sa.Index("ix_logs_run_step_id", "run_id", "step", "id"))
    sa.Table("audit", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("ts", sa.Float, nullable=False),
             sa.Column("actor", sa.String(200), nullable=False),
             sa.Column("action", sa.String(40), nullable=False),
             sa.Column("run_id", sa.Integer),
             sa.Column("comment", sa.Text, nullable=False),
             sa.Column("detail", sa.JSON),
             sa.Index("ix_audit_ts", "ts"))
    sa.Table("failure_modes", meta,
             sa.Column("name", sa.String(40), primary_key=True),
             sa.Column("enabled", sa.Boolean, nullable=False),
             sa.Column("updated_at", sa.Float, nullable=False))
    sa.Table("alias_history", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("alias", sa.String(40), nullable=False),
             sa.Column("version", sa.Integer, nullable=False),
             sa.Column("run_id", sa.Integer),
             sa.Column("since", sa.Float, nullable=False),
             sa.Column("until", sa.Float),
             sa.Column("action", sa.String(20), nullable=False),
             sa.Column("moved_by", sa.String(200), nullable=False),
             sa.Column("reason", sa.Text, nullable=False),
             sa.Index("ix_alias_history", "alias", "since"))
    sa.Table("workers", meta,
             sa.Column("id", sa.String(120), primary_key=True),
             sa.Column("host", sa.String(255), nullable=False),
             sa.Column("pid", sa.Integer, nullable=False),
             sa.Column("started_at", sa.Float, nullable=False),
             sa.Column("heartbeat_at", sa.Float, nullable=False),
             sa.Column("active_steps", sa.Integer, nullable=False))
    sa.Table("visitor_events", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("visitor", sa.String(120), nullable=False),
             sa.Column("action", sa.String(40), nullable=False),
             sa.Column("at", sa.Float, nullable=False),
             sa.Index("ix_visitor_events", "visitor", "action", "at"))
    sa.Table("run_origin", meta,
             sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
             sa.Column("trigger", sa.String(40), nullable=False),
             sa.Column("shift", sa.JSON),
             sa.Column("detail", sa.JSON))
    sa.Table("webhook_deliveries", meta,
             sa.Column("delivery", sa.String(80), primary_key=True),
             sa.Column("digest", sa.String(64), nullable=False, unique=True),
             sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
             sa.Column("received_at", sa.Float, nullable=False))
    sa.Table("stream_state", meta,
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("enabled", sa.Boolean, nullable=False),
             sa.Column("rate", sa.Float, nullable=False),
             sa.Column("scenario", sa.String(40), nullable=False),
             sa.Column("ramp", sa.Integer, nullable=False),
             sa.Column("scenario_seq", sa.BigInteger, nullable=False),
             sa.Column("label_delay", sa.Integer, nullable=False),
             sa.Column("closed_loop", sa.Boolean, nullable=False),
             sa.Column("next_seq", sa.BigInteger, nullable=False),
             sa.Column("labelled_seq", sa.BigInteger, nullable=False),
             sa.Column("produced_at", sa.Float),
             sa.Column("lease_owner", sa.String(120)),
             sa.Column("lease_until", sa.Float),
             sa.Column("updated_at", sa.Float, nullable=False),
             sa.Column("updated_by", sa.String(200), nullable=False))
    sa.Table("stream_claims", meta,
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
             sa.Column("approved", sa.Boolean, nullable=False),
             sa.Column("shadow_version", sa.Integer),
             sa.Column("shadow_p_approved", sa.Float),
             sa.Column("shadow_approved", sa.Boolean),
             sa.Column("hidden_outcome", sa.Boolean, nullable=False),
             sa.Column("outcome", sa.Boolean),
             sa.Column("labelled_at", sa.Float))
    sa.Table("stream_snapshots", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("ts", sa.Float, nullable=False),
             sa.Column("seq", sa.BigInteger, nullable=False),
             sa.Column("champion_version", sa.Integer),
             sa.Column("scenario", sa.String(40), nullable=False),
             sa.Column("status", sa.String(20), nullable=False),
             sa.Column("level", sa.String(20)),
             sa.Column("max_psi", sa.Float),
             sa.Column("prediction_psi", sa.Float),
             sa.Column("drift_share", sa.Float),
             sa.Column("realised_accuracy", sa.Float),
             sa.Column("estimated_accuracy", sa.Float),
             sa.Column("agreement", sa.Float),
             sa.Column("detail", sa.JSON, nullable=False),
             sa.Index("ix_stream_snapshots_seq", "seq"))
    sa.Table("autopilot_sessions", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("by", sa.String(200), nullable=False),
             sa.Column("started_at", sa.Float, nullable=False),
             sa.Column("heartbeat_at", sa.Float, nullable=False),
             sa.Column("finished_at", sa.Float),
             sa.Column("outcome", sa.String(20)),
             sa.Column("stop_requested", sa.Boolean, nullable=False),
             sa.Column("visitor", sa.String(120)))
    sa.Table("autopilot_log", meta,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("session", sa.Integer, nullable=False),
             sa.Column("ts", sa.Float, nullable=False),
             sa.Column("level", sa.String(10), nullable=False),
             sa.Column("message", sa.Text, nullable=False),
             sa.Column("run_id", sa.Integer),
             sa.Index("ix_autopilot_log_session", "session", "id"))


def upgrade() -> None:
    bind = op.get_bind()
    meta = sa.MetaData()
    _baseline(meta)
    inspector = sa.inspect(bind)
    present = set(inspector.get_table_names())
    for table in meta.sorted_tables:  # parents before children
        if table.name not in present:
            table.create(bind)  # with its indexes
            continue
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in columns:
                op.add_column(table.name, sa.Column(column.name, column.type, nullable=True))
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                op.create_index(index.name, table.name, [c.name for c in index.columns])


def downgrade() -> None:
    raise NotImplementedError("the lab migrates forward only; restore a backup to go back")
