"""The JSON a lineage shows of a loop run and a canary: the fields an auditor reads.

A run row holds more than a lineage needs (whole trigger payloads, every package of the
environment); these views pick the fields that answer "what trained this, on what, and
what did the gates say", and flatten the gate report's tree to its leaf checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlgate.experiments.canary.status import CanaryStatus
from mlgate.loop.runs import LoopRun

__all__ = ["canary_json", "run_json"]

_COMPOSITE = ("all_of", "any_of")
_RUN_KEYS = (
    "id loop state created_at updated_at error champion_version candidate_version canary_id "
    "params metrics"
).split()


def run_json(run: LoopRun) -> dict[str, Any]:
    """The run's summary: its row's key fields, trigger, data, environment, code and gates."""
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


def canary_json(status: CanaryStatus) -> dict[str, Any]:
    """The canary's identity and state, without its config, steps and last report."""
    keys = "id endpoint baseline candidate state created_at created_by updated_at".split()
    return {key: getattr(status, key) for key in keys}


def _leaves(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if node.get("kind") in _COMPOSITE:
        return [leaf for child in node.get("children", []) for leaf in _leaves(child)]
    return [node]


def _fields(source: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {key: source.get(key) for key in keys}


def _pick(source: Mapping[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    return None if source is None else _fields(source, *keys)
