"""The terminal form of a drift report: a table per feature, notes, and a one-line verdict.

Columns: the test and its statistic, the adjusted p-value, then the criterion that decided
the verdict with its value and threshold (an effect size such as PSI, the test's p-value
against alpha, or, for a feature too small to judge, its count against ``min_samples``).
Feature names and reasons come from users' files, so every one is escaped for rich markup.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich import box
from rich.markup import escape
from rich.table import Table

from mlgate.cli._common import console

if TYPE_CHECKING:
    from mlgate.monitoring.drift import DriftReport, FeatureDrift

__all__ = ["print_drift_table"]

_CORRECTIONS = {"bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni", "none": "no"}


def _num(value: float | None, *, p: bool = False) -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if p and 0 < value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3g}" if p else f"{value:.4g}"


def _statistic(feature: FeatureDrift) -> float | None:
    if feature.test == "ks":
        return feature.ks.statistic if feature.ks else None
    if feature.test == "chi2":
        return feature.chi2.statistic if feature.chi2 else None
    return feature.psi


def _drifted_cell(feature: FeatureDrift) -> str:
    if feature.drifted:
        return "[bold red]\u2713[/]"
    if feature.p_value is None:
        return "[dim]\u2717[/]"
    return "[green]\u2717[/]"


def _status_cell(feature: FeatureDrift) -> str:
    status = escape(feature.status)
    return status if feature.status == "ok" else f"[yellow]{status}[/]"


def _method(report: DriftReport) -> str:
    method = report.method
    tests = method.get("tests")
    if isinstance(tests, dict):
        tested = ", ".join(f"{t} ({kind})" for kind, t in tests.items())
    else:
        tested = str(tests)
    correction = _CORRECTIONS.get(str(method.get("correction")), str(method.get("correction")))
    return (
        f"tests {tested}, {correction} correction at alpha {method.get('alpha')}, "
        f"effect sizes must pass their thresholds; dataset rule: {method.get('dataset_rule')}"
    )


def _needs_note(feature: FeatureDrift) -> bool:
    return bool(
        feature.status != "ok"
        or feature.new_categories
        or feature.infinite_reference
        or feature.infinite_current
    )


def print_drift_table(report: DriftReport, reference: str, current: str) -> None:
    """Print the report for a person: header, table, notes on odd features, the verdict."""
    from mlgate.monitoring.report import deciding_value

    console.print(
        f"[dim]reference[/] {escape(reference)} ({report.n_reference_rows:,} rows)  "
        f"[dim]current[/] {escape(current)} ({report.n_current_rows:,} rows)"
    )
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    longest = max((len(name) for name in report.features), default=7)
    table.add_column("feature", overflow="fold", min_width=min(longest, 32))
    table.add_column("kind")
    table.add_column("test")
    table.add_column("statistic", justify="right")
    table.add_column("p (adj.)", justify="right")
    table.add_column("decided by")
    table.add_column("value", justify="right")
    table.add_column("threshold", justify="right")
    table.add_column("status")
    table.add_column("drifted", justify="center")
    for feature in report.features.values():
        table.add_row(
            escape(feature.name),
            feature.kind,
            escape(feature.test),
            _num(_statistic(feature)),
            _num(feature.p_value_adjusted, p=True),
            escape(feature.decided_by),
            _num(deciding_value(feature), p=feature.decided_by == feature.test),
            _num(feature.threshold),
            _status_cell(feature),
            _drifted_cell(feature),
        )
    console.print(table)
    for feature in report.features.values():
        if _needs_note(feature):
            console.print(f"  [bold]{escape(feature.name)}[/]: {escape(feature.reason)}")
    if report.ignored_columns:
        ignored = ", ".join(report.ignored_columns)
        console.print(f"  [dim]not in the reference, ignored: {escape(ignored)}[/]")
    verdict = "[bold red]drift detected[/]" if report.drifted else "[bold green]no drift[/]"
    console.print(
        f"{verdict}: {report.n_drifted} of {len(report.features)} features drifted "
        f"(share {report.share_drifted:.0%}); {escape(_method(report))}"
    )
