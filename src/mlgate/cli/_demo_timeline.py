"""The demo's timeline: the ledger entries that tell the story, one human line each.

Read from the ledger, not from the demo's own memory, so the timeline is what an auditor
would find. Alarms come in bursts (one per feature per window); only the first of each
burst is shown, with the count of the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mlgate.experiments.canary.status import parse_time
from mlgate.ledger.events import LedgerEntry
from mlgate.loop.report import ReportEvent

__all__ = ["story_events"]

_SHOWN = ("loop.", "canary.", "model.registered", "model.alias_moved", "monitor.alarm")
_SKIPPED = ("loop.suppressed",)


def _line(document: dict[str, Any]) -> str:
    kind = str(document["kind"])
    subject = document.get("subject", {})
    attributes = document.get("attributes", {})
    run = subject.get("run")
    if kind == "monitor.alarm":
        return (
            f"{subject.get('alarm')} on {subject.get('feature')}: {attributes.get('statistic')} "
            f"{_short(attributes.get('value'))} (threshold {_short(attributes.get('threshold'))})"
        )
    if kind == "loop.triggered":
        return f"run {run} triggered by {attributes.get('signal')}: {attributes.get('reason')}"
    if kind == "model.registered":
        return f"{subject.get('model')} version {subject.get('version')} registered"
    if kind == "model.alias_moved":
        return (
            f"{subject.get('model')} alias {subject.get('alias')} → version "
            f"{attributes.get('to_version', subject.get('version'))}"
        )
    if kind.startswith("canary."):
        detail = attributes.get("percent") or attributes.get("reason") or ""
        return f"canary {subject.get('canary')} {kind.split('.', 1)[1]} {detail}".rstrip()
    extras = {k: v for k, v in attributes.items() if k not in ("from_state",)}
    shown = ", ".join(f"{k}={v}" for k, v in list(extras.items())[:4])
    return f"run {run} {kind.split('.', 1)[1].replace('_', ' ')}" + (f" ({shown})" if shown else "")


def _short(value: object) -> str:
    """A ledgered number (exact text) with three significant digits, for people."""
    try:
        return f"{float(str(value)):.3g}"
    except ValueError:
        return str(value)


def story_events(entries: Sequence[tuple[int, LedgerEntry]]) -> list[ReportEvent]:
    events: list[ReportEvent] = []
    burst = 0
    for seq, entry in entries:
        document = entry.document()
        kind = str(document.get("kind"))
        if not kind.startswith(_SHOWN) or kind.startswith(_SKIPPED):
            continue
        if kind == "monitor.alarm" and events and events[-1].kind == "monitor.alarm":
            burst += 1
            continue
        if burst and events:
            last = events[-1]
            events[-1] = ReportEvent(
                last.at, last.kind, f"{last.text} (+{burst} more)", last.ledger_seq
            )
            burst = 0
        at = parse_time(str(document["time"])).timestamp()
        events.append(ReportEvent(at, kind, _line(document), seq))
    if burst and events:
        last = events[-1]
        events[-1] = ReportEvent(
            last.at, last.kind, f"{last.text} (+{burst} more)", last.ledger_seq
        )
    return events
