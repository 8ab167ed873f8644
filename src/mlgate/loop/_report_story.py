"""The story of a loop incident in words and markers, derived from what happened.

The report never tells a fixed story: the outcome line and the plot's markers are
computed from the runs and ledger events given, so a rejected candidate, a quarantine or
a rollback reads as such. Events are placed on the request axis at the request answered
nearest in time, and two names for one moment (``loop.promoted``, ``canary.promoted``)
become one marker.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.loop._report_svg import Marker
from mlgate.monitoring.report._svg import text

if TYPE_CHECKING:
    from mlgate.loop.report import LoopReport, ReportAnswer

__all__ = ["DASH", "fmt", "outcome_line", "sorted_answers", "story_markers"]

DASH = "\u2014"

# event kind -> (marker label, colour); loop.* and canary.* name the same moments
_MARKERS = {
    "loop.triggered": ("triggered", "#e67e22"),
    "loop.quarantined": ("quarantined", "#8e44ad"),
    "loop.canary_started": ("canary start", "#4c78a8"),
    "canary.started": ("canary start", "#4c78a8"),
    "loop.promoted": ("promoted", "#2e7d32"),
    "canary.promoted": ("promoted", "#2e7d32"),
    "loop.rolled_back": ("rolled back", "#c0392b"),
    "canary.rolled_back": ("rolled back", "#c0392b"),
}


def fmt(value: object, spec: str = ".4g") -> str:
    """A number for people; anything that is not a finite number reads as a dash."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return DASH if value is None else text(value)
    number = float(value)
    return format(number, spec) if math.isfinite(number) else DASH


def sorted_answers(report: LoopReport) -> list[ReportAnswer]:
    """The answers in request order: the x axis of the plots and of the story."""
    return sorted(report.answers, key=lambda a: a.index)


class _Placer:
    """The request answered nearest in time to a moment: where an event sits on the x axis."""

    def __init__(self, answers: Sequence[ReportAnswer]) -> None:
        self._indices = [a.index for a in answers]
        self._times = np.array([a.at for a in answers], dtype=np.float64)
        self._any = bool(np.isfinite(self._times).any())

    def __call__(self, at: float) -> int | None:
        if not (self._any and math.isfinite(at)):
            return None
        return self._indices[int(np.nanargmin(np.abs(self._times - at)))]


def story_markers(report: LoopReport) -> list[Marker]:
    """Drift injection and each marked event, at its request index; repeats merged."""
    answers = sorted_answers(report)
    place, out = _Placer(answers), list[Marker]()
    if report.drift_at is not None:
        out.append(Marker(report.drift_at, "drift injected", "drift injected", "#c0392b"))
    near = max(1.0, (answers[-1].index - answers[0].index) / 100) if answers else 1.0
    for event in sorted(report.events, key=lambda e: e.at):
        if event.kind not in _MARKERS or (index := place(event.at)) is None:
            continue
        label, colour = _MARKERS[event.kind]
        same = [m for m in out if m.label == label and abs(m.index - index) <= near]
        if same:  # loop.promoted and canary.promoted: one moment, one marker
            merged = Marker(same[0].index, label, f"{same[0].detail}; {event.text}", colour)
            out[out.index(same[0])] = merged
        else:
            out.append(Marker(index, label, event.text, colour))
    return out


def _canary_steps(report: LoopReport) -> list[int]:
    """Canary steps before each canary's end (promotion or rollback), in time order."""
    events = sorted(report.events, key=lambda e: e.at)
    ends = [e for e in events if e.kind in ("loop.promoted", "loop.rolled_back")] or [
        e for e in events if e.kind in ("canary.promoted", "canary.rolled_back")
    ]
    steps, since = [], -math.inf
    for end in ends:
        steps.append(sum(1 for e in events if e.kind == "canary.step" and since < e.at <= end.at))
        since = end.at
    return steps


def _run_order(run: Mapping[str, Any]) -> tuple[int, float, str]:
    """Runs by numeric id (run 10 after run 9), anything else after them by its text."""
    ident = run.get("id")
    if isinstance(ident, int | float) and not isinstance(ident, bool):
        return (0, float(ident), "")
    return (1, 0.0, str(ident))


def outcome_line(report: LoopReport) -> str:
    """The story in one line, from the runs and events given."""
    answers, parts = sorted_answers(report), []
    triggers = sorted((e for e in report.events if e.kind == "loop.triggered"), key=lambda e: e.at)
    if report.drift_at is not None:
        parts.append(f"drift at request {report.drift_at}")
        place = _Placer(answers)
        found = [i for e in triggers if (i := place(e.at)) is not None]
        later = [i for i in found if i >= report.drift_at]
        if later:
            parts.append(f"detected after {later[0] - report.drift_at} requests")
        elif triggers and not found:  # no answers to place the trigger: say when instead
            parts.append(f"run triggered at {fmt(triggers[0].at - report.started_at, '.1f')} s")
        else:
            parts.append("no run triggered after it")
    elif triggers:
        parts.append(f"{len(triggers)} run{'s' if len(triggers) > 1 else ''} triggered")
    steps = iter(_canary_steps(report))
    promoted = False
    for run in sorted(report.runs, key=_run_order):
        state, version = str(run.get("state")), run.get("candidate_version")
        what = f"version {version}" if version is not None else f"run {run.get('id')}"
        if state in ("promoted", "rolled_back"):
            n = next(steps, None)
            after = f" after {n} canary step{'' if n == 1 else 's'}" if n else ""
            parts.append(f"{what} {state.replace('_', ' ')}{after}")
            promoted |= state == "promoted"
        elif state == "quarantined":
            parts.append(f"run {run.get('id')}'s data quarantined")
        elif state == "rejected":
            parts.append(f"{what} rejected")
        elif state == "canary":
            parts.append(f"{what} still in canary")
        else:
            parts.append(f"run {run.get('id')} {state.replace('_', ' ')}")
    if not promoted:
        parts.append("no version promoted")
    return " \u2192 ".join(parts)
