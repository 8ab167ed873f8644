"""Lineage: from a served prediction or a model version back to its data and code, and on.

::

    request ──► version ──► loop run: trigger, data, code, environment, params, gate
                  │                └─► ledger entries of the run
                  ├─► deployments: alias moves, canaries, endpoint revisions routing to it
                  └─► parent: the champion it replaced (and its lineage, ``depth`` deep)

Everything is read from the store as it is; ``verify=True`` also recomputes what can be
recomputed (artifact and frame hashes, the frame's fingerprint, the gate report's and
environment's digests) and compares it with the run, the version and the ledger
(:mod:`mlgate.loop._lineage_verify`). A mismatch is reported, never raised: a tampered
store is what an auditor wants to see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from mlgate.errors import LineageError, MlgateError
from mlgate.experiments.canary.status import CanaryStatus
from mlgate.loop._lineage_deploy import Deployments
from mlgate.loop._lineage_json import canary_json, run_json
from mlgate.loop._lineage_verify import Check, verify_version
from mlgate.loop.runs import LoopRun, RunStore
from mlgate.registry.records import AliasMove, ModelVersion
from mlgate.store.schema import endpoint_history, feedback, prediction_log
from mlgate.workspace import Workspace

__all__ = [
    "Check",
    "RequestLineage",
    "RunEvent",
    "VersionLineage",
    "lineage_of_request",
    "lineage_of_version",
]

_VERSIONS = re.compile(r"[0-9]+(?:[+>][0-9]+)*")  # "3", an ensemble "1+2", a cascade "1>2"


@dataclass(frozen=True)
class RunEvent:
    """One ledger entry of a run (``seq`` is its ledger index)."""

    kind: str
    seq: int
    time: str
    actor: str
    digests: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VersionLineage:
    """A version, the run that trained it (None: registered by hand), what followed, its parent."""

    version: ModelVersion
    run: LoopRun | None
    events: tuple[RunEvent, ...]
    alias_moves: tuple[AliasMove, ...]
    canaries: tuple[CanaryStatus, ...]
    endpoint_revisions: tuple[dict[str, Any], ...]
    parent: VersionLineage | None
    checks: tuple[Check, ...] | None  # None when not verified
    notes: tuple[str, ...] = ()

    @property
    def verified(self) -> bool | None:
        """None when not verified; else whether every check, down the parents, agreed."""
        if self.checks is None:
            return None
        mine = all(check.ok for check in self.checks)
        return mine and (self.parent is None or self.parent.verified is not False)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.version.name,
            "version": self.version.version,
            "record": self.version.to_json(),
            "run": None if self.run is None else run_json(self.run),
            "events": [event.to_json() for event in self.events],
            "deployments": {
                "alias_moves": [move.to_json() for move in self.alias_moves],
                "canaries": [canary_json(status) for status in self.canaries],
                "endpoint_revisions": [dict(row) for row in self.endpoint_revisions],
            },
            "verification": None if self.checks is None else [c.to_json() for c in self.checks],
            "notes": list(self.notes),
            "parent": None if self.parent is None else self.parent.to_json(),
        }


@dataclass(frozen=True)
class RequestLineage:
    """The log rows and feedback of one request, and the lineage of each version that served it."""

    endpoint: str
    request_id: str
    model: str
    predictions: tuple[dict[str, Any], ...]  # version, route, status, created_at, shadow
    feedback: tuple[dict[str, Any], ...]
    versions: tuple[VersionLineage, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "request_id": self.request_id,
            "model": self.model,
            "predictions": [dict(row) for row in self.predictions],
            "feedback": [dict(row) for row in self.feedback],
            "versions": [lineage.to_json() for lineage in self.versions],
            "notes": list(self.notes),
        }


def lineage_of_version(
    workspace: Workspace, model: str, version: int | str, *, verify: bool = False, depth: int = 5
) -> VersionLineage:
    """The chain of ``model`` at ``version`` (a number, an alias or ``latest``).

    The run's ledger entries are found by scanning the whole ledger once per call (the
    ledger has no index by subject); parents share that scan.
    """
    try:
        found = workspace.registry.get(model, version)
    except MlgateError as exc:
        raise LineageError(f"no lineage for {model}:{version}: {exc}") from None
    return _Walker(workspace, verify).version(found, depth)


def lineage_of_request(
    workspace: Workspace, endpoint: str, request_id: str, *, verify: bool = False
) -> RequestLineage:
    """What answered ``request_id`` on ``endpoint``, and the lineage of each version that did."""
    with workspace.store.read() as conn:
        rows = conn.execute(
            sa.select(prediction_log)
            .where(prediction_log.c.endpoint == endpoint, prediction_log.c.request_id == request_id)
            .order_by(prediction_log.c.id)
        ).all()
        labels = conn.execute(
            sa.select(feedback.c.label, feedback.c.reward, feedback.c.created_at)
            .where(feedback.c.endpoint == endpoint, feedback.c.request_id == request_id)
            .order_by(feedback.c.id)
        ).all()
        history = conn.execute(
            sa.select(endpoint_history.c.spec, endpoint_history.c.updated_at)
            .where(endpoint_history.c.name == endpoint, endpoint_history.c.spec.is_not(None))
            .order_by(endpoint_history.c.id)
        ).all()
    if not rows:
        raise LineageError(
            f"no prediction with request id {request_id!r} on endpoint {endpoint!r}; is "
            "logging.sample_rate below 1, or was the request shed?"
        )
    # The model the endpoint served when the request came: the revision in force then.
    specs = [h.spec for h in history if h.updated_at <= rows[0].created_at] or [
        h.spec for h in history[:1]
    ]
    model = str(specs[-1].get("model") or endpoint) if specs else endpoint
    walker = _Walker(workspace, verify)
    notes: list[str] = []
    served: dict[int, VersionLineage] = {}
    for row in rows:
        if not _VERSIONS.fullmatch(row.version):
            what = "the endpoint's default response" if row.version == "default" else "no model"
            notes.append(f"{'shadow' if row.shadow else 'request'} {row.status}: {what} answered")
            continue
        for number in map(int, re.split(r"[+>]", row.version)):
            if number not in served:
                try:
                    served[number] = walker.version(workspace.registry.get(model, number), 5)
                except MlgateError as exc:
                    notes.append(f"version {number} of {model}: {exc}")
    keys = ("id", "version", "route", "status", "shadow", "created_at", "latency_ms")
    return RequestLineage(
        endpoint=endpoint,
        request_id=request_id,
        model=model,
        predictions=tuple({key: getattr(row, key) for key in keys} for row in rows),
        feedback=tuple(dict(label._mapping) for label in labels),
        versions=tuple(served[number] for number in sorted(served)),
        notes=tuple(notes),
    )


class _Walker:
    """One lineage query: reads the ledger and endpoint history once for every version."""

    def __init__(self, workspace: Workspace, verify: bool) -> None:
        self.ws = workspace
        self.verify = verify
        self.runs = RunStore(workspace.store, workspace.log, workspace.clock)
        self.deployments = Deployments(workspace)
        self._events: dict[tuple[str, int], list[RunEvent]] | None = None
        self._done: dict[tuple[str, int, int], VersionLineage] = {}

    def version(self, version: ModelVersion, depth: int) -> VersionLineage:
        key = (version.name, version.version, depth)
        if key not in self._done:
            self._done[key] = self._walk(version, depth)
        return self._done[key]

    def _walk(self, version: ModelVersion, depth: int) -> VersionLineage:
        run, notes = self._run_of(version)
        events = tuple(self._run_events(run)) if run is not None else ()
        parent_number = version.lineage.parent_version
        parent = None
        if parent_number is not None and depth > 0:
            try:
                older = self.ws.registry.get(version.name, parent_number)
                parent = self.version(older, depth - 1)
            except MlgateError as exc:
                notes.append(f"parent version {parent_number}: {exc}")
        moves = self.ws.registry.alias_history(version.name)
        return VersionLineage(
            version=version,
            run=run,
            events=events,
            alias_moves=tuple(
                m for m in moves if version.version in (m.to_version, m.from_version)
            ),
            canaries=self.deployments.canaries(version),
            endpoint_revisions=self.deployments.revisions(version, moves),
            parent=parent,
            checks=verify_version(self.ws, version, run, events) if self.verify else None,
            notes=tuple(notes),
        )

    def _run_of(self, version: ModelVersion) -> tuple[LoopRun | None, list[str]]:
        loop, run_id = version.tags.get("loop"), version.tags.get("loop_run")
        if loop is None or run_id is None or not run_id.isdigit():
            return None, ["registered by hand (no training run recorded)"]
        try:
            run = self.runs.get(int(run_id))
        except MlgateError:
            return None, [f"tagged with run {run_id} of loop {loop!r}, which is not in the store"]
        if run.loop != loop:
            return None, [
                f"tagged with run {run_id} of loop {loop!r}, but that run is {run.loop!r}'s"
            ]
        return run, []

    def _run_events(self, run: LoopRun) -> list[RunEvent]:
        if self._events is None:
            found: dict[tuple[str, int], list[RunEvent]] = {}
            with self.ws.store.read() as conn:
                for entry in self.ws.log.entries(conn):
                    if b'"kind":"loop.' not in entry.data:  # cheap: most entries are not
                        continue
                    doc = entry.document()
                    subject = doc.get("subject") or {}
                    if isinstance(subject.get("run"), int):
                        key = (str(subject.get("loop")), int(subject["run"]))
                        event = RunEvent(
                            doc["kind"],
                            entry.index,
                            doc.get("time", ""),
                            doc.get("actor", ""),
                            doc.get("digests") or {},
                        )
                        found.setdefault(key, []).append(event)
            self._events = found
        return self._events.get((run.loop, run.id), [])
