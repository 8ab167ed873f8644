"""Measuring one feature for :mod:`mlgate.monitoring.drift`: its statistics and status.

Each function here turns one reference column (or profile entry) and its current column into
a :class:`~mlgate.monitoring.drift._decide.Measured`; the package's ``compare`` functions run
them per feature, possibly on threads (:mod:`._pool`), and ``decide`` judges the lot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlgate.monitoring._columns import (
    FeatureKind,
    category_counts,
    infer_kind,
    numeric_column,
)
from mlgate.monitoring._encoded import CategoryCodes
from mlgate.monitoring.drift._decide import DriftOptions, Measured
from mlgate.monitoring.drift._report import FeatureStatus
from mlgate.monitoring.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from mlgate.monitoring.stats import (
    NumericDrift,
    chi2_two_sample,
    js_distance,
    kl_divergence,
    numeric_drift,
    numeric_drift_from_grid,
    numeric_drift_unsorted,
    pool_sparse,
    pooling_note,
    psi,
)
from mlgate.monitoring.stats._ecdf import strip_nan

__all__ = ["Column", "measure_against_profile", "measure_column"]

_SHOWN_CATEGORIES = 10
UNSORTED_MIN_VALUES = 50_000
"""Values in both windows together from which numeric features skip sorting (below it the
bucket bookkeeping costs more than the sorts it saves)."""


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


def _measure_numeric_unsorted(
    ref: npt.NDArray[np.float64],
    cur: npt.NDArray[np.float64],
    name: str,
    options: DriftOptions,
) -> Measured | None:
    """The same as the sorting path below, without sorting (None where that cannot be done)."""
    ref_present, cur_present = _present(ref), _present(cur)
    drift = numeric_drift_unsorted(ref_present, cur_present, options.bins)
    if drift is None:
        return None
    status, note = _status(
        (ref.size, cur.size), (ref_present.size, cur_present.size), options.min_samples
    )
    n_ref, n_cur = int(ref_present.size), int(cur_present.size)
    counts = (n_ref, n_cur, int(ref.size) - n_ref, int(cur.size) - n_cur, 0, 0)
    # More than `bins` distinct values, so never constant; no infinities, or it would be None.
    return _numeric_measured(name, drift, status, note, counts, None)


def _present(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    missing = np.isnan(values)
    return values[~missing] if missing.any() else values


def _measure_numeric(
    name: str, ref_raw: npt.NDArray[Any], cur_raw: npt.NDArray[Any], options: DriftOptions
) -> Measured:
    # Converted once: an object column's conversion is a Python loop, not to be run twice
    # when the unsorted path declines (numeric_column of float64 is the array itself).
    ref_raw, cur_raw = numeric_column(name, ref_raw), numeric_column(name, cur_raw)
    if ref_raw.size + cur_raw.size >= UNSORTED_MIN_VALUES:
        measured = _measure_numeric_unsorted(ref_raw, cur_raw, name, options)
        if measured is not None:
            return measured
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
    cur_codes: CategoryCodes | None = None,
) -> Measured:
    cur_counts, missing_cur = _category_counts(name, cur_raw, cur_codes)
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
    pooled = pool_sparse(
        np.array([ref_counts.get(c, 0) for c in categories], dtype=np.int64),
        np.array([cur_counts.get(k, 0) for k in categories], dtype=np.int64),
    )
    r, c = pooled.reference, pooled.current
    if pooled.pooled:
        notes.append(pooling_note(pooled))
    return Measured(
        name,
        "categorical",
        status,
        "; ".join(notes),
        n_ref,
        n_cur,
        missing_ref,
        missing_cur,
        n_bins=int(r.size),
        psi=psi(r, c),
        kl=kl_divergence(r, c),
        js=js_distance(r, c),
        chi2=chi2_two_sample(r, c),
        new_categories=tuple(new),
        new_share=new_share,
    )


def _category_counts(
    name: str, values: npt.NDArray[Any], codes: CategoryCodes | None
) -> tuple[dict[str, int], int]:
    # The reader's codes when it left them (the same counts, from one bincount).
    return codes.counts() if codes is not None else category_counts(name, values)


def _missing_column(name: str, kind: FeatureKind, n_ref: int, missing_ref: int) -> Measured:
    note = (
        "column absent from the current window: not judged; schema problems are reported "
        "by the data-quality checks"
    )
    return Measured(name, kind, "missing_column", note, n_ref, 0, missing_ref, 0)


@dataclass(frozen=True, slots=True, eq=False)
class Column:
    """One reference column to judge, with all :func:`compare` needs to know about it."""

    name: str
    kind: FeatureKind | None  # None: inferred from the reference
    ref: npt.NDArray[Any]
    cur: npt.NDArray[Any] | None  # None: absent from the current window
    ref_codes: CategoryCodes | None
    cur_codes: CategoryCodes | None


def measure_column(column: Column, rows: tuple[int, int], options: DriftOptions) -> Measured:
    name, ref_raw, cur_raw = column.name, column.ref, column.cur
    kind = column.kind
    if kind is None:
        # A column the reader left codes for is text: categorical, as infer_kind would say.
        kind = "categorical" if column.ref_codes is not None else infer_kind(ref_raw)
    if kind == "numeric":
        if cur_raw is None:
            values, missing, _ = _sorted_values(name, ref_raw)
            return _missing_column(name, kind, int(values.size), missing)
        return _measure_numeric(name, ref_raw, cur_raw, options)
    ref_counts, missing_ref = _category_counts(name, ref_raw, column.ref_codes)
    if cur_raw is None:
        return _missing_column(name, kind, sum(ref_counts.values()), missing_ref)
    return _measure_categorical(
        name, ref_counts, missing_ref, rows, cur_raw, options, column.cur_codes
    )


def measure_against_profile(
    name: str,
    feature: NumericProfile | CategoricalProfile,
    profile: ReferenceProfile,
    cur_raw: npt.NDArray[Any] | None,
    cur_codes: CategoryCodes | None,
    n_rows_cur: int,
    options: DriftOptions,
) -> Measured:
    if cur_raw is None:
        return _missing_column(name, feature.kind, feature.count, feature.missing)
    if isinstance(feature, NumericProfile):
        return _measure_numeric_profile(name, feature, profile.n_rows, cur_raw, options)
    rows = (profile.n_rows, n_rows_cur)
    return _measure_categorical(
        name, feature.frequencies, feature.missing, rows, cur_raw, options, cur_codes
    )
