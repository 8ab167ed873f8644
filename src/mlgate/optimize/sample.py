"""Holdout and calibration samples: from arrays or CSV/Parquet files to checked float64 rows.

A sample must fit the parent's single ``[rows, features]`` input: the right width, only
numbers, no NaN or infinity (the quantizer's calibration and the sklearn parent would both
choke on them, far from where the mistake was made). Files are read with
:func:`mlgate.monitoring.tabular.read_frame`; features are every column except the label
column, in file order, unless the model recorded its feature names, which then choose and
order the columns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlgate.errors import MonitoringError, OptimizeError
from mlgate.registry.signature import Signature

__all__ = ["check_sample", "load_sample"]


def check_sample(
    sample: Any, signature: Signature, *, purpose: str, allow_nan: bool = False
) -> np.ndarray[Any, Any]:
    """``sample`` as float64 rows fitting the model's single 2-D input, or OptimizeError.

    ``allow_nan`` lets missing values through (a holdout for a model that handles them,
    such as HistGradientBoosting); infinities are always refused.
    """
    spec = signature.inputs[0]
    array = np.asarray(sample)
    if array.dtype.kind not in "biuf":
        raise OptimizeError(
            f"the {purpose} has dtype {array.dtype}; expected numbers for input {spec.name!r} "
            f"({spec.datatype}). Pass the numeric feature columns only."
        )
    width = spec.shape[1] if len(spec.shape) == 2 else -1
    if array.ndim != 2 or (width > 0 and array.shape[1] != width):
        raise OptimizeError(
            f"the {purpose} has shape {array.shape}; expected [rows, {width}] for input "
            f"{spec.name!r}. Pass a 2-D array with one column per feature, in training order."
        )
    if len(array) == 0:
        raise OptimizeError(f"the {purpose} has no rows; pass at least one row")
    rows = array.astype(np.float64)
    bad = np.argwhere(np.isinf(rows) if allow_nan else ~np.isfinite(rows))
    if len(bad):
        row, column = (int(i) for i in bad[0])
        what = "infinite" if allow_nan else "NaN or infinite"
        raise OptimizeError(
            f"the {purpose} has {len(bad)} {what} value(s), the first at row {row}, "
            f"column {column}; drop or impute those rows first."
        )
    return rows


def load_sample(
    path: str | os.PathLike[str],
    signature: Signature,
    label_column: str | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    allow_nan: bool = False,
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any] | None]:
    """Read features (and labels, if ``label_column`` is given) from a CSV or Parquet file.

    Empty cells are NaN: refused unless ``allow_nan`` (see :func:`check_sample`).
    """
    from mlgate.monitoring.tabular import read_column_names, read_frame

    try:
        names = read_column_names(path)
        if label_column is not None and label_column not in names:
            raise OptimizeError(
                f"{path} has no label column {label_column!r}; its columns are {names}"
            )
        if feature_names is not None:
            features = list(feature_names)
            missing = [name for name in features if name not in names]
            if missing:
                raise OptimizeError(
                    f"{path} lacks the model's feature column(s) {missing}; expected "
                    f"{features} (the names it was trained with)"
                )
        else:
            features = [name for name in names if name != label_column]
        wanted = features + ([label_column] if label_column is not None else [])
        frame = read_frame(path, {name: "numeric" for name in features}, columns=wanted)
    except MonitoringError as exc:
        raise OptimizeError(f"cannot read the sample: {exc}") from exc
    x = check_sample(
        np.column_stack([frame[name] for name in features]) if features else np.empty((0, 0)),
        signature,
        purpose=f"sample in {path} (feature columns {features})",
        allow_nan=allow_nan,
    )
    if label_column is None:
        return x, None
    labels = np.asarray(frame[label_column])
    if labels.dtype.kind == "f":
        missing_labels = np.isnan(labels)
    else:
        missing_labels = np.array([value is None for value in labels], dtype=bool)
    if missing_labels.any():
        raise OptimizeError(
            f"label column {label_column!r} of {path} is empty in {int(missing_labels.sum())} "
            f"row(s), the first at row {int(np.argmax(missing_labels))}; fill or drop them"
        )
    return x, labels
