"""leases: who is alive, in one table on the database's clock.

Runner registrations (the `workers` table), the stream producer's lease (stream_state.lease_owner/lease_until, on
the producer's own clock) and the demo autopilot's heartbeat (autopilot_sessions.heartbeat_at, on its own clock)
become rows of `leases`, renewed with the database's clock. Registrations and leases are live state: runners and
producers of the new code take them again within a tick, so nothing is copied.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(160), primary_key=True),
        sa.Column("owner", sa.String(120), nullable=False),
        sa.Column("since", sa.Float, nullable=False),
        sa.Column("renewed_at", sa.Float, nullable=False),
        sa.Column("detail", sa.JSON),
    )
    op.drop_table("workers")
    with op.batch_alter_table("stream_state") as batch:
        batch.drop_column("lease_owner")
        batch.drop_column("lease_until")
    with op.batch_alter_table("autopilot_sessions") as batch:
        batch.drop_column("heartbeat_at")


def downgrade() -> None:
    raise NotImplementedError("the lab migrates forward only; restore a backup to go back")
