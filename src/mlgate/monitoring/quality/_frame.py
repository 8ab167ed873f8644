"""Frame validation and per-kind coercion for the data-quality checks.

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
raise :class:`DataError`; content errors are counted and left to the checks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Literal

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError

__all__ = [
    "FeatureKind",
    "Frame",
    "as_categorical",
    "as_numeric",
    "infer_kind",
    "row_group_ids",
    "validate_frame",
]

FeatureKind = Literal["numeric", "categorical"]
Frame = Mapping[str, npt.ArrayLike]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


def validate_frame(frame: object, what: str) -> tuple[dict[str, np.ndarray], int]:
    """Return the frame's columns as 1-D arrays and its row count, or raise DataError."""
    if not isinstance(frame, Mapping):
        raise DataError(
            f"{what} must be a mapping of column name to 1-D array, found "
            f"{type(frame).__name__}; build a dict of numpy arrays (or use "
            f"monitoring.tabular.read_frame)."
        )
    columns: dict[str, np.ndarray] = {}
    lengths: dict[str, int] = {}
    for name, raw in frame.items():
        if not isinstance(name, str):
            raise DataError(f"{what} column names must be strings, found {name!r}.")
        values = np.asarray(raw)
        if values.ndim != 1:
            raise DataError(
                f"{what} column {name!r} must be 1-D, found shape {values.shape}; "
                f"split it into one column per feature."
            )
        columns[name] = values
        lengths[name] = values.shape[0]
    distinct = sorted(set(lengths.values()))
    if len(distinct) > 1:
        raise DataError(
            f"{what} columns must all have the same length, found lengths "
            f"{dict(sorted(lengths.items()))}; align the columns before checking."
        )
    return columns, distinct[0] if distinct else 0


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def _is_nan(value: object) -> bool:
    return isinstance(value, float | np.floating) and math.isnan(value)


def infer_kind(values: np.ndarray) -> FeatureKind:
    """Kind of a reference column when the user did not say: numbers are numeric.

    Object arrays count as numeric only when every non-missing entry is a real
    number (as JSON ints with nulls arrive); otherwise they are categorical.
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
        if _is_real_number(value):
            out[i] = float(value)
        else:
            bad += 1
    return out, bad


def as_categorical(values: np.ndarray) -> tuple[ObjectArray, int]:
    """Return ``(object array of str or None, number of non-string entries)``."""
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
