"""Experiments: who a logged request was (unit), what a contextual bandit saw, canaries.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The sticky key of a split (a user id): sample-ratio checks count units, not requests.
    op.add_column("prediction_log", sa.Column("unit", sa.String(128), nullable=True))
    # A contextual bandit's encoded context, so every process can learn from the row.
    op.add_column("prediction_log", sa.Column("context", sa.JSON, nullable=True))
    op.create_table(
        "canaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("endpoint", sa.String(128), nullable=False),
        sa.Column("baseline", sa.String(64), nullable=False),
        sa.Column("candidate", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("step_index", sa.Integer, nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("original_spec", sa.JSON, nullable=False),
        sa.Column("step_started_at", sa.String(40), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("inconclusive", sa.Integer, nullable=False),
        sa.Column("last_report", sa.JSON, nullable=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_canaries_endpoint", "canaries", ["endpoint"])


def downgrade() -> None:
    op.drop_index("ix_canaries_endpoint", table_name="canaries")
    op.drop_table("canaries")
    op.drop_column("prediction_log", "context")
    op.drop_column("prediction_log", "unit")
