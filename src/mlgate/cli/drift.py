"""``mlgate drift REFERENCE CURRENT``: has the data moved since the reference?

REFERENCE is a CSV or Parquet file, or a profile saved with ``--save-profile`` (JSON);
CURRENT is a CSV or Parquet file. Every reference column is judged by
:func:`mlgate.monitoring.drift.compare` (or ``compare_profile``), whose docstring holds the
tests and thresholds.

Exit status, as with diff(1): 0 when no feature drifted, 1 when drift was detected, 2 for
trouble: a usage error, or a command that cannot run (a missing or unreadable file, a
column absent from CURRENT, a corrupt profile), which prints one ``error:`` line on stderr
and nothing on stdout. So ``mlgate drift ... || retrain`` never retrains on a typo.

The statistics stack (numpy, scipy, pyarrow) is imported when the command runs, not when
``mlgate`` starts, so other commands do not pay for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from mlgate.cli._common import console, err_console, one_line, print_json
from mlgate.cli._drift_table import print_drift_table
from mlgate.errors import DataError, MlgateError, MonitoringError, ProfileError

if TYPE_CHECKING:
    from mlgate.monitoring.drift import DriftOptions, DriftReport
    from mlgate.monitoring.report import FeaturePlot
    from mlgate.monitoring.stats import Correction
    from mlgate.monitoring.tabular import FeatureKind

__all__ = ["drift_command"]

_PROFILE_SUFFIXES = (".json",)
_DATA_SUFFIXES = (".csv", ".tsv", ".gz", ".bz2", ".parquet", ".pq", ".parq")


class CorrectionChoice(StrEnum):
    bh = "bh"
    bonferroni = "bonferroni"
    none = "none"


_CORRECTIONS: dict[CorrectionChoice, Correction] = {
    CorrectionChoice.bh: "bh",
    CorrectionChoice.bonferroni: "bonferroni",
    CorrectionChoice.none: "none",
}


@dataclasses.dataclass(frozen=True)
class _Outcome:
    report: DriftReport
    plots: dict[str, FeaturePlot] | None


@contextmanager
def _progress(message: str) -> Iterator[None]:
    """A spinner on stderr while a step runs, on a terminal only (never in pipes or logs)."""
    if not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield


def _split(values: Sequence[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def _parse_kinds(values: Sequence[str]) -> dict[str, FeatureKind]:
    kinds: dict[str, FeatureKind] = {}
    for item in _split(values):
        name, sep, kind = item.partition("=")
        name, kind = name.strip(), kind.strip()
        if not sep or not name or kind not in ("numeric", "categorical"):
            raise typer.BadParameter(
                f"expected COLUMN=numeric or COLUMN=categorical, got {item!r}",
                param_hint="--kinds",
            )
        kinds[name] = "numeric" if kind == "numeric" else "categorical"
    return kinds


def _options(alpha: float, correction: CorrectionChoice, bins: int | None) -> DriftOptions:
    from mlgate.monitoring.drift import DriftOptions

    if not 0.0 < alpha < 1.0:
        raise typer.BadParameter(
            f"must lie strictly between 0 and 1, got {alpha}", param_hint="--alpha"
        )
    if bins is None:
        return DriftOptions(alpha=alpha, correction=_CORRECTIONS[correction])
    return DriftOptions(alpha=alpha, correction=_CORRECTIONS[correction], bins=bins)


def _is_profile(path: Path) -> bool:
    """By name (.json; .csv, .parquet, ...), else by content: a JSON object starts with '{'."""
    name = path.name.lower()
    if name.endswith(_PROFILE_SUFFIXES):
        return True
    if name.endswith(_DATA_SUFFIXES) or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror}; check its permissions") from exc
    return head.lstrip().startswith(b"{")


def _choose(names: list[str], selected: list[str], where: str) -> list[str]:
    if not selected:
        return names
    unknown = [n for n in selected if n not in names]
    if unknown:
        raise DataError(
            f"--columns names {unknown}, which the {where} does not have; it has {names}"
        )
    return list(dict.fromkeys(selected))


def _check_current(current: Path, names: Sequence[str], current_names: Sequence[str]) -> None:
    missing = [n for n in names if n not in current_names]
    if missing:
        raise DataError(
            f"{current} lacks {len(missing)} reference column(s): {missing}; fix the file, "
            "or compare the other columns with --columns"
        )
    if not names:
        raise DataError("no columns to compare: the reference has none")


def _from_data(
    reference: Path,
    current: Path,
    selected: list[str],
    overrides: dict[str, FeatureKind],
    options: DriftOptions,
    *,
    save_to: Path | None,
    want_plots: bool,
    quiet: bool,
) -> _Outcome:
    from mlgate.monitoring.tabular import read_column_names, read_frame

    reference_names = read_column_names(reference)
    names = _choose(reference_names, selected, f"reference {reference}")
    stray = sorted(set(overrides) - set(names))
    if stray:
        raise DataError(f"--kinds names {stray}, which are not among the compared columns {names}")
    current_names = read_column_names(current)
    _check_current(current, names, current_names)
    # scipy and friends only once the files look right: a typo fails in a blink.
    from mlgate.monitoring.drift import compare
    from mlgate.monitoring.profile import fit_profile, save_profile
    from mlgate.monitoring.report import plots_from_frames

    with _progress(f"reading {reference}"):
        ref_frame = read_frame(reference, overrides, columns=names)
    # The reader decided each reference column's kind; the current file is read the same way.
    kinds: dict[str, FeatureKind] = {
        n: "numeric" if a.dtype.kind == "f" else "categorical" for n, a in ref_frame.items()
    }
    with _progress(f"reading {current}"):
        cur_frame = read_frame(current, kinds, columns=names)
    if save_to is not None:
        with _progress("fitting the reference profile"):
            profile = fit_profile(ref_frame, kinds, bins=options.bins)
        try:
            saved = save_profile(profile, save_to)
        except OSError as exc:
            raise ProfileError(
                f"cannot save the profile to {save_to}: {exc.strerror}; choose a writable path"
            ) from exc
        _note(f"saved the reference profile to {saved}", quiet)
    with _progress(f"comparing {len(names)} features"):
        report = compare(ref_frame, cur_frame, options, kinds=kinds)
    ignored = tuple(n for n in current_names if n not in reference_names)
    report = dataclasses.replace(report, ignored_columns=ignored)
    plots = None
    if want_plots:
        with _progress("binning the plots"):
            plots = plots_from_frames(report, ref_frame, cur_frame)
    return _Outcome(report, plots)


def _from_profile(
    reference: Path,
    current: Path,
    selected: list[str],
    overrides: dict[str, FeatureKind],
    options: DriftOptions,
    *,
    want_plots: bool,
) -> _Outcome:
    from mlgate.monitoring.drift import compare_profile
    from mlgate.monitoring.profile import load_profile
    from mlgate.monitoring.report import plots_from_profile
    from mlgate.monitoring.tabular import read_column_names, read_frame

    profile = load_profile(reference)
    names = _choose(list(profile.features), selected, f"profile {reference}")
    for name, kind in overrides.items():
        fitted = profile.kinds.get(name)
        if name not in names or fitted != kind:
            raise DataError(
                f"--kinds {name}={kind} does not fit the profile, where {name!r} is "
                f"{fitted or 'absent'}; a profile's kinds are fixed when it is fitted: "
                "refit it with --save-profile and --kinds"
            )
    current_names = read_column_names(current)
    _check_current(current, names, current_names)
    subset = dataclasses.replace(profile, features={n: profile.features[n] for n in names})
    with _progress(f"reading {current}"):
        cur_frame = read_frame(current, {n: subset.kinds[n] for n in names}, columns=names)
    with _progress(f"comparing {len(names)} features"):
        report = compare_profile(subset, cur_frame, options)
    ignored = tuple(n for n in current_names if n not in profile.features)
    report = dataclasses.replace(report, ignored_columns=ignored)
    plots = None
    if want_plots:
        with _progress("binning the plots"):
            plots = plots_from_profile(report, subset, cur_frame)
    return _Outcome(report, plots)


def _note(message: str, quiet: bool) -> None:
    """A line for the person: on stdout with the table, on stderr when stdout holds JSON."""
    (err_console if quiet else console).print(message, markup=False, highlight=False)


def _write_page(outcome: _Outcome, path: Path, reference: Path, current: Path) -> Path:
    from mlgate.monitoring.report import render_html, write_html

    assert outcome.plots is not None
    page = render_html(
        outcome.report,
        outcome.plots,
        reference_label=str(reference),
        current_label=str(current),
        generated_at=datetime.now(UTC),
    )
    try:
        return write_html(path, page)
    except OSError as exc:
        raise MonitoringError(
            f"cannot write the HTML report to {path}: {exc.strerror}; choose a writable path"
        ) from exc


def drift_command(
    reference: Path = typer.Argument(
        ..., help="Reference data (.csv, .tsv, .parquet) or a saved profile (.json)."
    ),
    current: Path = typer.Argument(..., help="Current data (.csv, .tsv or .parquet)."),
    json_output: bool = typer.Option(
        False, "--json", help="Print the report as JSON on stdout (nothing else)."
    ),
    html: Path | None = typer.Option(
        None, "--html", help="Also write a self-contained HTML report with a plot per feature."
    ),
    kinds: list[str] = typer.Option(
        [], "--kinds", help="COLUMN=numeric|categorical, comma-separated or repeated."
    ),
    alpha: float = typer.Option(0.05, help="Significance level, after the correction."),
    correction: CorrectionChoice = typer.Option(
        CorrectionChoice.bh, help="Multiple-testing correction across features."
    ),
    bins: int | None = typer.Option(
        None, min=2, help="Quantile bins for numeric PSI, JS and chi2 (default 10)."
    ),
    columns: list[str] = typer.Option(
        [], "--columns", help="Compare only these columns (comma-separated or repeated)."
    ),
    save_profile: Path | None = typer.Option(
        None, "--save-profile", help="Fit the reference's profile and save it here (JSON)."
    ),
) -> None:
    """Compare CURRENT with REFERENCE feature by feature; exit 1 if drift is detected.

    Exit status: 0 no drift, 1 drift detected, 2 trouble (usage, or the command failed:
    one error line on stderr).
    """
    try:
        _drift(
            reference=reference,
            current=current,
            json_output=json_output,
            html=html,
            kinds=kinds,
            alpha=alpha,
            correction=correction,
            bins=bins,
            columns=columns,
            save_profile=save_profile,
        )
    except MlgateError as exc:
        err_console.print(f"[bold red]error:[/] {escape(one_line(exc))}")
        raise typer.Exit(2) from None


def _drift(
    *,
    reference: Path,
    current: Path,
    json_output: bool,
    html: Path | None,
    kinds: list[str],
    alpha: float,
    correction: CorrectionChoice,
    bins: int | None,
    columns: list[str],
    save_profile: Path | None,
) -> None:
    options = _options(alpha, correction, bins)
    overrides = _parse_kinds(kinds)
    selected = _split(columns)
    if _is_profile(reference):
        if save_profile is not None:
            raise typer.BadParameter(
                "needs reference data, but REFERENCE is a profile", param_hint="--save-profile"
            )
        if bins is not None:
            raise typer.BadParameter(
                "a profile's bins are fixed when it is fitted", param_hint="--bins"
            )
        outcome = _from_profile(
            reference, current, selected, overrides, options, want_plots=html is not None
        )
    else:
        outcome = _from_data(
            reference,
            current,
            selected,
            overrides,
            options,
            save_to=save_profile,
            want_plots=html is not None,
            quiet=json_output,
        )
    # The page is written first: a path that cannot be written is an error, and an error
    # leaves stdout empty.
    written = _write_page(outcome, html, reference, current) if html is not None else None
    if json_output:
        print_json(outcome.report.to_json())
    else:
        print_drift_table(outcome.report, str(reference), str(current))
    if written is not None:
        _note(f"wrote the HTML report to {written}", json_output)
    if outcome.report.drifted:
        raise typer.Exit(1)
