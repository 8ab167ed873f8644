"""User attributes to feature vectors for the contextual policies (LinUCB, linear Thompson).

A contextual bandit routes on the attributes a request carries (river style: a
mapping of attribute name to value, such as ``{"age": 31, "country": "fr"}``).
The linear models need a fixed-length vector, so the features are declared up
front, once, and :class:`ContextEncoder` turns every request's attributes into
the same layout:

* an intercept (1.0), unless ``intercept=False``, so each arm learns a baseline;
* each numeric attribute, as given;
* each categorical attribute as a one-hot block over its declared categories.

Declaring the categories is deliberate: a vocabulary learned on the fly would
change the vector's length (and every arm's model) mid-experiment.

Bad input fails loudly, naming the attribute and what to send, because a model
fed a silently wrong vector routes badly without anyone noticing: a missing
attribute, a non-numeric value for a numeric feature, NaN or infinity, and an
unknown category all raise :class:`~mlgate.errors.ExperimentInputError`. An
unknown category is an error by default; ``unknown="zero"`` encodes it as an
all-zero one-hot block instead (the arm's baseline for that attribute), for
open vocabularies where a new value must not turn requests away.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from numbers import Real
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import ExperimentInputError

__all__ = ["ContextEncoder", "Unknown"]

# Beyond this a feature value is a unit error, and squared in a linear policy's X'X it
# would overflow toward infinity and poison every later decision.
MAX_MAGNITUDE = 1e6

Unknown = Literal["error", "zero"]
FloatArray = NDArray[np.float64]


class ContextEncoder:
    """Encode request attributes into the feature vector a linear bandit learns on.

    >>> encoder = ContextEncoder(numeric=["age"], categorical={"country": ["fr", "us"]})
    >>> encoder.feature_names
    ('intercept', 'age', 'country=fr', 'country=us')
    >>> encoder.encode({"age": 31, "country": "us"}).tolist()
    [1.0, 31.0, 0.0, 1.0]
    """

    def __init__(
        self,
        numeric: Sequence[str] = (),
        categorical: Mapping[str, Sequence[Hashable]] | None = None,
        *,
        intercept: bool = True,
        unknown: Unknown = "error",
    ) -> None:
        if isinstance(numeric, str):
            raise ExperimentInputError(
                f"numeric features must be a list of attribute names, found the string "
                f"{numeric!r}; write numeric=[{numeric!r}]"
            )
        if unknown not in ("error", "zero"):
            raise ExperimentInputError(f"unknown must be 'error' or 'zero', found {unknown!r}")
        categorical = dict(categorical or {})
        names = list(numeric) + list(categorical)
        for name in names:
            if not isinstance(name, str) or not name:
                raise ExperimentInputError(
                    f"feature names must be non-empty strings, found {name!r}"
                )
        if len(set(names)) != len(names):
            repeated = sorted({n for n in names if names.count(n) > 1})
            raise ExperimentInputError(f"features are declared twice: {repeated}")
        self._numeric = tuple(numeric)
        self._intercept = intercept
        self._unknown: Unknown = unknown
        offset = int(intercept) + len(self._numeric)
        feature_names = (["intercept"] if intercept else []) + list(self._numeric)
        self._categories: dict[str, tuple[Hashable, ...]] = {}
        self._columns: list[tuple[str, dict[Hashable, int]]] = []
        for name, categories in categorical.items():
            values = _check_categories(name, categories)
            self._categories[name] = values
            self._columns.append((name, {v: offset + j for j, v in enumerate(values)}))
            feature_names += [f"{name}={v}" for v in values]
            offset += len(values)
        if offset == 0:
            raise ExperimentInputError(
                "a context encoder needs at least one feature or the intercept; "
                "declare numeric or categorical attributes"
            )
        self._names = tuple(feature_names)
        self._template = np.zeros(offset)
        if intercept:
            self._template[0] = 1.0

    @property
    def dim(self) -> int:
        """Length of every encoded vector."""
        return len(self._names)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """One name per vector position: ``intercept``, numeric names, ``attr=category``."""
        return self._names

    @property
    def numeric(self) -> tuple[str, ...]:
        return self._numeric

    @property
    def categorical(self) -> dict[str, tuple[Hashable, ...]]:
        return dict(self._categories)

    @property
    def intercept(self) -> bool:
        return self._intercept

    @property
    def unknown(self) -> Unknown:
        return self._unknown

    def encode(self, attributes: Mapping[str, Any]) -> FloatArray:
        """One request's attributes as a fresh 1-D float vector of length :attr:`dim`."""
        if not isinstance(attributes, Mapping):
            raise ExperimentInputError(
                f"a context must be a mapping of attribute names to values, found "
                f"{type(attributes).__name__}; send e.g. {self._example()}"
            )
        row = self._template.copy()
        at = int(self._intercept)
        for name in self._numeric:
            row[at] = self._number(name, attributes)
            at += 1
        for name, columns in self._columns:
            value = attributes.get(name, _MISSING)
            if value is _MISSING:
                raise ExperimentInputError(
                    f"context attribute {name!r} is missing; send one of "
                    f"{list(self._categories[name])} for {name!r} in every request"
                )
            try:
                column = columns.get(value)
            except TypeError:  # an unhashable value such as a list
                column = None
            if column is not None:
                row[column] = 1.0
            elif self._unknown == "error":
                raise ExperimentInputError(
                    f"context attribute {name!r} has the unknown category {value!r}; send "
                    f"one of {list(self._categories[name])}, or declare the category (or "
                    f"build the encoder with unknown='zero' to encode it as all zeros)"
                )
        return row

    def encode_many(self, rows: Iterable[Mapping[str, Any]]) -> FloatArray:
        """Many requests' attributes as an ``(n, dim)`` matrix, row by row."""
        encoded = [self.encode(row) for row in rows]
        if not encoded:
            return np.zeros((0, self.dim))
        return np.vstack(encoded)

    def check_vector(self, vector: Any) -> FloatArray:
        """An already-encoded context, checked for length and finiteness."""
        array = np.asarray(vector, dtype=np.float64)
        if array.shape != (self.dim,):
            raise ExperimentInputError(
                f"an encoded context must be a 1-D vector of length {self.dim} "
                f"({', '.join(self._names)}), found shape {array.shape}"
            )
        if not np.isfinite(array).all():
            at = int(np.flatnonzero(~np.isfinite(array))[0])
            raise ExperimentInputError(
                f"an encoded context holds {array[at]} at position {at} "
                f"({self._names[at]!r}); send finite numbers"
            )
        return array

    def _number(self, name: str, attributes: Mapping[str, Any]) -> float:
        value = attributes.get(name, _MISSING)
        if value is _MISSING or value is None:
            raise ExperimentInputError(
                f"context attribute {name!r} is missing; send a number for {name!r} in "
                f"every request (features: {', '.join(self._names)})"
            )
        if isinstance(value, float):
            number = value
        elif isinstance(value, Real | np.number):
            number = float(value)
        elif isinstance(value, str) and len(value) <= 64:  # an HTTP header carries text
            try:
                number = float(value)
            except ValueError:
                raise ExperimentInputError(
                    f"context attribute {name!r} must be a number, found {value!r:.80}; "
                    f"send {name!r} as a JSON number (or a header holding one)"
                ) from None
        else:
            raise ExperimentInputError(
                f"context attribute {name!r} must be a number, found {value!r:.80} "
                f"({type(value).__name__}); send {name!r} as a JSON number"
            )
        if not math.isfinite(number) or abs(number) > MAX_MAGNITUDE:
            raise ExperimentInputError(
                f"context attribute {name!r} must be a finite number of magnitude at most "
                f"{MAX_MAGNITUDE:g}, found {number}; scale it, or impute missing values"
            )
        return number

    def _example(self) -> str:
        example: dict[str, Any] = dict.fromkeys(self._numeric, 1.0)
        example.update({name: values[0] for name, values in self._categories.items()})
        return repr(example)

    def __repr__(self) -> str:
        return (
            f"ContextEncoder(numeric={list(self._numeric)!r}, categorical="
            f"{ {k: list(v) for k, v in self._categories.items()}!r}, "
            f"intercept={self._intercept}, unknown={self._unknown!r})"
        )


_MISSING: Any = object()


def _check_categories(name: str, categories: Sequence[Hashable]) -> tuple[Hashable, ...]:
    if isinstance(categories, str) or not isinstance(categories, Sequence):
        raise ExperimentInputError(
            f"categories of {name!r} must be a list of values, found {categories!r}"
        )
    values = tuple(categories)
    if not values:
        raise ExperimentInputError(f"categorical feature {name!r} needs at least one category")
    try:
        distinct = len(set(values)) == len(values)
    except TypeError as exc:
        raise ExperimentInputError(
            f"categories of {name!r} must be strings or numbers, found {values!r}"
        ) from exc
    if not distinct:
        raise ExperimentInputError(f"categories of {name!r} repeat a value: {list(values)}")
    return values
