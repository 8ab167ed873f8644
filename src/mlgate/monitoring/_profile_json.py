"""Checked decoding of a reference profile's feature entries (the JSON edge of profile.py).

A profile file may come from another mlgate version, an editor or a truncated copy, so
every field is checked for type and consistency before numbers reach the statistics: a
profile that decodes is one the drift code can use. Problems raise ProfileError naming the
feature and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from mlgate.errors import ProfileError

__all__ = ["categorical_from_json", "numeric_from_json"]

_SUMMARY = ("min", "max", "mean", "std", "q01", "q99", "median", "mad")


def _fail(feature: str, what: str) -> ProfileError:
    return ProfileError(f"feature {feature!r}: {what}; the profile is corrupt, refit it")


def _count(feature: str, raw: Mapping[str, Any], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _fail(feature, f"{key} must be a non-negative integer, found {value!r}")
    return value


def _float(feature: str, value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(feature, f"{key} must be a number, found {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise _fail(feature, f"{key} must be finite, found {value!r}")
    return result


def _floats(feature: str, raw: Mapping[str, Any], key: str) -> tuple[float, ...]:
    values = raw.get(key)
    if not isinstance(values, list):
        raise _fail(feature, f"{key} must be a list of numbers")
    return tuple(_float(feature, v, key) for v in values)


def numeric_from_json(feature: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for NumericProfile from its JSON entry."""
    count = _count(feature, raw, "count")
    neg_inf, pos_inf = _count(feature, raw, "neg_inf"), _count(feature, raw, "pos_inf")
    edges = _floats(feature, raw, "edges")
    grid = _floats(feature, raw, "grid")
    counts_raw = raw.get("bin_counts")
    if not isinstance(counts_raw, list):
        raise _fail(feature, "bin_counts must be a list of integers")
    counts = tuple(_count(feature, {"bin_counts": c}, "bin_counts") for c in counts_raw)
    if len(counts) != len(edges) + 1:
        raise _fail(feature, f"{len(edges)} edges need {len(edges) + 1} bin counts")
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise _fail(feature, "edges must be strictly increasing")
    if any(b < a for a, b in zip(grid, grid[1:], strict=False)):
        raise _fail(feature, "grid must be non-decreasing")
    if sum(counts) != count or neg_inf + pos_inf > count:
        raise _fail(feature, f"bin counts sum to {sum(counts)} but count is {count}")
    finite = count - neg_inf - pos_inf
    if (finite == 0) != (len(grid) == 0):
        raise _fail(feature, "grid must be empty exactly when there are no finite values")
    is_sample = raw.get("grid_is_sample")
    if not isinstance(is_sample, bool) or (is_sample and len(grid) != finite):
        raise _fail(feature, "grid_is_sample must be a bool, true only for a whole sample")
    ks_error = _float(feature, raw.get("ks_error"), "ks_error")
    w_raw = raw.get("wasserstein_error")
    w_error = math.inf if w_raw is None else _float(feature, w_raw, "wasserstein_error")
    summary = raw.get("summary")
    if not isinstance(summary, dict):
        raise _fail(feature, "summary must be an object")
    numbers = {
        key: None if summary.get(key) is None else _float(feature, summary.get(key), key)
        for key in _SUMMARY
    }
    return {
        "count": count,
        "missing": _count(feature, raw, "missing"),
        "neg_inf": neg_inf,
        "pos_inf": pos_inf,
        "edges": edges,
        "bin_counts": counts,
        "grid": grid,
        "grid_is_sample": is_sample,
        "ks_error": ks_error,
        "wasserstein_error": w_error,
        **numbers,
    }


def categorical_from_json(feature: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for CategoricalProfile from its JSON entry."""
    count = _count(feature, raw, "count")
    frequencies = raw.get("frequencies")
    if not isinstance(frequencies, dict):
        raise _fail(feature, "frequencies must be an object of category to count")
    checked = {
        str(k): _count(feature, {"frequency": v}, "frequency") for k, v in frequencies.items()
    }
    if sum(checked.values()) != count:
        raise _fail(feature, f"frequencies sum to {sum(checked.values())}, count is {count}")
    return {"count": count, "missing": _count(feature, raw, "missing"), "frequencies": checked}
