"""Batch drift: compare a current window with a reference, feature by feature and overall.

A feature has drifted when its test says the windows differ **and** the difference is big
enough to matter::

    drifted = p_adjusted <= alpha  AND  any(effect size >= its threshold)

Either half alone fails in practice. At a million rows a 0.02-sigma shift gives a KS
p-value of 3e-32 and matters to nobody; at 50 rows a PSI of 0.15 is what chance gives.

Defaults (``DriftOptions()``)
-----------------------------

===================  ==========================================  ===========================
                     numeric feature                             categorical feature
===================  ==========================================  ===========================
test (p-value)       two-sample Kolmogorov-Smirnov: exact        Pearson chi-square test of
                     distribution while both windows have        homogeneity on the 2 x K
                     <= 10,000 values, Smirnov's asymptotic      table of counts (two-sample,
                     form above (scipy's ``method="auto"``)      no Yates correction)
effect sizes         PSI >= PSI threshold, or Wasserstein-1 /    PSI >= PSI threshold, or
(any one suffices)   reference std >= 0.1                        Jensen-Shannon distance
                                                                 (base 2) >= 0.1
bins                 10, at the reference's deciles              one per category, categories
                                                                 new in the current window
                                                                 included
===================  ==========================================  ===========================

- ``alpha = 0.05``, Benjamini-Hochberg across the judged features (``correction``): with 20
  drift-free features, uncorrected tests flag at least one in ~64% of runs; BH in ~5%.
- PSI threshold = ``max(0.1, (1/n_ref + 1/n_cur) * chi2_{1-alpha}(B - 1))`` for B live
  bins: the PSI that chance alone stays under 95% of the time (the PSI's chi-square limit,
  Yurdakul & Naranjo 2020). From ~1,000 rows per window the conventional 0.1 rules; a
  fixed 0.1 fires on 98% of drift-free 50-row windows.
- Wasserstein 0.1 = a tenth of a reference standard deviation, Evidently's default; JS 0.1
  likewise.
- ``min_samples = 50`` non-missing values per window (5 expected per bin at 10 bins):
  below it the feature is ``too_small`` and not drifted, its statistics still reported.
- The dataset drifted when any feature did (``drift_share=None``); ``share_drifted`` is
  always reported, and ``drift_share=0.5`` gives Evidently's rule instead.
- Per feature, ``DriftOptions.tests`` can choose ``"psi"`` (p-value from the PSI's
  chi-square limit) or ``"chi2"`` (on the numeric bins) instead of the default.

In practice the p-value decides for small windows and the effect size for large ones.

Bad input: each gives a defined result
--------------------------------------

- **empty window** (no rows): status ``empty``, not drifted.
- **all values missing** in either window: ``all_missing``, not drifted.
- **fewer than min_samples values** (e.g. a 10-row reference): ``too_small``, not drifted;
  the reason gives both counts.
- **reference column absent from the current window**: ``missing_column``, not drifted
  (schema problems are the data-quality checks' verdict, not drift); current columns the
  reference lacks are listed in ``ignored_columns``.
- **constant reference**: ``constant``, judged as usual. Its bins are below / at / above
  the constant; Wasserstein / std is 0 if the current window sits on the same constant and
  infinite (JSON null, said in the reason) if not.
- **new category**: a bin of its own with reference count 0 (smoothed by the 0.5
  pseudo-count in PSI and KL); listed in ``new_categories`` with its share of the window.
- **infinities**: out-of-range values. They fall in the outer bins (PSI, KL, JS, chi2) and
  at the ends of the ECDFs (KS), are left out of Wasserstein (any infinity would make it
  infinite) and are counted in ``infinite_reference`` / ``infinite_current``.
- **NaN / None**: missing, never counted in any statistic; counted per window.
- **mixed types, or a column whose type does not fit its reference kind**: DataError
  naming the column and a sample of the offending values.

:func:`compare` uses the reference data; :func:`compare_profile` a fitted
:class:`~mlgate.monitoring.profile.ReferenceProfile`, with identical PSI, KL, JS and
chi-square, and KS and Wasserstein from the profile's quantile grid (errors bounded by
the profile's ``ks_error`` and ``wasserstein_error``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError
from mlgate.monitoring._columns import (
    FeatureKind,
    Frame,
    category_counts,
    check_kinds,
    frame_columns,
    infer_kind,
    numeric_column,
)
from mlgate.monitoring.drift._decide import MIN_SAMPLES, DriftOptions, Measured, decide
from mlgate.monitoring.drift._report import DriftReport, FeatureDrift, FeatureStatus, TestName
from mlgate.monitoring.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from mlgate.monitoring.stats import (
    NumericDrift,
    chi2_two_sample,
    js_distance,
    kl_divergence,
    numeric_drift,
    numeric_drift_from_grid,
    psi,
)
from mlgate.monitoring.stats._ecdf import strip_nan

__all__ = [
    "MIN_SAMPLES",
    "DriftOptions",
    "DriftReport",
    "FeatureDrift",
    "FeatureStatus",
    "TestName",
    "compare",
    "compare_profile",
]

_SHOWN_CATEGORIES = 10


def _status(
    rows: tuple[int, int], values: tuple[int, int], min_samples: int
) -> tuple[FeatureStatus, str]:
    (rows_ref, rows_cur), (n_ref, n_cur) = rows, values
    if rows_ref == 0 or rows_cur == 0:
        window = "reference" if rows_ref == 0 else "current window"
        return "empty", f"the {window} has no rows: nothing to compare"
    if n_ref == 0 or n_cur == 0:
        window = "reference" if n_ref == 0 else "current window"
        return "all_missing", f"every value is missing in the {window}: nothing to compare"
    if n_ref < min_samples or n_cur < min_samples:
        return "too_small", (
            f"too few values to judge: {n_ref} in the reference and {n_cur} in the current "
            f"window, at least {min_samples} needed in each (DriftOptions.min_samples)"
        )
    return "ok", ""


def _numeric_measured(
    name: str,
    drift: NumericDrift | None,
    status: FeatureStatus,
    note: str,
    counts: tuple[int, int, int, int, int, int],
    constant_at: float | None,
) -> Measured:
    n_ref, n_cur, missing_ref, missing_cur, inf_ref, inf_cur = counts
    notes = [note] if note else []
    if status == "ok" and constant_at is not None:
        status = "constant"
        notes.append(f"the reference is constant at {constant_at:.6g}")
    if drift is None:
        return Measured(
            name, "numeric", status, "; ".join(notes), *counts[:4], inf_ref=inf_ref, inf_cur=inf_cur
        )
    if inf_ref or inf_cur:
        notes.append(
            f"{inf_ref} reference and {inf_cur} current values are infinite: counted in the "
            "outer bins and KS, left out of wasserstein"
        )
    if np.isnan(drift.wasserstein):
        notes.append("wasserstein undefined: a window has no finite value")
    elif np.isinf(drift.wasserstein):
        notes.append("wasserstein infinite: the reference has zero spread")
    return Measured(
        name,
        "numeric",
        status,
        "; ".join(notes),
        n_ref,
        n_cur,
        missing_ref,
        missing_cur,
        n_bins=int(np.count_nonzero(drift.ref_counts + drift.cur_counts)),
        psi=drift.psi,
        kl=drift.kl,
        js=drift.js,
        ks=drift.ks,
        wasserstein=drift.wasserstein,
        chi2=drift.chi2,
        inf_ref=inf_ref,
        inf_cur=inf_cur,
    )


def _sorted_values(name: str, values: npt.NDArray[Any]) -> tuple[npt.NDArray[np.float64], int, int]:
    """(sorted non-missing values, missing count, infinite count) of a numeric column."""
    as_float = numeric_column(name, values)
    ordered = strip_nan(np.sort(as_float))
    return ordered, int(as_float.size - ordered.size), int(np.count_nonzero(np.isinf(ordered)))


def _measure_numeric(
    name: str, ref_raw: npt.NDArray[Any], cur_raw: npt.NDArray[Any], options: DriftOptions
) -> Measured:
    ref, missing_ref, inf_ref = _sorted_values(name, ref_raw)
    cur, missing_cur, inf_cur = _sorted_values(name, cur_raw)
    status, note = _status((ref_raw.size, cur_raw.size), (ref.size, cur.size), options.min_samples)
    drift = numeric_drift(ref, cur, options.bins) if ref.size and cur.size else None
    constant = float(ref[0]) if ref.size and ref[0] == ref[-1] else None
    counts = (int(ref.size), int(cur.size), missing_ref, missing_cur, inf_ref, inf_cur)
    return _numeric_measured(name, drift, status, note, counts, constant)


def _measure_numeric_profile(
    name: str,
    ref: NumericProfile,
    n_rows_ref: int,
    cur_raw: npt.NDArray[Any],
    options: DriftOptions,
) -> Measured:
    cur, missing_cur, inf_cur = _sorted_values(name, cur_raw)
    status, note = _status((n_rows_ref, cur_raw.size), (ref.count, cur.size), options.min_samples)
    drift = None
    if ref.count and cur.size:
        drift = numeric_drift_from_grid(
            grid=np.asarray(ref.grid, dtype=np.float64),
            grid_is_sample=ref.grid_is_sample,
            n_neg_inf=ref.neg_inf,
            n_finite=ref.finite,
            n_pos_inf=ref.pos_inf,
            scale=ref.std or 0.0,
            edges=np.asarray(ref.edges, dtype=np.float64),
            ref_counts=np.asarray(ref.bin_counts, dtype=np.int64),
            cur_sorted=cur,
        )
    constant = None
    if ref.finite == ref.count and ref.min is not None and ref.min == ref.max:
        constant = ref.min
    inf_ref = ref.neg_inf + ref.pos_inf
    counts = (ref.count, int(cur.size), ref.missing, missing_cur, inf_ref, inf_cur)
    return _numeric_measured(name, drift, status, note, counts, constant)


def _measure_categorical(
    name: str,
    ref_counts: Mapping[str, int],
    missing_ref: int,
    rows: tuple[int, int],
    cur_raw: npt.NDArray[Any],
    options: DriftOptions,
) -> Measured:
    cur_counts, missing_cur = category_counts(name, cur_raw)
    n_ref, n_cur = sum(ref_counts.values()), sum(cur_counts.values())
    status, note = _status(rows, (n_ref, n_cur), options.min_samples)
    new = sorted(set(cur_counts) - set(ref_counts))
    base = Measured(name, "categorical", status, note, n_ref, n_cur, missing_ref, missing_cur)
    if not (n_ref and n_cur):
        return base
    notes = [note] if note else []
    if status == "ok" and len(ref_counts) == 1:
        status = "constant"
        notes.append(f"the reference has the single category {next(iter(ref_counts))!r}")
    new_share = sum(cur_counts[c] for c in new) / n_cur
    if new:
        shown = ", ".join(repr(c) for c in new[:_SHOWN_CATEGORIES])
        more = f" and {len(new) - _SHOWN_CATEGORIES} more" if len(new) > _SHOWN_CATEGORIES else ""
        noun = "category" if len(new) == 1 else "categories"
        notes.append(
            f"{len(new)} {noun} unseen in the reference "
            f"({new_share:.2%} of the current window): {shown}{more}"
        )
    # Sorted, so that compare() and compare_profile() sum in the same order, to the bit.
    categories = [*sorted(ref_counts), *new]
    r = np.array([ref_counts.get(c, 0) for c in categories], dtype=np.int64)
    c = np.array([cur_counts.get(k, 0) for k in categories], dtype=np.int64)
    return Measured(
        name,
        "categorical",
        status,
        "; ".join(notes),
        n_ref,
        n_cur,
        missing_ref,
        missing_cur,
        n_bins=len(categories),
        psi=psi(r, c),
        kl=kl_divergence(r, c),
        js=js_distance(r, c),
        chi2=chi2_two_sample(r, c),
        new_categories=tuple(new),
        new_share=new_share,
    )


def _missing_column(name: str, kind: FeatureKind, n_ref: int, missing_ref: int) -> Measured:
    note = (
        "column absent from the current window: not judged; schema problems are reported "
        "by the data-quality checks"
    )
    return Measured(name, kind, "missing_column", note, n_ref, 0, missing_ref, 0)


def _check_tests(options: DriftOptions, features: Mapping[str, Any]) -> None:
    unknown = sorted(set(options.tests) - set(features))
    if unknown:
        raise ValueError(f"DriftOptions.tests names features the reference lacks: {unknown}")


def compare(
    reference_frame: Frame,
    current_frame: Frame,
    options: DriftOptions | None = None,
    *,
    kinds: Mapping[str, FeatureKind] | None = None,
) -> DriftReport:
    """Judge every reference column for drift in the current window (see module docstring).

    Kinds are inferred from the reference's columns unless ``kinds`` names them.
    """
    options = options or DriftOptions()
    ref_columns, n_rows_ref = frame_columns(reference_frame, "reference")
    cur_columns, n_rows_cur = frame_columns(current_frame, "current window")
    overrides = check_kinds(kinds)
    unknown = sorted(set(overrides) - set(ref_columns))
    if unknown:
        raise DataError(f"kinds names columns the reference does not have: {unknown}")
    _check_tests(options, ref_columns)
    measured: list[Measured] = []
    for name, ref_raw in ref_columns.items():
        kind = overrides.get(name) or infer_kind(ref_raw)
        cur_raw = cur_columns.get(name)
        if kind == "numeric":
            if cur_raw is None:
                values, missing, _ = _sorted_values(name, ref_raw)
                measured.append(_missing_column(name, kind, int(values.size), missing))
            else:
                measured.append(_measure_numeric(name, ref_raw, cur_raw, options))
        else:
            ref_counts, missing_ref = category_counts(name, ref_raw)
            if cur_raw is None:
                measured.append(_missing_column(name, kind, sum(ref_counts.values()), missing_ref))
            else:
                rows = (n_rows_ref, n_rows_cur)
                measured.append(
                    _measure_categorical(name, ref_counts, missing_ref, rows, cur_raw, options)
                )
    ignored = [name for name in cur_columns if name not in ref_columns]
    return decide(
        measured,
        options,
        n_reference_rows=n_rows_ref,
        n_current_rows=n_rows_cur,
        ignored_columns=ignored,
    )


def compare_profile(
    profile: ReferenceProfile, current_frame: Frame, options: DriftOptions | None = None
) -> DriftReport:
    """:func:`compare` against a fitted profile instead of the reference data.

    The profile's own bins are used (``options.bins`` does not apply); KS and Wasserstein
    are approximations within the profile's stored error bounds.
    """
    options = options or DriftOptions()
    cur_columns, n_rows_cur = frame_columns(current_frame, "current window")
    _check_tests(options, profile.features)
    measured: list[Measured] = []
    for name, feature in profile.features.items():
        cur_raw = cur_columns.get(name)
        if cur_raw is None:
            measured.append(_missing_column(name, feature.kind, feature.count, feature.missing))
        elif isinstance(feature, NumericProfile):
            measured.append(
                _measure_numeric_profile(name, feature, profile.n_rows, cur_raw, options)
            )
        else:
            assert isinstance(feature, CategoricalProfile)
            rows = (profile.n_rows, n_rows_cur)
            measured.append(
                _measure_categorical(
                    name, feature.frequencies, feature.missing, rows, cur_raw, options
                )
            )
    ignored = [name for name in cur_columns if name not in profile.features]
    return decide(
        measured,
        options,
        n_reference_rows=profile.n_rows,
        n_current_rows=n_rows_cur,
        ignored_columns=ignored,
    )
