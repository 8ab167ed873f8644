"""Retraining loop: the durable record inbox and the persisted run state machine.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "loop_records",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("loop", sa.String(128), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("features", sa.JSON, nullable=True),
        sa.Column("label", sa.JSON, nullable=True),
        sa.Column("event_time", sa.String(40), nullable=False),
        sa.Column("ingested_at", sa.String(40), nullable=False),
        sa.Column("labelled_at", sa.String(40), nullable=True),
        sa.Column("quarantined_by", sa.Integer, nullable=True),
        sa.UniqueConstraint("loop", "record_id", name="uq_loop_records_loop_record"),
    )
    op.create_index("ix_loop_records_loop_seq", "loop_records", ["loop", "seq"])
    op.create_index("ix_loop_records_loop_labelled", "loop_records", ["loop", "labelled_at", "seq"])
    op.create_table(
        "loop_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("loop", sa.String(128), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("trigger", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=True),
        sa.Column("environment", sa.JSON, nullable=True),
        sa.Column("code", sa.JSON, nullable=True),
        sa.Column("params", sa.JSON, nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=True),
        sa.Column("candidate_version", sa.Integer, nullable=True),
        sa.Column("champion_version", sa.Integer, nullable=True),
        sa.Column("metrics", sa.JSON, nullable=True),
        sa.Column("gate_report", sa.JSON, nullable=True),
        sa.Column("gate_digest", sa.String(71), nullable=True),
        sa.Column("canary_id", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("updated_at", sa.String(40), nullable=False),
    )
    op.create_index("ix_loop_runs_loop_state", "loop_runs", ["loop", "state"])


def downgrade() -> None:
    op.drop_index("ix_loop_runs_loop_state", table_name="loop_runs")
    op.drop_table("loop_runs")
    op.drop_index("ix_loop_records_loop_labelled", table_name="loop_records")
    op.drop_index("ix_loop_records_loop_seq", table_name="loop_records")
    op.drop_table("loop_records")
