"""Verifying a version's lineage: each fact recomputed and compared wherever it is recorded.

A fact (the artifact's hash, the registration record, the frame's fingerprint, the gate
report's and environment's digests) is held by the version, the run and the ledger, and
some can be recomputed from the stored bytes. A :class:`Check` puts those values side by
side; it is ok only when every place holds the same one. Anything that cannot be
recomputed reads as "unavailable: why", which then mismatches: a tampered or incomplete
store is reported, never raised, because that is what an auditor wants to see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlgate.errors import LineageError, MlgateError
from mlgate.ledger.events import digest_json
from mlgate.loop.frame import frame_from_bytes
from mlgate.loop.runs import LoopRun
from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace

if TYPE_CHECKING:
    from mlgate.loop.lineage import RunEvent

__all__ = ["Check", "verify_version"]


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


def verify_version(
    workspace: Workspace, version: ModelVersion, run: LoopRun | None, events: Sequence[RunEvent]
) -> tuple[Check, ...]:
    """The checks of ``version``; those of its training ``run`` (with its ledger ``events``) too."""

    def ledger(kind: str, key: str) -> str | None:
        return next((e.digests.get(key) for e in reversed(events) if e.kind == kind), None)

    try:
        with workspace.store.read() as conn:
            entry = workspace.log.entry(conn, version.ledger_seq).document()
        registered = entry.get("digests", {}) if entry.get("kind") == "model.registered" else {}
    except MlgateError:
        registered = {}  # a missing entry: every ledger value below reads None, a mismatch
    artifact = "sha256:" + version.sha256
    facts: dict[str, dict[str, str | None]] = {
        "artifact": {
            "version": artifact,
            "re-hashed file": _attempt(lambda: _rehash(workspace, version)),
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
            "recomputed from the frame": _attempt(lambda: _fingerprint(workspace, data)),
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


def _rehash(workspace: Workspace, version: ModelVersion) -> str:
    workspace.registry.read_artifact(version)  # re-hashes; raises if the file changed
    return "sha256:" + version.sha256


def _fingerprint(workspace: Workspace, data: Mapping[str, Any]) -> str:
    sha = data.get("frame_sha256")
    if not isinstance(sha, str):
        raise LineageError("the run records no stored training frame")
    return frame_from_bytes(workspace.artifacts.get(sha)).fingerprint()


def _attempt(compute: Callable[[], str]) -> str:
    """The recomputed value, or why it could not be recomputed (which then mismatches)."""
    try:
        return str(compute())
    except MlgateError as exc:
        return f"unavailable: {exc}"
