"""Turning what sources read (JSON records, logged tensors) into frames the monitors take.

Sources never kill a monitor over one bad record: a record that cannot be read as the
profile expects (a text value for a numeric feature, a tensor of the wrong rank or width,
a payload that is not an object) is *rejected*: dropped whole, counted, and the first few
reasons kept for the log. A value that is merely absent (a key missing from a JSON record,
a null, a tensor the request did not log) is *missing* and counted as such.

Tensor columns. A logged request holds tensors with a leading batch dimension: a 1-D
tensor ``label`` of n values gives the column ``label``; a 2-D tensor ``x`` of shape (n, k)
gives ``x[0] .. x[k-1]``, unless (1) ``names`` maps ``x`` to k column names, or (2) none of
``x[i]`` is a wanted column and the profile's own feature order (``positional``) has
exactly k names: then column i is the profile's i-th feature (a profile fitted on the
model's training table, whose columns are the tensor's, in order).
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring._columns import FeatureKind

logger = logging.getLogger(__name__)

__all__ = [
    "ColumnParts",
    "RecordKeys",
    "Rejections",
    "TensorDecoder",
    "column_array",
    "parse_time",
]

Wanted = Mapping[str, FeatureKind | None]  # None: keep the raw values (a prediction column)
_REASONS_KEPT = 5


@dataclass
class Rejections:
    count: int = 0
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str, count: int = 1) -> None:
        self.count += count
        if len(self.reasons) < _REASONS_KEPT:
            self.reasons.append(reason)


@dataclass(frozen=True, slots=True)
class RecordKeys:
    """The keys of a flat record that are not features: request id, time, label, version."""

    request_id: str = "request_id"
    time: str = "time"
    label: str = "label"
    version: str = "version"

    def reserved(self) -> frozenset[str]:
        return frozenset((self.request_id, self.time, self.label, self.version))


def parse_time(value: Any) -> float | None:
    """Unix seconds from a number or an ISO 8601 / RFC 3339 string (UTC if no zone); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return None


def _category(value: Any) -> str | None:
    """A JSON scalar as a category (ints as their digits, integral floats too)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if math.isnan(number):
            return None
        if number.is_integer():
            return str(int(number))
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a category")


def _number(value: Any) -> float:
    if value is None:
        return math.nan
    if not isinstance(value, bool | np.bool_) and isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a number")


def column_array(values: list[Any], kind: FeatureKind | None) -> NDArray[Any]:
    """A column from per-record scalars: float64 (NaN missing) or object (str or None)."""
    if kind == "numeric":
        return np.array([_number(v) for v in values], dtype=np.float64)
    if kind == "categorical":
        return np.array([_category(v) for v in values], dtype=object)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _convert(array: NDArray[Any], kind: FeatureKind | None) -> NDArray[Any]:
    """A decoded tensor's column in the kind its feature has; TypeError if it cannot be."""
    if kind is None:
        return array
    if kind == "numeric":
        if array.dtype.kind in "fiub":
            return array.astype(np.float64)
        if array.dtype.kind == "O":
            return np.array([_number(v) for v in array.tolist()], dtype=np.float64)
        raise TypeError(f"found text (dtype {array.dtype}) where numbers were expected")
    if array.dtype.kind == "U":
        return array.astype(object)
    return np.array([_category(v) for v in array.tolist()], dtype=object)


class TensorDecoder:
    """Decodes logged tensor payloads (``{name: nested lists}``) into wanted columns."""

    def __init__(
        self,
        wanted: Wanted,
        *,
        positional: Sequence[str] = (),
        names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.wanted = dict(wanted)
        self.positional = tuple(positional)
        self.names = {k: tuple(v) for k, v in (names or {}).items()}
        self._resolved: dict[tuple[str, int | None], tuple[str, ...]] = {}

    def columns_of(self, tensor: str, width: int | None) -> tuple[str, ...]:
        """The column names of a tensor of this width (None: a 1-D tensor)."""
        key = (tensor, width)
        cached = self._resolved.get(key)
        if cached is not None:
            return cached
        k = 1 if width is None else width
        explicit = self.names.get(tensor)
        if explicit is not None:
            if len(explicit) != k:
                raise TypeError(
                    f"tensor {tensor!r} has {k} columns but names gives {len(explicit)}"
                )
            columns = explicit
        elif width is None:
            columns = (tensor,)
        else:
            default = tuple(f"{tensor}[{i}]" for i in range(width))
            if any(c in self.wanted for c in default):
                columns = default
            elif width == 1 and tensor in self.wanted:
                columns = (tensor,)
            elif self.positional and len(self.positional) == width:
                columns = self.positional
            else:
                columns = default
                logger.warning(
                    "tensor %r has %d columns, named %s .. %s, none of which the profile has; "
                    "name them (TensorDecoder names=, mlgate monitor --columns %s=a,b,...)",
                    tensor, width, default[0], default[-1], tensor,
                )  # fmt: skip
        self._resolved[key] = columns
        return columns

    def decode_row(self, payload: Any) -> tuple[dict[str, NDArray[Any]], int]:
        """One logged payload: (wanted columns it holds, record count); TypeError if malformed."""
        if not isinstance(payload, Mapping):
            raise TypeError(f"the payload is {type(payload).__name__}, not an object of tensors")
        out: dict[str, NDArray[Any]] = {}
        n: int | None = None
        for tensor, value in payload.items():
            array = np.asarray(value)
            if array.ndim not in (1, 2):
                raise TypeError(
                    f"tensor {tensor!r} has shape {array.shape}; a batch dimension and at "
                    "most one feature dimension were expected"
                )
            if n is None:
                n = int(array.shape[0])
            elif array.shape[0] != n:
                raise TypeError(f"tensor {tensor!r} has {array.shape[0]} rows, others {n}")
            width = None if array.ndim == 1 else int(array.shape[1])
            columns = self.columns_of(str(tensor), width)
            matrix = array.reshape(n, 1) if array.ndim == 1 else array
            for i, column in enumerate(columns):
                if column in self.wanted:
                    try:
                        out[column] = _convert(matrix[:, i], self.wanted[column])
                    except TypeError as exc:
                        raise TypeError(f"column {column!r}: {exc}") from None
        return out, n or 0

    def decode(
        self, payloads: Sequence[Any], rejections: Rejections
    ) -> tuple[dict[str, NDArray[Any]], list[int]]:
        """Columns of every payload that decodes, and each payload's record count (-1: rejected).

        Wanted columns a payload lacks are filled with missing values.
        """
        parts = ColumnParts(self.wanted)
        sizes: list[int] = []
        for index, payload in enumerate(payloads):
            try:
                columns, n = self.decode_row(payload)
            except (TypeError, ValueError) as exc:
                rejections.add(f"payload {index}: {exc}")
                sizes.append(-1)
                continue
            sizes.append(n)
            parts.add(columns, n)
        return parts.frame(), sizes


class ColumnParts:
    """Collects decoded column pieces and concatenates them once, filling absent ones."""

    def __init__(self, wanted: Wanted) -> None:
        self.wanted = dict(wanted)
        self._parts: dict[str, list[NDArray[Any]]] = {name: [] for name in wanted}

    def add(self, columns: Mapping[str, NDArray[Any]], n: int) -> None:
        for name, kind in self.wanted.items():
            column = columns.get(name)
            if column is None:
                column = np.full(n, np.nan) if kind == "numeric" else np.full(n, None, object)
            self._parts[name].append(column)

    def frame(self) -> dict[str, NDArray[Any]]:
        return {
            name: np.concatenate(arrays) if arrays else column_array([], self.wanted[name])
            for name, arrays in self._parts.items()
        }
