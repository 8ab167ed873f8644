"""Frames as the drift code reads them: validated once, each column turned into its kind.

A frame is ``Mapping[str, array]``, all columns 1-D and of one length. Numeric columns
become float64 with NaN for missing; categorical columns become counts per category.
Unlike the data-quality checks, which count entries of the wrong type as a finding, drift
statistics cannot be computed over a column of mixed types, so those raise
:class:`DataError` naming the column, the offending value and what to do.

What each kind accepts:

numeric
    float, integer and bool arrays; object arrays of real numbers with None or NaN for
    missing. Text is not parsed here: reading text is :mod:`mlgate.monitoring.tabular`'s job.
categorical
    object arrays of ``str`` with None (or a float NaN, as pandas writes it) for missing;
    unicode arrays; bool arrays (as ``"true"``/``"false"``, like the reader); integer arrays
    (``str(int)``, for codes declared categorical). Float arrays are refused: category
    labels made from floats are a schema mistake, not something to guess at.
"""

from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError

__all__ = [
    "FEATURE_KINDS",
    "FeatureKind",
    "Frame",
    "category_counts",
    "frame_columns",
    "infer_kind",
    "numeric_column",
]

FeatureKind = Literal["numeric", "categorical"]
Frame = Mapping[str, npt.ArrayLike]
FEATURE_KINDS: tuple[FeatureKind, ...] = ("numeric", "categorical")
_SHOWN = 3  # offending values quoted in an error message


def frame_columns(frame: object, what: str) -> tuple[dict[str, npt.NDArray[Any]], int]:
    """The frame's columns as 1-D arrays and its row count; DataError on a malformed frame."""
    if not isinstance(frame, Mapping):
        raise DataError(
            f"the {what} must be a mapping of column name to 1-D array, found "
            f"{type(frame).__name__}; pass a dict of numpy arrays or use tabular.read_frame"
        )
    columns: dict[str, npt.NDArray[Any]] = {}
    lengths: dict[str, int] = {}
    for name, values in frame.items():
        if not isinstance(name, str):
            raise DataError(f"the {what} has a column named {name!r}; names must be str")
        array = np.asarray(values)
        if array.ndim != 1:
            raise DataError(
                f"column {name!r} of the {what} must be 1-D, found shape {array.shape}; "
                "flatten it or split it into one column per feature"
            )
        columns[name] = array
        lengths[name] = array.shape[0]
    if len(set(lengths.values())) > 1:
        raise DataError(
            f"the {what}'s columns must all have the same length, found {lengths}; "
            "align the columns before comparing"
        )
    n_rows = next(iter(lengths.values())) if lengths else 0
    return columns, n_rows


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def infer_kind(values: npt.NDArray[Any]) -> FeatureKind:
    """Floats and integers are numeric; text, bools and everything else categorical.

    An object array is numeric when every non-missing entry is a real number (and there is
    at least one), so a column of Python ints and None stays numeric.
    """
    if values.dtype.kind in "fiu":
        return "numeric"
    if values.dtype.kind == "O":
        # Distinct values only: hashing runs at C speed, while a Python test per row costs
        # a third of a second per million rows.
        present = [v for v in set(values.tolist()) if not _is_missing(v)]
        if present and all(_is_real(v) for v in present):
            return "numeric"
    return "categorical"


def _quote(values: list[object]) -> str:
    return ", ".join(f"{v!r} ({type(v).__name__})" for v in values[:_SHOWN])


def numeric_column(name: str, values: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """The column as float64 with NaN for missing; DataError if it holds anything else.

    Raises where ``quality._frame.as_numeric`` counts: drift cannot test a mixed column.
    """
    kind = values.dtype.kind
    if kind in "fiub":
        return values.astype(np.float64, copy=False)
    if kind == "O":
        items = values.tolist()
        bad = [v for v in items if not (_is_missing(v) or _is_real(v))]
        if not bad:
            return np.array([math.nan if v is None else float(v) for v in items], dtype=np.float64)
        raise DataError(
            f"column {name!r} is numeric in the reference but holds {len(bad)} non-numeric "
            f"values, e.g. {_quote(bad)}; clean the column, or declare it categorical in "
            "both windows"
        )
    raise DataError(
        f"column {name!r} is numeric in the reference but has dtype {values.dtype}; "
        "convert it to numbers or declare it categorical in both windows"
    )


def category_counts(name: str, values: npt.NDArray[Any]) -> tuple[dict[str, int], int]:
    """Return ``({category: count}, missing)``; DataError for floats or mixed types.

    Raises where ``quality._frame.as_categorical`` counts: drift cannot test a mixed column.
    """
    kind = values.dtype.kind
    if kind == "b":
        n_true = int(np.count_nonzero(values))
        flags = {"true": n_true, "false": int(values.size - n_true)}
        return {k: v for k, v in flags.items() if v}, 0
    if kind in "iuU":
        uniques, freq = np.unique(values, return_counts=True)
        return {str(u): int(c) for u, c in zip(uniques.tolist(), freq.tolist(), strict=True)}, 0
    if kind != "O":
        raise DataError(
            f"column {name!r} is categorical in the reference but has dtype {values.dtype}; "
            "categories must be text (or bools or integer codes); convert the column or "
            "declare it numeric in both windows"
        )
    tally = Counter(values.tolist())
    counts: dict[str, int] = {}
    missing = 0
    bad: list[object] = []
    for key, count in tally.items():
        if isinstance(key, str):
            counts[key] = count
        elif _is_missing(key):
            missing += count
        else:
            bad.append(key)
    if bad:
        raise DataError(
            f"column {name!r} is categorical but mixes text with other types, e.g. "
            f"{_quote(bad)}; convert every value to str (None for missing) or declare the "
            "column numeric in both windows"
        )
    return counts, missing


def check_kinds(kinds: Mapping[str, str] | None) -> dict[str, FeatureKind]:
    """Validate a user's ``{column: kind}`` overrides."""
    checked: dict[str, FeatureKind] = {}
    for name, kind in (kinds or {}).items():
        if kind == "numeric":
            checked[name] = "numeric"
        elif kind == "categorical":
            checked[name] = "categorical"
        else:
            raise DataError(
                f"kind of column {name!r} must be 'numeric' or 'categorical', found {kind!r}"
            )
    return checked
