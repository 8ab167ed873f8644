"""Per-kind coercion and kind inference for the data-quality checks.

A frame is ``Mapping[str, numpy.ndarray]``: numeric columns float64 with NaN for
missing, categorical columns ``dtype=object`` holding ``str`` or None. Data arriving
at ingestion does not always keep that promise, so coercion here never trusts a
dtype: it returns the column in its expected kind *and* the number of entries that
do not belong to that kind, which the wrong-type check reports. What is accepted:

numeric
    float and integer arrays (converted to float64); object arrays whose entries
    are real numbers (int/float, numpy scalars included, bool excluded) or None/NaN.
    Strings are not parsed: turning text into numbers is the reader's job
    (``monitoring.tabular``), and "3.5" inside an object column is a sign of a
    broken upstream.
categorical
    object arrays of ``str`` with None (or a float NaN, as pandas writes it) for
    missing; unicode arrays; bool arrays (``"true"``/``"false"``, as the reader
    does); integer arrays (``str(int)``, for codes a user declared categorical).
    Float arrays are refused: a float column where categories are expected is a
    schema error, not something to stringify.

Structure errors (not a mapping, non-string names, 2-D columns, ragged lengths)
raise :class:`DataError` from :func:`mlgate.monitoring._columns.frame_columns`, shared
with drift; content errors are counted and left to the checks.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError
from mlgate.monitoring._columns import FeatureKind, _is_real

__all__ = [
    "as_categorical",
    "as_numeric",
    "infer_kind",
    "row_group_ids",
]

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


def _is_nan(value: object) -> bool:
    # Not _columns._is_missing: this also takes np.float32/np.float16 NaN (not float subclasses).
    return isinstance(value, float | np.floating) and math.isnan(value)


def infer_kind(values: np.ndarray) -> FeatureKind:
    """Kind of a reference column when the user did not say: numbers are numeric.

    Object arrays count as numeric only when every non-missing entry is a real
    number (as JSON ints with nulls arrive); otherwise they are categorical.
    Deliberately not ``_columns.infer_kind``: NaN counts as a number here (an all-NaN object
    column is numeric), entries need not be hashable, and dtypes other than
    float/int/bool/str/object raise instead of falling back to categorical.
    """
    kind = values.dtype.kind
    if kind in "fiu":
        return "numeric"
    if kind == "O":
        types = set(map(type, values)) - {type(None)}
        if types and all(
            issubclass(t, numbers.Real) and not issubclass(t, bool | np.bool_) for t in types
        ):
            return "numeric"
        return "categorical"
    if kind in "bU":
        return "categorical"
    raise DataError(
        f"column of dtype {values.dtype} is neither numeric nor categorical; "
        f"convert it to float64 or to an object array of str."
    )


def as_numeric(values: np.ndarray) -> tuple[FloatArray, int]:
    """Return ``(float64 values, number of non-numeric entries)``.

    Non-numeric entries become NaN in the returned array; infinities are kept
    (the infinity check reports them).

    Counts what ``_columns.numeric_column`` (drift) raises on: here a bad entry is a finding.
    """
    kind = values.dtype.kind
    if kind in "fiu":
        return values.astype(np.float64), 0
    out = np.full(values.shape[0], np.nan, dtype=np.float64)
    if kind != "O":
        # bool, str, bytes, dates: every entry is the wrong type.
        return out, int(values.shape[0])
    bad = 0
    for i, value in enumerate(values):
        if value is None:
            continue
        if _is_real(value):
            out[i] = float(value)
        else:
            bad += 1
    return out, bad


def as_categorical(values: np.ndarray) -> tuple[ObjectArray, int]:
    """Return ``(object array of str or None, number of non-string entries)``.

    Counts what ``_columns.category_counts`` (drift) raises on: here a bad entry is a finding.
    """
    kind = values.dtype.kind
    n = values.shape[0]
    if kind == "U":
        return values.astype(object), 0
    if kind == "b":
        return np.where(values, "true", "false").astype(object), 0
    if kind in "iu":
        return np.array([str(int(v)) for v in values], dtype=object), 0
    out = np.full(n, None, dtype=object)
    if kind != "O":
        return out, n
    if set(map(type, values)) <= {str, type(None)}:  # the usual case, without a Python loop
        return values.copy(), 0
    bad = 0
    for i, value in enumerate(values):
        if isinstance(value, str):
            out[i] = value
        elif value is not None and not _is_nan(value):
            bad += 1
    return out, bad


def _sort_key(values: np.ndarray) -> np.ndarray:
    """A column as something ``np.lexsort`` can order: floats as they are, strings as codes."""
    if values.dtype.kind == "f":
        return values
    missing = np.asarray(values == None)  # noqa: E711 - elementwise comparison
    filled = values.copy()
    filled[missing] = ""
    _, inverse = np.unique(filled.astype(str), return_inverse=True)
    codes = inverse.astype(np.int64) + 1
    codes[missing] = 0
    return codes


def row_group_ids(columns: list[np.ndarray], n_rows: int) -> npt.NDArray[np.int64]:
    """Dense ids ``0..G-1``, equal for rows whose values are all equal (NaN equals NaN).

    One lexicographic sort of all columns, then a scan for where adjacent sorted rows
    differ: exact, and several times faster than ``np.unique(axis=0)``.
    """
    if not columns or n_rows == 0:
        return np.zeros(n_rows, dtype=np.int64)
    keys = [_sort_key(c) for c in columns]
    order = np.lexsort(keys[::-1])
    starts = np.zeros(n_rows, dtype=bool)
    starts[0] = True
    for key in keys:
        ordered = key[order]
        differs = ordered[1:] != ordered[:-1]
        if ordered.dtype.kind == "f":
            differs &= ~(np.isnan(ordered[1:]) & np.isnan(ordered[:-1]))
        starts[1:] |= differs
    ids = np.empty(n_rows, dtype=np.int64)
    ids[order] = np.cumsum(starts) - 1
    return ids
