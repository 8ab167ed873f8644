"""How ``mlgate monitor`` shows what it sees: a live table on a terminal, lines otherwise."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from mlgate.cli._common import console
from mlgate.monitoring.stream import (
    Alarm,
    ConceptMonitor,
    DriftMonitor,
    LoopStatus,
    MonitorLoop,
)

__all__ = [
    "alarm_line",
    "monitor_table",
    "print_alarm_json",
    "run_with_display",
    "summarise",
    "window_line",
]


_PLAIN_EVERY_S = 5.0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def alarm_line(alarm: Alarm) -> str:
    """One line per alarm: kind, feature, statistic vs threshold, p-value, window."""
    w = alarm.window
    threshold = "" if alarm.threshold is None else f" >= {_fmt(alarm.threshold)}"
    p = "" if alarm.p_value is None else f" p={_fmt(alarm.p_value)}"
    ref = "" if alarm.reference is None else f" (reference {_fmt(alarm.reference)})"
    where = f"records {w.start}-{w.end} ({w.size})"
    version = f" version {alarm.version}" if alarm.version else ""
    return (
        f"ALARM {alarm.kind} {alarm.feature}: {alarm.statistic} {_fmt(alarm.value)}{threshold}"
        f"{p}{ref} in window {w.index}, {where}{version}"
    )


def print_alarm_json(alarm: Alarm) -> None:
    sys.stdout.write(json.dumps({"alarm": alarm.to_json()}, allow_nan=False) + "\n")
    sys.stdout.flush()


def window_line(monitor: DriftMonitor) -> str | None:
    """A summary of the monitor's last judged window, or None before the first."""
    report = monitor.last_window
    if report is None:
        return None
    drift = report.drift
    judged = [f for f in drift.features.values() if f.psi is not None]
    worst = max(judged, key=lambda f: f.psi or 0.0, default=None)
    top = "" if worst is None else f"; max psi {_fmt(worst.psi)} ({worst.name})"
    span = report.span
    return (
        f"{monitor.kind} window {span.index} (records {span.start}-{span.end}): "
        f"{drift.n_drifted} of {len(drift.features)} features drifted{top}"
    )


def monitor_table(
    endpoint: str,
    source: str,
    status: LoopStatus,
    monitors: Sequence[DriftMonitor],
    concept: ConceptMonitor | None,
) -> Group:
    """The live view: counters, each monitor's window and last statistics, recent alarms."""
    head = Text.from_markup(
        f"[bold]mlgate monitor[/] {escape(endpoint)} from {escape(source)}: "
        f"{status.records} records, {status.rejected} rejected, {status.labels} labels, "
        f"{status.alarms_total} alarms   [dim](Ctrl-C to stop)[/]"
    )
    parts: list[Table | Text] = [head]
    for monitor in monitors:
        fill = monitor.window_fill
        filled = f"{monitor.window_records}" + ("" if fill is None else f" ({fill:.0%})")
        table = Table(
            title=f"{monitor.kind}: window {monitor.window.describe()}, filling {filled}, "
            f"{monitor.windows_judged} judged",
            title_justify="left",
        )
        for column in ("feature", "status", "psi", "js", "p (adj.)", "missing", "drifted"):
            table.add_column(column)
        report = monitor.last_window
        if report is not None:
            missing = {m.name: m.current for m in report.missing}
            for name, f in report.drift.features.items():
                table.add_row(
                    escape(name),
                    f.status,
                    _fmt(f.psi),
                    _fmt(f.js),
                    _fmt(f.p_value_adjusted),
                    _fmt(missing.get(name)),
                    "[bold red]yes[/]" if f.drifted else "no",
                )
        parts.append(table)
    if concept is not None:
        join = concept.join.stats
        parts.append(
            Text(
                f"concept ({type(concept.detector).__name__}): {concept.n_seen} labelled, "
                f"error rate {_fmt(concept.error_rate)}, pending {join.pending_predictions}, "
                f"late {join.late}, expired {join.expired}, missing labels "
                f"{join.missing_labels}, unusable losses {concept.invalid_losses}"
            )
        )
    for alarm in list(status.recent_alarms)[-5:]:
        parts.append(Text(alarm_line(alarm), style="red"))
    return Group(*parts)


def run_with_display(
    loop: MonitorLoop,
    endpoint: str,
    source: str,
    shown: list[Alarm],
    json_output: bool,
    max_records: int | None,
    once: bool,
) -> LoopStatus:
    monitors, concept = loop.monitors, loop.concept
    if console.is_terminal and not json_output:
        with Live(console=console, refresh_per_second=4, transient=False) as live:

            def show(status: LoopStatus) -> None:
                while shown:
                    live.console.print(alarm_line(shown.pop(0)), style="red", markup=False)
                live.update(monitor_table(endpoint, source, status, monitors, concept))

            return loop.run(max_records=max_records, once=once, progress=show)
    judged = [0] * len(monitors)
    last = [time.monotonic()]

    def lines(status: LoopStatus) -> None:
        if json_output:
            return
        while shown:
            console.print(alarm_line(shown.pop(0)), markup=False, highlight=False)
        for i, monitor in enumerate(monitors):
            if monitor.windows_judged != judged[i]:
                judged[i] = monitor.windows_judged
                line = window_line(monitor)
                if line:
                    console.print(line, markup=False, highlight=False)
        if time.monotonic() - last[0] >= _PLAIN_EVERY_S:
            last[0] = time.monotonic()
            console.print(
                f"{status.records} records, {status.rejected} rejected, {status.alarms_total} "
                "alarms",
                markup=False,
                highlight=False,
            )

    return loop.run(max_records=max_records, once=once, progress=lines)


def summarise(
    status: LoopStatus,
    loop: MonitorLoop,
    ledger_entries: list[int],
    json_output: bool,
    *,
    unledgered: int = 0,
) -> None:
    summary: dict[str, object] = {
        "records": status.records,
        "rows_read": status.consumed,
        "rejected": status.rejected,
        "labels": status.labels,
        "alarms": status.alarms_total,
        "ledger_entries": list(ledger_entries),
        "unledgered_alarms": unledgered,
        "sink_failures": loop.sink_failures,
        "windows": {m.kind: m.windows_judged for m in loop.monitors},
        "late_records": sum(m.late_records for m in loop.monitors),
        "stopped": status.stopped,
    }
    if loop.concept is not None:
        summary["labels_joined"] = loop.concept.join.stats.to_json()
        summary["invalid_losses"] = loop.concept.invalid_losses
    if json_output:  # JSON lines: one object per line, like the alarms before it
        sys.stdout.write(json.dumps({"summary": summary}, allow_nan=False) + "\n")
        sys.stdout.flush()
        return
    failed = (
        f", {unledgered} NOT ledgered ({loop.sink_failures} sink failures)" if unledgered else ""
    )
    console.print(
        f"monitored {status.records} records ({status.rejected} rejected): "
        f"{status.alarms_total} alarms, ledger entries {ledger_entries or 'none'}{failed}; "
        f"stopped: {status.stopped}",
        markup=False,
        highlight=False,
    )
