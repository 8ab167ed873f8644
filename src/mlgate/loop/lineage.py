"""Lineage: from a served prediction or a model version back to its data and code, and on.

::

    request ──► version ──► loop run: trigger, data, code, environment, params, gate
                  │                └─► ledger entries of the run
                  ├─► deployments: alias moves, canaries, endpoint revisions routing to it
                  └─► parent: the champion it replaced (and its lineage, ``depth`` deep)

Everything is read from the store as it is; ``verify=True`` also recomputes what can be
recomputed (artifact and frame hashes, the frame's fingerprint, the gate report's and
environment's digests) and compares it with the run, the version and the ledger. A
mismatch is reported, never raised: a tampered store is what an auditor wants to see.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa

from mlgate.errors import LineageError, MlgateError
from mlgate.experiments.canary.status import CanaryStatus, status_from_row
from mlgate.ledger.events import digest_json
from mlgate.loop.frame import frame_from_bytes
from mlgate.loop.runs import LoopRun, RunStore
from mlgate.registry.records import AliasMove, ModelVersion
from mlgate.serving.spec import endpoint_from_json, targets_of
from mlgate.store.schema import canaries, endpoint_history, feedback, prediction_log
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
_COMPOSITE = ("all_of", "any_of")
_RUN_KEYS = (
    "id loop state created_at updated_at error champion_version candidate_version canary_id "
    "params metrics"
).split()


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
class Check:
    """One verification: the same fact as each place holds it; ok when they all agree."""

    name: str
    values: Mapping[str, str | None]

    @property
    def ok(self) -> bool:
        return None not in self.values.values() and len(set(self.values.values())) == 1

    def to_json(self) -> dict[str, Any]:
        result = "ok" if self.ok else "mismatch"
        return {"check": self.name, "result": result, "values": dict(self.values)}


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
            "run": None if self.run is None else _run_json(self.run),
            "events": [event.to_json() for event in self.events],
            "deployments": {
                "alias_moves": [move.to_json() for move in self.alias_moves],
                "canaries": [_canary_json(status) for status in self.canaries],
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
        self._events: dict[tuple[str, int], list[RunEvent]] | None = None
        self._history: list[tuple[Any, set[int | str]]] | None = None
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
            canaries=self._canaries(version),
            endpoint_revisions=self._revisions(version, moves),
            parent=parent,
            checks=self._checks(version, run, events) if self.verify else None,
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

    def _canaries(self, version: ModelVersion) -> tuple[CanaryStatus, ...]:
        with self.ws.store.read() as conn:
            rows = conn.execute(
                sa.select(canaries)
                .where(canaries.c.candidate == str(version.version))
                .order_by(canaries.c.id)
            ).all()
        return tuple(s for s in map(status_from_row, rows) if s.model == version.name)

    def _revisions(
        self, version: ModelVersion, moves: list[AliasMove]
    ) -> tuple[dict[str, Any], ...]:
        """Endpoint revisions whose targets resolved to this version when they were deployed."""
        if self._history is None:
            with self.ws.store.read() as conn:
                rows = conn.execute(
                    sa.select(endpoint_history)
                    .where(endpoint_history.c.spec.is_not(None))
                    .order_by(endpoint_history.c.id)
                ).all()
            self._history = []
            for row in rows:
                try:
                    self._history.append((row, targets_of(endpoint_from_json(row.spec))))
                except MlgateError:
                    continue  # a spec this release no longer reads routes nothing it can name
        found = []
        for row, targets in self._history:
            if row.spec.get("model") != version.name:
                continue
            via = sorted(
                str(t) for t in targets if _resolve(t, row.ledger_seq, moves) == version.version
            )
            if via:
                keys = ("revision", "updated_at", "updated_by", "ledger_seq")
                found.append(
                    {"endpoint": row.name, **{k: getattr(row, k) for k in keys}, "via": via}
                )
        return tuple(found)

    def _checks(
        self, version: ModelVersion, run: LoopRun | None, events: tuple[RunEvent, ...]
    ) -> tuple[Check, ...]:
        def ledger(kind: str, key: str) -> str | None:
            return next((e.digests.get(key) for e in reversed(events) if e.kind == kind), None)

        try:
            with self.ws.store.read() as conn:
                entry = self.ws.log.entry(conn, version.ledger_seq).document()
            registered = entry.get("digests", {}) if entry.get("kind") == "model.registered" else {}
        except MlgateError:
            registered = {}  # a missing entry: every ledger value below reads None, a mismatch
        artifact = "sha256:" + version.sha256
        facts: dict[str, dict[str, str | None]] = {
            "artifact": {
                "version": artifact,
                "re-hashed file": _attempt(lambda: self._rehash(version)),
                "ledger model.registered": registered.get("artifact"),
            },
            "registration record": {
                "recomputed": digest_json(version.record()),
                "ledger model.registered": registered.get("record"),
            },
        }
        if run is not None:
            data, env = dict(run.data or {}), dict(run.environment or {})
            described = {key: value for key, value in env.items() if key != "digest"}
            report = None if run.gate_report is None else digest_json(dict(run.gate_report))
            facts["trained artifact"] = {
                "version": artifact,
                "run": f"sha256:{run.artifact_sha256}",
                "ledger loop.trained": ledger("loop.trained", "artifact"),
            }
            facts["dataset fingerprint"] = {
                "recomputed from the frame": _attempt(lambda: self._fingerprint(data)),
                "run": data.get("fingerprint"),
                "version lineage": version.lineage.dataset_fingerprint,
                "ledger loop.data_checked": ledger("loop.data_checked", "dataset"),
            }
            facts["gate report"] = {
                "recomputed": report,
                "run": run.gate_digest,
                "ledger loop.gated": ledger("loop.gated", "report"),
            }
            facts["environment"] = {
                "recomputed": digest_json(described) if described else None,
                "run": env.get("digest"),
                "ledger loop.trained": ledger("loop.trained", "environment"),
            }
        return tuple(Check(name, values) for name, values in facts.items())

    def _rehash(self, version: ModelVersion) -> str:
        self.ws.registry.read_artifact(version)  # re-hashes; raises if the file changed
        return "sha256:" + version.sha256

    def _fingerprint(self, data: Mapping[str, Any]) -> str:
        sha = data.get("frame_sha256")
        if not isinstance(sha, str):
            raise LineageError("the run records no stored training frame")
        return frame_from_bytes(self.ws.artifacts.get(sha)).fingerprint()


def _attempt(compute: Any) -> str:
    """The recomputed value, or why it could not be recomputed (which then mismatches)."""
    try:
        return str(compute())
    except MlgateError as exc:
        return f"unavailable: {exc}"


def _resolve(target: int | str, seq: int, moves: list[AliasMove]) -> int | None:
    """What ``target`` named at ledger index ``seq`` (``latest`` is not resolved)."""
    if isinstance(target, int):
        return target
    earlier = [m for m in moves if m.alias == target and m.ledger_seq < seq]
    return earlier[-1].to_version if earlier else None


def _leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if node.get("kind") in _COMPOSITE:
        return [leaf for child in node.get("children", []) for leaf in _leaves(child)]
    return [node]


def _fields(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: source.get(key) for key in keys}


def _pick(source: Mapping[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    return None if source is None else _fields(source, *keys)


def _run_json(run: LoopRun) -> dict[str, Any]:
    report = dict(run.gate_report or {})
    tree = report.get("tree")
    leaves = _leaves(tree) if isinstance(tree, Mapping) else []
    keys = ("path", "kind", "passed", "skipped", "value", "threshold", "message")
    return {
        **_fields(run.to_json(), *_RUN_KEYS),
        "trigger": _pick(run.trigger, "kind", "reason"),
        "data": _pick(run.data, "rows", "fingerprint", "seq_min", "seq_max", "frame_sha256"),
        "environment": _pick(run.environment, "digest", "python", "packages"),
        "code": _pick(run.code, "commit", "dirty", "source_digest", "target"),
        "gate": None
        if run.gate_report is None
        else {
            "passed": report.get("passed"),
            "digest": run.gate_digest,
            "summary": report.get("summary"),
            "checks": [_fields(leaf, *keys) for leaf in leaves],
        },
    }


def _canary_json(status: CanaryStatus) -> dict[str, Any]:
    keys = "id endpoint baseline candidate state created_at created_by updated_at".split()
    return {key: getattr(status, key) for key in keys}
