"""run_claims: the labelled production claims a retrain on production data trains and is judged on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_claims",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("part", sa.String(16), nullable=False),
        sa.Column("claim_id", sa.BigInteger, nullable=False),
        sa.Column("ts", sa.Float, nullable=False),
        sa.Column("cpt_bucket", sa.String(40), nullable=False),
        sa.Column("provider_type", sa.String(40), nullable=False),
        sa.Column("diagnosis_group", sa.String(40), nullable=False),
        sa.Column("billed_amount", sa.Float, nullable=False),
        sa.Column("allowed_amount", sa.Float, nullable=False),
        sa.Column("patient_age", sa.Float, nullable=False),
        sa.Column("outcome", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("the lab migrates forward only; restore a backup to go back")
