"""The tables mlgate keeps, as SQLAlchemy Core objects for queries.

The database itself is created and upgraded only by the versioned migrations in
``migrations/versions``; these definitions must describe the newest revision,
which ``tests/store/test_migrations.py`` checks against a migrated database.
JSON columns hold small documents (signatures, params, tags) that are read
whole and never queried inside.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "alias_history",
    "aliases",
    "api_tokens",
    "canaries",
    "endpoint_history",
    "endpoints",
    "feedback",
    "ledger_checkpoints",
    "ledger_entries",
    "ledger_head",
    "ledger_meta",
    "ledger_nodes",
    "metadata",
    "model_versions",
    "models",
    "prediction_log",
]

metadata = sa.MetaData()

# --- ledger -----------------------------------------------------------------

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("entry", sa.LargeBinary, nullable=False),
)

# Perfect Merkle subtrees, keyed by level << 48 | index (see mlgate.ledger.log).
ledger_nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("node_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
)

# One row (id = 1): the tree size. Writers lock it to serialise appends.
ledger_head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("size", sa.BigInteger, nullable=False),
)

ledger_checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
)

ledger_meta = sa.Table(
    "ledger_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

# --- registry ---------------------------------------------------------------

models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("created_at", sa.String(40), nullable=False),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("name", sa.String(128), sa.ForeignKey("models.name"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("flavor", sa.String(32), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.JSON, nullable=False),
    sa.Column("params", sa.JSON, nullable=False),
    sa.Column("metrics", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("lineage", sa.JSON, nullable=False),
    sa.Column("flavor_metadata", sa.JSON, nullable=False),
    sa.Column("trusted_types", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(256), nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("name", "sha256", name="uq_model_versions_name_sha256"),
)

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("alias", sa.String(64), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("moved_at", sa.String(40), nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.ForeignKeyConstraint(["name", "version"], ["model_versions.name", "model_versions.version"]),
)

alias_history = sa.Table(
    "alias_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("from_version", sa.Integer, nullable=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("moved_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.Index("ix_alias_history_name_alias", "name", "alias"),
)

# --- serving ----------------------------------------------------------------

# The traffic policy clients reach under ``name``; ``revision`` grows with each deploy.
endpoints = sa.Table(
    "endpoints",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
)

endpoint_history = sa.Table(
    "endpoint_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("spec", sa.JSON, nullable=True),  # null: the endpoint was removed
    sa.Column("updated_at", sa.String(40), nullable=False),
    sa.Column("updated_by", sa.String(256), nullable=False),
    sa.Column("ledger_seq", sa.BigInteger, nullable=False),
    sa.Index("ix_endpoint_history_name", "name"),
)

prediction_log = sa.Table(
    "prediction_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("route", sa.String(256), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("shadow", sa.Boolean, nullable=False),
    sa.Column("inputs", sa.JSON, nullable=True),
    sa.Column("outputs", sa.JSON, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("unit", sa.String(128), nullable=True),
    sa.Column("context", sa.JSON, nullable=True),
    sa.Index("ix_prediction_log_endpoint_request", "endpoint", "request_id"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("endpoint", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("label", sa.JSON, nullable=True),
    sa.Column("reward", sa.Float, nullable=True),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Index("ix_feedback_endpoint_request", "endpoint", "request_id"),
)

# Bearer tokens: only their SHA-256 is stored, so a database leak leaks no token.
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("created_at", sa.String(40), nullable=False),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

# --- experiments ------------------------------------------------------------

# One row per canary rollout. ``revision`` is bumped by every change, and a change
# applies only if the revision is still the one read (optimistic concurrency), so
# several server processes can drive the same canary without a double step.
canaries = sa.Table(
    "canaries",
    metadata,
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
    sa.Index("ix_canaries_endpoint", "endpoint"),
)

# --- retraining loop ------------------------------------------------------------

# The loop's durable inbox: every ingested record once per (loop, record_id), whichever
# source delivered it and however often. ``features`` is null for a label that arrived
# before its record; ``label`` is null until the label arrives. ``quarantined_by`` names
# the run whose data check failed on the row: such a row is never trained on.
# ``labelled_at`` is when its label was stored: the performance monitor reads labels in
# that order, whichever source delivered them and however late.
loop_records = sa.Table(
    "loop_records",
    metadata,
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
    sa.Index("ix_loop_records_loop_seq", "loop", "seq"),
    sa.Index("ix_loop_records_loop_labelled", "loop", "labelled_at", "seq"),
)

# One row per retraining run: a persisted state machine. ``revision`` is bumped by every
# transition, which applies only if the revision is still the one read, so two loop
# processes cannot both take a step.
loop_runs = sa.Table(
    "loop_runs",
    metadata,
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
    sa.Index("ix_loop_runs_loop_state", "loop", "state"),
)
