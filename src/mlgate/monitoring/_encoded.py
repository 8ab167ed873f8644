"""Frames that remember how pyarrow held their categorical columns: codes into a dictionary.

A frame's categorical column is an object array of ``str`` and None (the frame contract).
Counting the categories of a million such objects costs ~0.1 s of Python hashing per
column, yet pyarrow had every value as an integer code into a small dictionary before the
object array was built. :func:`~mlgate.monitoring.tabular.read_frame` therefore returns an
:class:`EncodedFrame`: a plain ``dict`` of columns that also keeps, per categorical column,
those codes (:class:`CategoryCodes`), so the drift code counts categories with one
``numpy.bincount``.

The codes are only trusted for the very array they were built with, and only while it
cannot have changed: that array is read-only, and :meth:`EncodedFrame.codes_of` answers
None for a replaced column, an array made writable again, or a slice or copy (a plain
array carries no codes). A caller that gets None counts the objects as before, so the
answers never depend on which path ran.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["CategoryCodes", "EncodedFrame", "codes_of"]


@dataclass(frozen=True, slots=True, eq=False)
class CategoryCodes:
    """A categorical column as codes: ``values[i] == labels[codes[i]]``.

    ``codes`` holds ``len(labels)`` for a missing value; a None label (a dictionary may hold
    a null) is missing too. ``values`` is the read-only object array the frame holds.
    """

    values: npt.NDArray[np.object_]
    codes: npt.NDArray[np.integer[Any]]
    labels: tuple[str | None, ...]

    @classmethod
    def build(
        cls, codes: npt.NDArray[np.integer[Any]], labels: tuple[str | None, ...]
    ) -> CategoryCodes:
        """The object array ``labels[codes]`` (None where missing), made read-only, and codes."""
        table = np.empty(len(labels) + 1, dtype=object)
        table[: len(labels)] = labels
        values = table.take(codes)
        values.flags.writeable = False
        return cls(values, codes, labels)

    def counts(self) -> tuple[dict[str, int], int]:
        """``({category: count}, missing)``, as ``_columns.category_counts`` gives them."""
        freq = np.bincount(self.codes, minlength=len(self.labels) + 1).tolist()
        counts: dict[str, int] = {}
        missing = freq[-1]
        for label, count in zip(self.labels, freq, strict=False):
            if label is None:
                missing += count
            elif count:
                counts[label] = counts.get(label, 0) + count  # a label twice in a dictionary
        return counts, missing


class EncodedFrame(dict[str, npt.NDArray[Any]]):
    """A frame (column name -> array) that also knows its categorical columns' codes."""

    def __init__(
        self, columns: Mapping[str, npt.NDArray[Any]], codes: Mapping[str, CategoryCodes]
    ) -> None:
        super().__init__(columns)
        self.codes = dict(codes)

    def codes_of(self, name: str) -> CategoryCodes | None:
        """The codes of column ``name`` while it is still the read-only array built from them."""
        found = self.codes.get(name)
        if found is None:
            return None
        values = self.get(name)
        if values is not found.values or values.flags.writeable:
            return None
        return found


def codes_of(frame: object, name: str) -> CategoryCodes | None:
    """:meth:`EncodedFrame.codes_of` for any frame: None unless it is an EncodedFrame."""
    return frame.codes_of(name) if isinstance(frame, EncodedFrame) else None
