"""``mlgate optimize MODEL:VERSION``: cheaper variants of a model, checked and measured."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlgate.cli._common import console, err_console, open_workspace, print_json, state_of
from mlgate.errors import OptimizeError


def optimize_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="MODEL:VERSION (a version number or an alias)."),
    holdout: Path = typer.Option(
        ..., help="Rows to compare and time variants on: CSV or Parquet, the model's features."
    ),
    label_column: str | None = typer.Option(
        None, help="Column of true labels in the holdout: adds accuracy (or error) deltas."
    ),
    calibration: Path | None = typer.Option(
        None,
        help="Rows to calibrate static int8 on (default: the holdout's first quarter when it "
        "has 400 rows or more, else the holdout).",
    ),
    max_prob_diff: float | None = typer.Option(
        None, help="Largest probability change a quantized or fp16 variant may make (0.05)."
    ),
    min_agreement: float | None = typer.Option(
        None, help="Share of labels a quantized or fp16 variant must keep (0.99)."
    ),
    max_accuracy_drop: float | None = typer.Option(
        None, help="Accuracy a variant may lose on labelled rows (0.01)."
    ),
    max_rmse_increase: float | None = typer.Option(
        None, help="Relative RMSE rise a regressor's variant may show (0.01)."
    ),
    kinds: str | None = typer.Option(
        None,
        help="Comma-separated kinds (default: every kind for the model's flavor): onnx, "
        "onnx-int8-dynamic, onnx-int8-static, onnx-fp16, torch-pruned.",
    ),
    prune_ratio: float = typer.Option(
        0.3, help="torch-pruned: share of each hidden layer's neurons to remove."
    ),
    fine_tune_epochs: int = typer.Option(
        0, help="torch-pruned: epochs of fine-tuning on the labelled holdout (0: none)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Convert to ONNX, quantize, check each variant against its parent, register the good.

    A variant outside tolerance is reported and not registered; every run's report is a
    ledger entry.
    """
    from mlgate.optimize import PruneConfig, Tolerances
    from mlgate.optimize.sample import load_sample
    from mlgate.optimize.service import BUILDERS, optimize_version

    name, sep, ref = model.partition(":")
    if not sep or not name or not ref:
        raise OptimizeError(f"name the model as MODEL:VERSION (e.g. fraud:3), got {model!r}")
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip()) if kinds else None
    unknown = [kind for kind in chosen or () if kind not in BUILDERS]
    if unknown or chosen == ():
        raise OptimizeError(
            f"unknown optimization kind(s) {unknown or '(none given)'}; choose from "
            f"{', '.join(BUILDERS)}"
        )
    version: int | str = int(ref) if ref.isdigit() else ref
    prune = PruneConfig(prune_ratio=prune_ratio, fine_tune_epochs=fine_tune_epochs)
    tolerance = Tolerances.with_bounds(
        max_probability_diff=max_prob_diff,
        min_label_agreement=min_agreement,
        max_accuracy_drop=max_accuracy_drop,
        max_rmse_increase=max_rmse_increase,
    )
    actor = state_of(ctx).settings.actor

    def progress(message: str) -> None:
        err_console.print(f"[dim]{message}[/]")

    with open_workspace(ctx) as workspace:
        parent = workspace.registry.get(name, version)
        # A model trained on named columns reads them by name, in its own order; the
        # file's order does not matter then. The parent decides what a missing value
        # means (trees route it; most models refuse it).
        names = parent.flavor_metadata.get("feature_names")
        features = [str(n) for n in names] if isinstance(names, list) else None
        rows, labels = load_sample(
            holdout, parent.signature, label_column, feature_names=features, allow_nan=True
        )
        sample = None
        if calibration is not None:
            columns = features
            if columns is None and label_column is not None:
                columns = _without(calibration, label_column)
            sample = load_sample(calibration, parent.signature, feature_names=columns)[0]
        report = optimize_version(
            workspace,
            name,
            version,
            holdout=rows,
            labels=labels,
            calibration=sample,
            kinds=chosen,
            tolerance=tolerance,
            prune_config=prune,
            actor=actor,
            progress=None if as_json else progress,
        )
    result = report.to_json()
    if as_json:
        print_json(result)
        return
    _print(result)


def _print(report: dict[str, Any]) -> None:
    table = Table(title=f"{report['model']} v{report['parent_version']}: variants")
    for column in ("version", "kind", "size", "p50 µs", "rows/s @256", "Δ accuracy", "status"):
        table.add_column(column)
    for row in report["variants"]:
        delta = row.get("accuracy_delta")
        table.add_row(
            "–" if row["version"] is None else str(row["version"]),
            row["kind"],
            _size(row["size_bytes"]),
            f"{row['p50_us']:.1f}",
            f"{row['rows_per_s']:,.0f}",
            "–" if delta is None else f"{delta:+.4f}",
            row["status"],
        )
    console.print(table)
    for row in report["variants"]:
        for reason in row.get("reasons", []):
            console.print(f"{row['kind']}: {reason}")
    for skipped in report.get("skipped", []):
        console.print(f"{skipped['kind']}: {skipped['status']}: {skipped['reason']}")
    console.print(f"report ledgered as entry {report['ledger_seq']}")


def _without(path: Path, label_column: str) -> list[str] | None:
    """The calibration file's columns but the label (it is often the holdout file)."""
    from mlgate.monitoring.tabular import read_column_names

    names = read_column_names(path)
    return [n for n in names if n != label_column] if label_column in names else None


def _size(size: int) -> str:
    return f"{size / 1024:,.1f} KiB" if size < 1 << 20 else f"{size / (1 << 20):,.2f} MiB"
