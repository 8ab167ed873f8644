"""The loop benchmark's Markdown: four tables, goal lines, and what the numbers say."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from bench._loop_candidates import WORSE_KINDS
from bench._loop_setup import spread

__all__ = ["better_table", "drift_table", "goal_mark", "live_table", "worse_table"]

_FLOOR, _DELTA = 0.7, 0.02  # the gates' accuracy floor and margin over the champion
_DRIFT_ROWS = (
    ("alarm", "first alarm (drift or performance)"),
    ("triggered", "first run triggered"),
    ("gate_passed", "gates passed (then registered, canary started)"),
)
_LIVE_ROWS = (
    ("alarm", "first alarm (drift or performance)"),
    ("triggered", "first run triggered"),
    ("gate_passed", "gates passed"),
    ("canary_started", "canary started (10%)"),
    ("promoted", "promoted (canary 10% → 50% → 100%)"),
)


def _n(value: float | int | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def goal_mark(ok: bool) -> str:
    return "✅ met" if ok else "❌ missed"


def _event_rows(
    scenarios: Sequence[dict[str, Any]], rows: Sequence[tuple[str, str]], unit: str
) -> list[str]:
    lines = [
        f"| from the drift onset to | reached | {unit}: median | p90 | max "
        "| seconds: median | p90 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in rows:
        marks = [s["events"][key] for s in scenarios if key in s["events"]]
        counted = spread([m[unit] for m in marks])
        seconds = spread([m["seconds"] for m in marks])
        lines.append(
            f"| {label} | {len(marks)}/{len(scenarios)} | {_n(counted['median'])} "
            f"| {_n(counted['p90'])} | {_n(counted['max'])} | {_n(seconds['median'], 1)} "
            f"| {_n(seconds['p90'], 1)} |"
        )
    return lines


def drift_table(scenarios: Sequence[dict[str, Any]], budget: int) -> list[str]:
    lines = _event_rows(scenarios, _DRIFT_ROWS, "records")
    kinds = Counter(s["events"]["alarm"]["kind"] for s in scenarios if "alarm" in s["events"])
    runs = [r for s in scenarios for r in s["runs"]]
    after = Counter(r["state"] for r in runs if r["after_onset"])
    early = Counter(r["state"] for r in runs if not r["after_onset"])
    states = after + early
    champion = float(np.median([s["champion_accuracy_after"] for s in scenarios]))
    passed = [r["candidate_accuracy_after"] for r in runs if r["state"] == "canary"]
    passed_early = [r for r in runs if r["state"] == "canary" and not r["after_onset"]]
    rejected = [r["candidate_accuracy_after"] for r in runs if r["state"] == "rejected"]
    wrongly = sum(
        1
        for s in scenarios
        for r in s["runs"]
        if r["state"] == "rejected"
        and r["candidate_accuracy_after"] is not None
        and r["candidate_accuracy_after"] >= max(_FLOOR, s["champion_accuracy_after"] + _DELTA)
    )
    stuck = [s for s in scenarios if "gate_passed" not in s["events"]]
    lines += [
        "",
        f"- First alarm by kind: {_counts(kinds)}.",
        f"- Runs: {sum(after.values())} started after the onset ({_counts(after)}); "
        f"{sum(early.values())} before it, by a false alarm ({_counts(early)}).",
        f"- Accuracy on 5,000 fresh rows of the new world: the champion {champion:.3f} "
        f"(median); candidates that passed the gates {_median(passed)} (worst {_worst(passed)})"
        f"; candidates the gates rejected {_median(rejected)} (best {_best(rejected)}); "
        f"{wrongly} of these would have met the gates on the fresh rows (accuracy ≥ {_FLOOR} "
        f"and ≥ {_DELTA} over the champion), i.e. were rejected wrongly.",
    ]
    if passed_early:
        lines.append(
            f"- {len(passed_early)} of the runs that passed were started before the onset by a "
            "false alarm and waited for labelled rows, so they trained on rows of both worlds "
            "(the gates judge on a holdout of the same rows)."
        )
    if states["quarantined"]:
        lines.append(
            f"- Every quarantine here ({states['quarantined']}) is a false one: no record in "
            "these scenarios is corrupted. A training window that straddles the onset holds "
            "two labelling rules, which the label-flip check reads as flipped labels; its "
            "post-drift rows are then never trained on."
        )
    stuck_runs = Counter(r["state"] for s in stuck for r in s["runs"])
    lines.append(
        f"- No passed gate within {budget:,} records after the onset: {len(stuck)} of "
        f"{len(scenarios)} scenarios"
        + (
            f" (their runs: {_counts(stuck_runs)}). The drift monitor alarms when a feature "
            "enters drift, not while it stays there, and ADWIN settles on the new error rate, "
            "so after a run that is not promoted only a chance alarm starts another, while the "
            "champion keeps serving the new world at the accuracy above."
            if stuck
            else "."
        )
    )
    false_alarms = sum(s["alarms_before_onset"] for s in scenarios)
    lines.append(
        f"- Before the onset: {false_alarms} alarm(s) over {sum(s['onset'] for s in scenarios):,} "
        f"records in all scenarios, starting {sum(s['runs_before_onset'] for s in scenarios)} "
        "run(s)."
    )
    return lines


def live_table(scenarios: Sequence[dict[str, Any]]) -> list[str]:
    lines = _event_rows(scenarios, _LIVE_ROWS, "requests")
    outcomes = Counter(s["outcome"] for s in scenarios)
    rates = [s["requests_per_s"] for s in scenarios if s["requests_per_s"]]
    states = Counter(state for s in scenarios for state in s["runs"])
    lines += [
        "",
        f"- Outcome: {_counts(outcomes)}. Runs: {_counts(states)}"
        + (
            " (no label is poisoned here: each quarantine is a false one)."
            if states["quarantined"]
            else "."
        ),
        f"- Requests served: median {_n(float(np.median(rates)) if rates else None)} per "
        f"second; client errors: {sum(s['client_errors'] for s in scenarios)}.",
    ]
    return lines


def worse_table(scenarios: Sequence[dict[str, Any]]) -> tuple[list[str], int]:
    lines = [
        "| kind | scenarios | run started by | quarantined (check) | rejected by gates "
        "(failed checks) | failed (where) | passed gates | candidate − champion accuracy "
        "(median) |",
        "|---|---:|---|---|---|---|---:|---:|",
    ]
    for kind in [k for k in WORSE_KINDS if any(s["kind"] == k for s in scenarios)]:
        mine = [s for s in scenarios if s["kind"] == kind]
        lines.append(_worse_row(kind, mine))
    lines.append(_worse_row("**all**", list(scenarios)))
    promoted = sum(1 for s in scenarios if s["stopped"] == "passed gates")
    return lines, promoted


def _worse_row(label: str, rows: Sequence[dict[str, Any]]) -> str:
    def where(stopped: str) -> str:
        mine = [s for s in rows if s["stopped"] == stopped]
        reasons = Counter(r for s in mine for r in s["reasons"])
        return f"{len(mine)}" + (f" ({_counts(reasons)})" if reasons else "")

    deltas = [
        s["candidate_accuracy"] - s["champion_accuracy"]
        for s in rows
        if s["candidate_accuracy"] is not None
    ]
    shares = [s["share"] for s in rows if s["share"] is not None]
    if shares and label != "**all**":
        label += f" ({min(shares):.0%}–{max(shares):.0%})"
    delta = f"{np.median(deltas):+.3f} ({len(deltas)} trained)" if deltas else "– (none trained)"
    passed = sum(1 for s in rows if s["stopped"] == "passed gates")
    return (
        f"| {label} | {len(rows)} | {_counts(Counter(s['trigger'] for s in rows))} "
        f"| {where('quarantined')} | {where('rejected by gates')} | {where('failed')} "
        f"| {passed} | {delta} |"
    )


def better_table(scenarios: Sequence[dict[str, Any]]) -> tuple[list[str], int]:
    better = [
        s
        for s in scenarios
        if s["candidate_accuracy"] is not None
        and s["candidate_accuracy"] > s["champion_accuracy"] + 0.02
    ]
    promoted = sum(1 for s in scenarios if s["promoted"])
    records = spread([s["records"] for s in scenarios if s["promoted"]])
    seconds = spread([s["seconds"] for s in scenarios if s["promoted"]])
    stopped = Counter(s["stopped"] for s in scenarios if not s["promoted"])
    lines = [
        "| scenarios | run started by | candidate better on fresh rows (by > 0.02) "
        "| champion / candidate accuracy (median) | not promoted | promoted "
        "| records after the drift, median (max) | seconds: median | p90 |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|",
        f"| {len(scenarios)} | {_counts(Counter(s['trigger'] for s in scenarios))} "
        f"| {len(better)} "
        f"| {_median([s['champion_accuracy'] for s in scenarios])} / "
        f"{_median([s['candidate_accuracy'] for s in scenarios])} "
        f"| {_counts(stopped) if stopped else '0'} | {promoted} "
        f"| {_n(records['median'])} ({_n(records['max'])}) "
        f"| {_n(seconds['median'], 1)} | {_n(seconds['p90'], 1)} |",
    ]
    return lines, promoted


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in counter.most_common()) or "none"


def _worst(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{min(present):.3f}" if present else "–"


def _best(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{max(present):.3f}" if present else "–"


def _median(values: Sequence[float | None]) -> str:
    present = [v for v in values if v is not None]
    return f"{float(np.median(present)):.3f}" if present else "–"
