"""Retraining runs as stored: a persisted state machine with ledgered, race-safe transitions.

::

    triggered ──data checked──> training ──trained──> gating ──passed──> registering
       │  └──data check failed──> quarantined        │  └──gate failed──> rejected
       └──labels never came──> failed     └─trainer failed──> failed
    registering ──registered──> registered ──approval wanted──> awaiting_approval
                                   └──canary started──> canary <──approved──┘ (denied: rejected)
    canary ──promoted──> promoted            canary ──rolled back / aborted──> rolled_back

Each transition is one ``UPDATE loop_runs ... WHERE id = ? AND revision = ?`` in the same
transaction as its ledger entry: a process whose update matches no row lost a race (another
loop process took the step) and gets :class:`StaleRunError`, so a step is taken and
ledgered once. Side effects that cannot share that transaction (registering a version,
starting a canary) are made idempotent by the caller: it looks for the effect before
repeating it (a version with the run's artifact digest, a canary of the run's candidate).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from mlgate.errors import LoopError
from mlgate.ledger.events import LedgerEvent, Scalar, format_time
from mlgate.ledger.log import MerkleLog
from mlgate.store.engine import Store
from mlgate.store.schema import loop_runs

__all__ = [
    "ACTIVE_STATES",
    "LoopRun",
    "RunState",
    "RunStore",
    "StaleRunError",
]

Clock = Callable[[], datetime]


class RunState(StrEnum):
    TRIGGERED = "triggered"
    TRAINING = "training"
    GATING = "gating"
    REGISTERING = "registering"
    REGISTERED = "registered"
    AWAITING_APPROVAL = "awaiting_approval"
    CANARY = "canary"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    QUARANTINED = "quarantined"
    FAILED = "failed"


ACTIVE_STATES = frozenset(
    {
        RunState.TRIGGERED,
        RunState.TRAINING,
        RunState.GATING,
        RunState.REGISTERING,
        RunState.REGISTERED,
        RunState.AWAITING_APPROVAL,
        RunState.CANARY,
    }
)

# to-state -> (allowed from-states, ledger kind)
_TRANSITIONS: dict[RunState, tuple[frozenset[RunState], str]] = {
    RunState.TRAINING: (frozenset({RunState.TRIGGERED}), "loop.data_checked"),
    RunState.QUARANTINED: (frozenset({RunState.TRIGGERED}), "loop.quarantined"),
    RunState.GATING: (frozenset({RunState.TRAINING}), "loop.trained"),
    RunState.REGISTERING: (frozenset({RunState.GATING}), "loop.gated"),
    RunState.REGISTERED: (frozenset({RunState.REGISTERING}), "loop.registered"),
    RunState.AWAITING_APPROVAL: (frozenset({RunState.REGISTERED}), "loop.approval_wanted"),
    RunState.CANARY: (
        frozenset({RunState.REGISTERED, RunState.AWAITING_APPROVAL}),
        "loop.canary_started",
    ),
    RunState.PROMOTED: (frozenset({RunState.CANARY}), "loop.promoted"),
    RunState.ROLLED_BACK: (frozenset({RunState.CANARY}), "loop.rolled_back"),
    RunState.REJECTED: (frozenset({RunState.GATING, RunState.AWAITING_APPROVAL}), "loop.rejected"),
    RunState.FAILED: (ACTIVE_STATES, "loop.failed"),
}

TRIGGERED_KIND = "loop.triggered"
SUPPRESSED_KIND = "loop.suppressed"

_JSON_FIELDS = (
    "trigger",
    "data",
    "environment",
    "code",
    "params",
    "metrics",
    "gate_report",
)
_CHANGEABLE = frozenset(
    {
        *_JSON_FIELDS,
        "artifact_sha256",
        "candidate_version",
        "champion_version",
        "gate_digest",
        "canary_id",
        "error",
    }
)


class StaleRunError(LoopError):
    """Another process moved this run first; read it again and carry on from its state."""


@dataclass(frozen=True)
class LoopRun:
    """One retraining run as stored."""

    id: int
    loop: str
    state: RunState
    revision: int
    trigger: Mapping[str, Any]
    data: Mapping[str, Any] | None
    environment: Mapping[str, Any] | None
    code: Mapping[str, Any] | None
    params: Mapping[str, Any] | None
    artifact_sha256: str | None
    candidate_version: int | None
    champion_version: int | None
    metrics: Mapping[str, Any] | None
    gate_report: Mapping[str, Any] | None
    gate_digest: str | None
    canary_id: int | None
    error: str | None
    created_at: str
    updated_at: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def subject(self) -> dict[str, Scalar]:
        return {"loop": self.loop, "run": self.id}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "loop": self.loop,
            "state": str(self.state),
            "revision": self.revision,
            "trigger": dict(self.trigger),
            "data": None if self.data is None else dict(self.data),
            "environment": None if self.environment is None else dict(self.environment),
            "code": None if self.code is None else dict(self.code),
            "params": None if self.params is None else dict(self.params),
            "artifact_sha256": self.artifact_sha256,
            "candidate_version": self.candidate_version,
            "champion_version": self.champion_version,
            "metrics": None if self.metrics is None else dict(self.metrics),
            "gate_report": None if self.gate_report is None else dict(self.gate_report),
            "gate_digest": self.gate_digest,
            "canary_id": self.canary_id,
            "error": self.error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _run_from_row(row: Any) -> LoopRun:
    values = dict(row._mapping)
    values["state"] = RunState(values["state"])
    return LoopRun(**values)


class RunStore:
    """Creates runs and moves them, one ledgered transition at a time."""

    def __init__(self, store: Store, log: MerkleLog, clock: Clock) -> None:
        self._store = store
        self._log = log
        self._clock = clock

    def start(
        self,
        loop: str,
        trigger: Mapping[str, Any],
        *,
        actor: str,
        attributes: Mapping[str, Scalar],
        champion_version: int | None,
    ) -> LoopRun | None:
        """A new ``triggered`` run, or None when the loop already has an active one.

        The check and the insert happen under the ledger lock, so two processes cannot
        both start a run for the same loop.
        """
        now = format_time(self._clock())
        with self._store.write() as conn:
            self._log.lock_size(conn)
            if self._active_id(conn, loop) is not None:
                return None
            inserted = conn.execute(
                loop_runs.insert().values(
                    loop=loop,
                    state=str(RunState.TRIGGERED),
                    revision=1,
                    trigger=dict(trigger),
                    champion_version=champion_version,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None  # one row, one key
            run_id = int(inserted[0])
            self._log.append(
                conn,
                LedgerEvent(
                    kind=TRIGGERED_KIND,
                    actor=actor,
                    subject={"loop": loop, "run": run_id},
                    attributes=dict(attributes),
                ),
            )
        return self.get(run_id)

    def suppressed(self, loop: str, *, actor: str, attributes: Mapping[str, Scalar]) -> None:
        """Ledger a trigger decision that did not start a run, with its reason."""
        with self._store.write() as conn:
            self._log.append(
                conn,
                LedgerEvent(
                    kind=SUPPRESSED_KIND,
                    actor=actor,
                    subject={"loop": loop},
                    attributes=dict(attributes),
                ),
            )

    def advance(
        self,
        run: LoopRun,
        to: RunState,
        *,
        actor: str,
        changes: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Scalar] | None = None,
        digests: Mapping[str, str] | None = None,
    ) -> LoopRun:
        """Move ``run`` to ``to`` with ``changes``; StaleRunError when another process did."""
        allowed, kind = _TRANSITIONS[to]
        if run.state not in allowed:
            raise LoopError(
                f"run {run.id} of loop {run.loop!r} is {run.state}; it cannot become {to} "
                f"(only from {', '.join(sorted(allowed))})"
            )
        unknown = set(changes or {}) - _CHANGEABLE
        if unknown:
            raise LoopError(f"run fields {sorted(unknown)} cannot be changed by a transition")
        now = format_time(self._clock())
        values = {
            **dict(changes or {}),
            "state": str(to),
            "revision": run.revision + 1,
            "updated_at": now,
        }
        with self._store.write() as conn:
            self._log.lock_size(conn)
            updated = conn.execute(
                loop_runs.update()
                .where(loop_runs.c.id == run.id, loop_runs.c.revision == run.revision)
                .values(**values)
            ).rowcount
            if updated != 1:
                raise StaleRunError(
                    f"run {run.id} of loop {run.loop!r} was moved by another process; read it again"
                )
            self._log.append(
                conn,
                LedgerEvent(
                    kind=kind,
                    actor=actor,
                    subject=run.subject(),
                    digests=dict(digests or {}),
                    attributes={"from_state": str(run.state), **dict(attributes or {})},
                ),
            )
        return self.get(run.id)

    def get(self, run_id: int) -> LoopRun:
        with self._store.read() as conn:
            row = conn.execute(sa.select(loop_runs).where(loop_runs.c.id == run_id)).first()
        if row is None:
            raise LoopError(f"there is no loop run {run_id}; `mlgate loop runs NAME` lists them")
        return _run_from_row(row)

    def active(self, loop: str) -> LoopRun | None:
        with self._store.read() as conn:
            run_id = self._active_id(conn, loop)
        return None if run_id is None else self.get(run_id)

    def list(self, loop: str | None = None, *, limit: int = 50) -> builtins.list[LoopRun]:
        """The newest runs first."""
        query = sa.select(loop_runs).order_by(loop_runs.c.id.desc()).limit(limit)
        if loop is not None:
            query = query.where(loop_runs.c.loop == loop)
        with self._store.read() as conn:
            return [_run_from_row(row) for row in conn.execute(query)]

    def last_started_at(self, loop: str) -> str | None:
        with self._store.read() as conn:
            return conn.execute(
                sa.select(sa.func.max(loop_runs.c.created_at)).where(loop_runs.c.loop == loop)
            ).scalar_one_or_none()

    @staticmethod
    def _active_id(conn: sa.Connection, loop: str) -> int | None:
        return conn.execute(
            sa.select(loop_runs.c.id)
            .where(
                loop_runs.c.loop == loop,
                loop_runs.c.state.in_([str(s) for s in ACTIVE_STATES]),
            )
            .order_by(loop_runs.c.id)
            .limit(1)
        ).scalar_one_or_none()
