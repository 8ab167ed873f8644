"""Records to slots: each feature's value becomes the index of its reference bin or category.

Slot layout per feature (offsets make one flat count vector for all features):

numeric, B reference bins
    ``0 .. B-1`` the bins ``(-inf, e1), [e1, e2), ..., [e_{B-1}, inf)`` of finite values,
    ``B`` missing (NaN or None), ``B+1`` minus infinity, ``B+2`` plus infinity. Infinities
    are kept apart so the window can report them; the statistics fold them into the outer
    bins, as the batch drift code does.
categorical, K reference categories (sorted)
    ``0 .. K-1`` the categories, ``K`` every category the reference never saw (one explicit
    *unseen* bucket, so memory stays bounded however many new values arrive), ``K+1``
    missing.

Encoding is vectorised per feature over the batch: one ``np.searchsorted`` for a numeric
column, one dictionary lookup per value for a categorical one. A column the batch lacks
counts as missing for each of its records; columns the profile does not name are ignored.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import DataError
from mlgate.monitoring._columns import frame_columns, numeric_column
from mlgate.monitoring.profile import CategoricalProfile, NumericProfile, ReferenceProfile

__all__ = ["CategoricalSlots", "FeatureCodec", "NumericSlots"]

logger = logging.getLogger(__name__)

IntArray = NDArray[np.int64]
UNSEEN_NAMES_KEPT = 20
"""New category names remembered per feature, most recent first, for alarm messages."""


@dataclass(frozen=True, slots=True)
class NumericSlots:
    name: str
    offset: int
    edges: NDArray[np.float64]
    reference: IntArray  # the profile's bin counts (infinities in the outer bins)

    @property
    def n_bins(self) -> int:
        return int(self.edges.size + 1)

    @property
    def width(self) -> int:
        return self.n_bins + 3


@dataclass(frozen=True, slots=True)
class CategoricalSlots:
    name: str
    offset: int
    categories: tuple[str, ...]
    reference: IntArray  # the profile's count per category, in ``categories`` order

    @property
    def width(self) -> int:
        return len(self.categories) + 2


Slots = NumericSlots | CategoricalSlots


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class FeatureCodec:
    """Encodes frames into slot codes for the features of one reference profile."""

    def __init__(self, profile: ReferenceProfile) -> None:
        if not profile.features:
            raise DataError("the reference profile has no features; fit it on a non-empty frame")
        self.profile = profile
        slots: list[Slots] = []
        offset = 0
        for name, feature in profile.features.items():
            spec: Slots
            if isinstance(feature, NumericProfile):
                edges = np.asarray(feature.edges, dtype=np.float64)
                reference = np.asarray(feature.bin_counts, dtype=np.int64)
                spec = NumericSlots(name, offset, edges, reference)
            else:
                assert isinstance(feature, CategoricalProfile)
                categories = tuple(sorted(feature.frequencies))
                reference = np.array([feature.frequencies[c] for c in categories], dtype=np.int64)
                spec = CategoricalSlots(name, offset, categories, reference)
            slots.append(spec)
            offset += spec.width
        self.slots: tuple[Slots, ...] = tuple(slots)
        self.n_slots = offset
        # Lookup per categorical feature: category -> local slot; None -> missing. New names
        # are added (up to a bound) pointing at the unseen slot, so repeats are fast too.
        self._lookup: dict[str, dict[object, int]] = {}
        self._unseen: dict[str, OrderedDict[str, None]] = {}
        for spec in self.slots:
            if isinstance(spec, CategoricalSlots):
                table: dict[object, int] = {c: i for i, c in enumerate(spec.categories)}
                table[None] = len(spec.categories) + 1
                self._lookup[spec.name] = table
                self._unseen[spec.name] = OrderedDict()
        self._absent_logged: set[str] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.slots)

    def unseen_categories(self, name: str) -> tuple[str, ...]:
        """The most recently seen categories of ``name`` that the reference lacks."""
        return tuple(reversed(self._unseen.get(name, OrderedDict())))

    def encode(self, frame: Mapping[str, Any]) -> IntArray:
        """Slot codes of every record, shape ``(n, features)``; DataError on ill-typed columns.

        Every column is checked before any state changes, so a refused batch leaves the
        codec (and the monitor) as they were.
        """
        columns, n = frame_columns(frame, "batch")
        codes = np.empty((n, len(self.slots)), dtype=np.int64)
        pending_unseen: list[tuple[str, list[str]]] = []
        for j, spec in enumerate(self.slots):
            raw = columns.get(spec.name)
            if raw is None:
                if spec.name not in self._absent_logged and n:
                    self._absent_logged.add(spec.name)
                    logger.warning(
                        "the stream lacks column %r of the reference profile; its records "
                        "count as missing for it",
                        spec.name,
                    )
                missing = spec.n_bins if isinstance(spec, NumericSlots) else spec.width - 1
                codes[:, j] = spec.offset + missing
            elif isinstance(spec, NumericSlots):
                codes[:, j] = self._numeric(spec, raw)
            else:
                local, new = self._categorical(spec, raw)
                codes[:, j] = local + spec.offset
                if new:
                    pending_unseen.append((spec.name, new))
        for name, new in pending_unseen:
            self._remember_unseen(name, new)
        return codes

    @staticmethod
    def _numeric(spec: NumericSlots, raw: NDArray[Any]) -> IntArray:
        values = numeric_column(spec.name, raw)
        local = np.searchsorted(spec.edges, values, side="right").astype(np.int64)
        finite = np.isfinite(values)
        if not finite.all():
            b = spec.n_bins
            local[np.isnan(values)] = b
            local[values == -np.inf] = b + 1
            local[values == np.inf] = b + 2
        local += spec.offset
        return local

    def _categorical(self, spec: CategoricalSlots, raw: NDArray[Any]) -> tuple[IntArray, list[str]]:
        kind = raw.dtype.kind
        if kind == "b":
            items: list[Any] = ["true" if v else "false" for v in raw.tolist()]
        elif kind in "iuU":
            items = [str(v) for v in raw.tolist()]
        elif kind == "O":
            items = raw.tolist()
        else:
            raise DataError(
                f"column {spec.name!r} is categorical in the reference profile but the batch "
                f"has dtype {raw.dtype}; categories must be text (or bools or integer codes)"
            )
        table = self._lookup[spec.name]
        get = table.get
        local = np.fromiter((get(v, -1) for v in items), dtype=np.int64, count=len(items))
        misses = np.flatnonzero(local < 0)
        new: list[str] = []
        if misses.size:
            unseen, missing = len(spec.categories), len(spec.categories) + 1
            bad: list[object] = []
            for i in misses.tolist():
                value = items[i]
                if isinstance(value, str):
                    local[i] = unseen
                    new.append(value)
                elif _is_missing(value):
                    local[i] = missing
                else:
                    bad.append(value)
            if bad:
                shown = ", ".join(f"{v!r} ({type(v).__name__})" for v in bad[:3])
                raise DataError(
                    f"column {spec.name!r} is categorical but the batch holds {len(bad)} "
                    f"values that are not text, e.g. {shown}; send categories as strings "
                    "(None for missing); no record of this batch was counted"
                )
        return local, new

    def _remember_unseen(self, name: str, new: list[str]) -> None:
        table, recent = self._lookup[name], self._unseen[name]
        spec = next(s for s in self.slots if s.name == name)
        assert isinstance(spec, CategoricalSlots)
        unseen_slot = len(spec.categories)
        for value in new:
            if value in recent:
                recent.move_to_end(value)
                continue
            recent[value] = None
            table[value] = unseen_slot
            if len(recent) > UNSEEN_NAMES_KEPT:
                old, _ = recent.popitem(last=False)
                table.pop(old, None)
