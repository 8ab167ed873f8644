"""The tamper-evident ledger: an RFC 9162 Merkle log of typed events with signed checkpoints.

``merkle`` (pure RFC 9162 functions) and ``note`` (C2SP signed notes) depend on
nothing of mlgate, so they travel verbatim into the offline audit bundle.
"""

from __future__ import annotations

from mlgate.ledger.checkpoints import Checkpointer, StoredCheckpoint, list_checkpoints
from mlgate.ledger.events import EventKind, LedgerEntry, LedgerEvent, digest_json
from mlgate.ledger.export import ExportSummary, export_bundle
from mlgate.ledger.log import AppendResult, MerkleLog
from mlgate.ledger.verify import VerifyReport, verify_log

__all__ = [
    "AppendResult",
    "Checkpointer",
    "EventKind",
    "ExportSummary",
    "LedgerEntry",
    "LedgerEvent",
    "MerkleLog",
    "StoredCheckpoint",
    "VerifyReport",
    "digest_json",
    "export_bundle",
    "list_checkpoints",
    "verify_log",
]
