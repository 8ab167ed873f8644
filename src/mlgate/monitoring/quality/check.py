"""Data-quality and poisoning checks for a batch at ingestion, before anyone trains on it.

:func:`check_batch` compares a batch frame with a :class:`QualityProfile` and returns
a :class:`QualityReport` of findings. A finding of severity ``"error"`` fails the
batch; ``"warning"`` is reported and does not. :class:`~mlgate.monitoring.quality.Quarantine`
sets failed batches aside.

Checks (name: severity; what fires it):

* ``empty_batch``: error; the batch has no rows. A finding rather than an exception,
  so that an empty delivery is quarantined with a reason like any other bad batch.
* ``missing_column``: error for a required column, warning for an optional one.
* ``extra_columns``: warning; columns the reference did not have.
* ``wrong_type``: error; entries that are not of the column's kind (strings in a
  numeric column, numbers in a categorical one). The column's other checks are skipped.
* ``infinite_values``: error on any +-inf in a numeric column.
* ``out_of_range``, ``unseen_categories``, ``missing_rate``, ``outlier_rate``,
  ``duplicate_rows``, ``label_flip``: error when the share of bad rows is
  significantly above the reference's base rate plus a tolerance (one-sided binomial
  test, see ``quality._stats``). ``unseen_categories`` also warns about any new value
  below that threshold.
* ``label_shift``: error when the two-sample chi-square p-value is below ``alpha``
  *and* the total variation distance exceeds ``label_shift_min_tv``.
* ``insufficient_data``: warning; a check could not run (reference under
  ``min_reference_rows``, a column without reference values, too few labelled rows).
  With a small reference only the schema and infinity checks run.

Defaults (:class:`QualityOptions`): ``alpha = 0.001`` per test, so that with a dozen
tests per batch a clean batch fails well under 1% of the time; tolerances, as
absolute shares above the reference rate (its 95% upper bound, so that a small
reference does not fail clean batches), of 1% for range, unseen values, outliers
and suspect labels, and 2% for missing values and duplicates, which vary more
between clean deliveries; ``label_shift_min_tv = 0.1``; ``min_reference_rows = 100``;
at most 20,000 rows judged by the label-flip check. Measured with these: 600 clean
batches of 30 to 2,000 rows against four 4,000-row references, no failure; 5% of
labels flipped in 1,000-row batches of 3-class make_classification data (class_sep
0.8 and 1.5, 4,000-row reference), caught in 40 of 40 batches each, where a 2%
margin caught 24 and 40. Power falls with batch size and class overlap: the same
flips in 300-row batches were caught in under a fifth of them.
Structure errors (not a mapping, ragged columns) raise :class:`~mlgate.errors.DataError`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from mlgate.monitoring._columns import Frame, frame_columns
from mlgate.monitoring.quality import _stats as qs
from mlgate.monitoring.quality._frame import as_categorical, as_numeric, row_group_ids
from mlgate.monitoring.quality._label_checks import check_labels
from mlgate.monitoring.quality._types import (
    CHECKS,
    Finding,
    QualityOptions,
    QualityReport,
    Severity,
)
from mlgate.monitoring.quality.profile import CategoricalQuality, NumericQuality, QualityProfile

__all__ = [
    "CHECKS",
    "Finding",
    "QualityOptions",
    "QualityProfile",
    "QualityReport",
    "Severity",
    "check_batch",
]

_MAX_ROWS = 100
_MAX_EXAMPLES = 5


def _rows(
    mask: npt.NDArray[np.bool_], positions: npt.NDArray[np.intp] | None = None
) -> tuple[int, ...]:
    """Batch row numbers of the first ``_MAX_ROWS`` set entries of ``mask``."""
    found = np.flatnonzero(mask)[:_MAX_ROWS]
    return tuple(int(i) for i in (found if positions is None else positions[found]))


class _Checker:
    """Collects findings for one batch; one method per check family."""

    def __init__(self, profile: QualityProfile, options: QualityOptions, n_rows: int) -> None:
        self.profile = profile
        self.options = options
        self.n_rows = n_rows
        self.findings: list[Finding] = []

    @property
    def statistical(self) -> bool:
        """Whether the reference is big enough for the checks that compare rates."""
        return self.profile.n_rows >= self.options.min_reference_rows

    def add(self, finding: Finding) -> None:
        if finding.check in self.options.disabled:
            return
        if finding.check in self.options.warn_only and finding.severity == "error":
            finding = replace(finding, severity="warning")
        self.findings.append(finding)

    def rate(
        self,
        check: str,
        column: str | None,
        bad: npt.NDArray[np.bool_],
        base: float,
        base_n: int | None,
        tolerance: float,
        what: str,
        hint: str,
        positions: npt.NDArray[np.intp] | None = None,
    ) -> qs.RateTest:
        """Run the rate-spike test on ``bad`` and add an error finding if it fires.

        ``positions`` maps ``bad``'s entries to batch rows when ``bad`` covers a subset.
        """
        count, n = int(bad.sum()), int(bad.shape[0])
        test = qs.rate_spike(count, n, base, tolerance, self.options.alpha, base_n=base_n)
        if test.fired:
            self.add(
                Finding(
                    check,
                    column,
                    test.observed,
                    test.threshold,
                    "error",
                    f"{count} of {n} {what} ({test.observed:.2%}); allowed up to "
                    f"{test.threshold:.2%} at this batch size (reference rate {base:.2%}, "
                    f"bounded {test.base:.2%}, + tolerance {tolerance:.0%}, alpha "
                    f"{self.options.alpha:g}). {hint}",
                    p_value=test.p_value,
                    rows=_rows(bad, positions),
                )
            )
        return test

    def insufficient(self, column: str | None, have: int, need: int, skipped: str) -> None:
        where = f"column {column!r}" if column else "reference"
        self.add(
            Finding(
                "insufficient_data",
                column,
                float(have),
                float(need),
                "warning",
                f"{where} has {have} values, {skipped} need at least {need}; they did not "
                f"run. Fit the profile on more reference data.",
            )
        )

    def schema(self, columns: dict[str, np.ndarray]) -> None:
        profile = self.profile
        for name in profile.kinds:
            if name not in columns:
                required = name in profile.required
                self.add(
                    Finding(
                        "missing_column",
                        name,
                        None,
                        None,
                        "error" if required else "warning",
                        f"{'required' if required else 'optional'} column {name!r} is missing; "
                        f"the batch has {sorted(columns)}. Fix the export or the column name.",
                    )
                )
        extra = sorted(set(columns) - set(profile.kinds))
        if extra:
            self.add(
                Finding(
                    "extra_columns",
                    None,
                    float(len(extra)),
                    0.0,
                    "warning",
                    f"columns not in the reference, ignored: {extra}.",
                )
            )

    def wrong_type(self, name: str, kind: str, bad: int, raw: np.ndarray) -> bool:
        """Report entries of another kind; True if there were any (skip the column)."""
        if not bad:
            return False
        expected = "numbers or NaN" if kind == "numeric" else "strings or None"
        self.add(
            Finding(
                "wrong_type",
                name,
                bad / self.n_rows,
                0.0,
                "error",
                f"{kind} column {name!r} has {bad} of {self.n_rows} entries of another type "
                f"(dtype {raw.dtype}); expected {expected}. Fix the type upstream; the "
                f"column's other checks were skipped.",
            )
        )
        return True

    def numeric(self, name: str, values: npt.NDArray[np.float64], q: NumericQuality) -> None:
        opts = self.options
        infinite = np.isinf(values)
        if infinite.any():
            self.add(
                Finding(
                    "infinite_values",
                    name,
                    float(infinite.sum()),
                    0.0,
                    "error",
                    f"{int(infinite.sum())} infinite values; expected finite numbers or NaN. "
                    f"Look for a division by zero or an overflow upstream.",
                    rows=_rows(infinite),
                )
            )
        if not self.statistical:
            return
        self.rate(
            "missing_rate",
            name,
            np.isnan(values),
            q.missing / self.profile.n_rows,
            self.profile.n_rows,
            opts.missing_tolerance,
            "values missing",
            "A source may have stopped filling this column.",
        )
        if q.count < opts.min_reference_rows:
            self.insufficient(name, q.count, opts.min_reference_rows, "range and outlier checks")
            return
        assert q.low is not None and q.high is not None and q.median is not None, "count > 0"
        positions = np.flatnonzero(np.isfinite(values))
        present = values[positions]
        if present.shape[0]:
            span = f"batch min {present.min():.6g}, max {present.max():.6g}"
            self.rate(
                "out_of_range",
                name,
                (present < q.low) | (present > q.high),
                q.out_of_range_rate,
                q.count,
                opts.out_of_range_tolerance,
                f"values outside the reference range [{q.low:.6g}, {q.high:.6g}] ({span})",
                "Check the source for unit, scale or encoding changes.",
                positions,
            )
            with np.errstate(over="ignore", invalid="ignore"):
                z = self.profile.outlier_z
                outliers = qs.outlier_mask(present, q.median, q.scale or 0.0, z)
            self.rate(
                "outlier_rate",
                name,
                outliers,
                q.outlier_rate,
                q.count,
                opts.outlier_tolerance,
                f"values with robust |z| > {self.profile.outlier_z:g}",
                "Extreme values are a common poisoning pattern; inspect the rows.",
                positions,
            )

    def categorical(
        self, name: str, values: npt.NDArray[np.object_], q: CategoricalQuality
    ) -> None:
        opts = self.options
        missing = np.asarray(values == None)  # noqa: E711 - elementwise comparison
        self.rate(
            "missing_rate",
            name,
            missing,
            q.missing / self.profile.n_rows,
            self.profile.n_rows,
            opts.missing_tolerance,
            "values missing",
            "A source may have stopped filling this column.",
        )
        if q.count < opts.min_reference_rows:
            self.insufficient(name, q.count, opts.min_reference_rows, "category checks")
            return
        positions = np.flatnonzero(~missing)
        present = values[positions]
        known = np.array(list(q.categories), dtype=str)
        unseen = ~np.isin(present.astype(str), known)
        if not unseen.any():
            return
        test = self.rate(
            "unseen_categories",
            name,
            unseen,
            q.unseen_rate,
            q.count,
            opts.unseen_tolerance,
            "values in categories the reference never had",
            f"New values include {sorted(set(present[unseen]))[:_MAX_EXAMPLES]}.",
            positions,
        )
        if not test.fired and not q.truncated:
            new = sorted({str(v) for v in present[unseen]})
            self.add(
                Finding(
                    "unseen_categories",
                    name,
                    test.observed,
                    test.threshold,
                    "warning",
                    f"{len(new)} new categories, {int(unseen.sum())} values, below the "
                    f"failing share {test.threshold:.2%}: {new[:_MAX_EXAMPLES]}.",
                )
            )

    def duplicates(self, coerced: dict[str, np.ndarray]) -> None:
        ids = row_group_ids(list(coerced.values()), self.n_rows)
        first = np.zeros(self.n_rows, dtype=bool)
        first[np.unique(ids, return_index=True)[1]] = True
        base = qs.duplicate_share_at(self.profile.duplicate_curve, self.n_rows)
        self.rate(
            "duplicate_rows",
            None,
            ~first,
            base,
            None,
            self.options.duplicate_tolerance,
            "rows repeating an earlier row",
            "Repeated rows over-weight what they say; replaying rows is a poisoning trick.",
        )


def check_batch(
    profile: QualityProfile, batch: Frame, options: QualityOptions | None = None
) -> QualityReport:
    """Run every enabled check of ``options`` on ``batch``; see the module docstring."""
    options = options or QualityOptions()
    columns, n_rows = frame_columns(batch, "batch")
    checker = _Checker(profile, options, n_rows)
    checker.schema(columns)
    if n_rows == 0:
        checker.add(
            Finding(
                "empty_batch",
                None,
                0.0,
                1.0,
                "error",
                "the batch has no rows; expected at least one. Find out why the source "
                "delivered nothing.",
            )
        )
        return QualityReport(n_rows=0, findings=tuple(checker.findings))
    if not checker.statistical:
        checker.insufficient(
            None,
            profile.n_rows,
            options.min_reference_rows,
            "range, category, missing-rate, outlier, duplicate and label checks",
        )
    coerced: dict[str, np.ndarray] = {}
    for name, kind in profile.kinds.items():
        if name not in columns:
            continue
        raw = columns[name]
        if kind == "numeric":
            numbers, bad = as_numeric(raw)
            if not checker.wrong_type(name, kind, bad, raw):
                coerced[name] = numbers
                checker.numeric(name, numbers, profile.numeric[name])
        else:
            labels, bad = as_categorical(raw)
            if not checker.wrong_type(name, kind, bad, raw):
                coerced[name] = labels
                if checker.statistical:
                    checker.categorical(name, labels, profile.categorical[name])
    if checker.statistical:
        # With no usable column every row would look like every other: nothing to compare.
        if coerced and "duplicate_rows" not in options.disabled:
            checker.duplicates(coerced)
        if profile.label is not None:
            for finding in check_labels(profile.label, coerced, n_rows, options):
                checker.add(finding)
    return QualityReport(n_rows=n_rows, findings=tuple(checker.findings))
