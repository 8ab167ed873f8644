"""The closed retraining loop: ingest, trigger, train, gate, canary, promote or roll back.

::

    sources ──► Inbox (loop_records: once per record id) ──► monitors ──► triggers
    (Redis, file,                                                           │
     HTTP, in-process)                                                      ▼
    run: triggered ▸ data checked ▸ trained ▸ gated ▸ registered ▸ canary ▸ promoted
           │              │            │         │                     └──► rolled_back
           └ suppressed   └ quarantined└ failed  └ rejected

Every run is a row of ``loop_runs`` moved by optimistic-concurrency transitions, each in
the same transaction as its ledger entry, so a loop killed at any step resumes where it
stopped without a double registration or promotion.
"""

from __future__ import annotations

__all__: list[str] = []
