"""Which labelled records a run trains on: the training window policy.

Three shapes, written under ``training.window`` in a loop file::

    window: {recent: 5000}                   # the newest N labelled records
    window: {seconds: 86400}                 # those whose event time is within S of now
    window: {recent: 3000, reference: 1000}  # the newest N plus up to R older ones

The reference sample keeps some memory of the old world: a model retrained on the last
hours only forgets what it knew about situations that merely did not occur lately (a
weekend, a season), and a seeded random sample of older rows is the cheapest guard
against that. It may follow either window: after ``recent`` the older rows are those
outside the newest N; after ``seconds`` they are those older than the window. Rows with
an event time after ``now`` (a skewed client clock, a replay) are in no time window.

:func:`select_rows` is the whole rule, a pure function over sequence numbers and times,
so the inbox can run it on the few columns it needs and fetch only the chosen rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import LoopConfigError

__all__ = ["WindowPolicy", "parse_window", "select_rows"]

_KEYS = ("recent", "seconds", "reference")
_EXAMPLE = "{recent: 5000}, {seconds: 86400} or {recent: 3000, reference: 1000}"


@dataclass(frozen=True)
class WindowPolicy:
    """Exactly one of ``recent`` (rows) or ``seconds``, plus an optional ``reference`` size."""

    recent: int | None = None
    seconds: float | None = None
    reference: int = 0

    def __post_init__(self) -> None:
        if (self.recent is None) == (self.seconds is None):
            raise LoopConfigError(f"a training window needs recent or seconds: {_EXAMPLE}")
        if self.recent is not None and self.recent < 1:
            raise LoopConfigError(f"recent must be at least 1, got {self.recent}")
        if self.seconds is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise LoopConfigError(f"seconds must be a positive number, got {self.seconds}")
        if self.reference < 0:
            raise LoopConfigError(f"reference must be 0 or more, got {self.reference}")

    def to_json(self) -> dict[str, int | float]:
        """The YAML/JSON form; :func:`parse_window` reads it back to an equal policy."""
        out: dict[str, int | float] = {}
        if self.recent is not None:
            out["recent"] = self.recent
        if self.seconds is not None:
            out["seconds"] = self.seconds
        if self.reference:
            out["reference"] = self.reference
        return out


def parse_window(data: Any, *, where: str = "training.window") -> WindowPolicy:
    """A :class:`WindowPolicy` from its YAML mapping; LoopConfigError naming ``where`` if bad."""
    if not isinstance(data, Mapping):
        raise LoopConfigError(
            f"{where} must be a mapping such as {_EXAMPLE}, found {type(data).__name__}"
        )
    unknown = sorted(str(key) for key in data if key not in _KEYS)
    if unknown:
        raise LoopConfigError(f"{where} has unknown keys {unknown}; use {', '.join(_KEYS)}")
    recent = _count(data, "recent", where, minimum=1)
    reference = _count(data, "reference", where, minimum=0)
    seconds = data.get("seconds")
    if seconds is not None and (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not (math.isfinite(seconds) and seconds > 0)
    ):
        raise LoopConfigError(
            f"{where}.seconds must be a positive number of seconds, got {seconds!r}"
        )
    if (recent is None) == (seconds is None):
        raise LoopConfigError(f"{where} needs exactly one of recent or seconds: {_EXAMPLE}")
    return WindowPolicy(
        recent=recent,
        seconds=None if seconds is None else float(seconds),
        reference=reference or 0,
    )


def _count(data: Mapping[Any, Any], key: str, where: str, *, minimum: int) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LoopConfigError(f"{where}.{key} must be an integer >= {minimum}, got {value!r}")
    return value


def select_rows(
    seqs: NDArray[np.int64],
    times: NDArray[np.float64],
    policy: WindowPolicy,
    now: float,
    seed: int = 0,
) -> NDArray[np.intp]:
    """Indices of the chosen rows, oldest (lowest sequence number) first, each at most once.

    ``seqs`` and ``times`` (Unix seconds) describe labelled rows only; the same inputs and
    seed give the same choice.
    """
    seqs = np.asarray(seqs, dtype=np.int64)
    times = np.asarray(times, dtype=np.float64)
    if len(seqs) != len(times):
        raise ValueError(f"{len(seqs)} sequence numbers but {len(times)} times")
    by_seq = np.argsort(seqs, kind="stable")
    if policy.recent is not None:
        cut = max(len(by_seq) - policy.recent, 0)
        window, older = by_seq[cut:], by_seq[:cut]
    else:
        assert policy.seconds is not None  # the policy's invariant
        start = now - policy.seconds
        window = by_seq[(times[by_seq] >= start) & (times[by_seq] <= now)]
        older = by_seq[times[by_seq] < start]
    chosen = window
    if policy.reference and len(older):
        size = min(policy.reference, len(older))
        sample = np.random.default_rng(seed).choice(older, size=size, replace=False)
        chosen = np.concatenate([window, sample])
    return np.asarray(chosen[np.argsort(seqs[chosen], kind="stable")], dtype=np.intp)
