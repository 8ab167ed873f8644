"""Reference profiles: what drift checks need of the reference data, fitted once, kept as JSON.

A profile lets :func:`mlgate.monitoring.drift.compare_profile` judge any number of windows
without the reference data in memory. Per numeric feature it keeps the bin edges and
counts (so PSI, KL, JS and the chi-square test are exactly those of
:func:`~mlgate.monitoring.drift.compare`), a quantile grid of 1,001 points, the counts of
infinities, and summary numbers (range, mean, std, quantiles, median, MAD) for reports.
Per categorical feature it keeps the count of each category.

KS and Wasserstein from the grid are approximations. The grid's weighted ECDF (trapezoid
weights on order statistics, see :func:`~mlgate.monitoring.stats.quantile_grid`) stands in
for the sample, and by the triangle inequality the KS statistic and normalised Wasserstein
distance from it differ from the exact ones by at most the grid's own distance to the
sample, which :func:`fit_profile` measures and stores as ``ks_error`` and
``wasserstein_error``. For 1,001 points ``ks_error`` is about ``1/2000 + 1/n``; the
Wasserstein error is about ``range / (2000 * std)`` for light tails (about 0.003 for a
normal sample of a million). A reference of at most 1,001 finite values is stored whole,
and its errors are zero.

Profiles are saved as JSON files (:func:`save_profile`, :func:`load_profile`), written to a
temporary file and renamed into place so a reader never sees half a profile. They are not
yet kept in the model registry: a caller stores the file next to the model version.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mlgate.errors import DataError, ProfileError
from mlgate.monitoring._columns import (
    FeatureKind,
    Frame,
    category_counts,
    check_kinds,
    frame_columns,
    infer_kind,
    numeric_column,
)
from mlgate.monitoring._profile_json import categorical_from_json, numeric_from_json
from mlgate.monitoring.stats import (
    DEFAULT_BINS,
    GRID_SIZE,
    bin_counts,
    grid_errors,
    quantile_edges,
    quantile_grid,
)
from mlgate.monitoring.stats._ecdf import finite_part, strip_nan

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_FORMAT_VERSION",
    "CategoricalProfile",
    "FeatureProfile",
    "NumericProfile",
    "ReferenceProfile",
    "fit_profile",
    "load_profile",
    "save_profile",
]

PROFILE_FORMAT = "mlgate.reference_profile"
PROFILE_FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class NumericProfile:
    """One numeric reference column. ``count`` counts non-missing values, infinities included.

    Summary numbers describe the finite values and are None when there are none.
    """

    kind: ClassVar[FeatureKind] = "numeric"
    count: int
    missing: int
    neg_inf: int
    pos_inf: int
    edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    grid: tuple[float, ...]
    grid_is_sample: bool
    ks_error: float
    wasserstein_error: float
    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    q01: float | None
    q99: float | None
    median: float | None
    mad: float | None

    @property
    def finite(self) -> int:
        return self.count - self.neg_inf - self.pos_inf

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "neg_inf": self.neg_inf,
            "pos_inf": self.pos_inf,
            "edges": list(self.edges),
            "bin_counts": list(self.bin_counts),
            "grid": list(self.grid),
            "grid_is_sample": self.grid_is_sample,
            "ks_error": self.ks_error,
            "wasserstein_error": _finite_or_none(self.wasserstein_error),
            "summary": {
                "min": self.min,
                "max": self.max,
                "mean": self.mean,
                "std": self.std,
                "q01": self.q01,
                "q99": self.q99,
                "median": self.median,
                "mad": self.mad,
            },
        }


@dataclass(frozen=True, slots=True)
class CategoricalProfile:
    """One categorical reference column: the count of each category, and of missing values."""

    kind: ClassVar[FeatureKind] = "categorical"
    count: int
    missing: int
    frequencies: Mapping[str, int]

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "count": self.count,
            "missing": self.missing,
            "frequencies": dict(self.frequencies),
        }


FeatureProfile = NumericProfile | CategoricalProfile


@dataclass(frozen=True, slots=True)
class ReferenceProfile:
    """Every feature's profile, in the reference's column order."""

    features: Mapping[str, FeatureProfile]
    n_rows: int
    created_at: datetime
    bins: int = DEFAULT_BINS
    grid_size: int = GRID_SIZE
    format_version: int = field(default=PROFILE_FORMAT_VERSION)

    @property
    def kinds(self) -> dict[str, FeatureKind]:
        return {name: feature.kind for name, feature in self.features.items()}

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict (no NaN or infinity) that :meth:`from_json` reads back."""
        return {
            "format": PROFILE_FORMAT,
            "format_version": self.format_version,
            "created_at": self.created_at.isoformat(),
            "n_rows": self.n_rows,
            "bins": self.bins,
            "grid_size": self.grid_size,
            "features": {name: feature.to_json() for name, feature in self.features.items()},
        }

    @classmethod
    def from_json(cls, data: object) -> ReferenceProfile:
        """Rebuild a profile; ProfileError for anything that is not a valid version-1 profile."""
        if not isinstance(data, dict):
            raise ProfileError(f"a profile must be a JSON object, found {type(data).__name__}")
        if data.get("format") != PROFILE_FORMAT:
            raise ProfileError(
                f"not a reference profile: expected format {PROFILE_FORMAT!r}, "
                f"found {data.get('format')!r}; fit one with fit_profile"
            )
        version = data.get("format_version")
        if version != PROFILE_FORMAT_VERSION:
            raise ProfileError(
                f"reference profile format version {version!r} is not supported (this mlgate "
                f"reads version {PROFILE_FORMAT_VERSION}); refit the profile or upgrade mlgate"
            )
        try:
            created_at = datetime.fromisoformat(data["created_at"])
            n_rows, bins, grid_size = data["n_rows"], data["bins"], data["grid_size"]
            raw_features = data["features"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ProfileError(f"reference profile header is malformed: {exc!r}") from exc
        for label, number in (("n_rows", n_rows), ("bins", bins), ("grid_size", grid_size)):
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                raise ProfileError(f"profile field {label} must be a non-negative int")
        if not isinstance(raw_features, dict):
            raise ProfileError("profile field features must be an object")
        features: dict[str, FeatureProfile] = {}
        for name, raw in raw_features.items():
            kind = raw.get("kind") if isinstance(raw, dict) else None
            if kind == "numeric":
                features[name] = NumericProfile(**numeric_from_json(name, raw))
            elif kind == "categorical":
                features[name] = CategoricalProfile(**categorical_from_json(name, raw))
            else:
                raise ProfileError(f"feature {name!r} has unknown kind {kind!r}")
        return cls(features, n_rows, created_at, bins, grid_size)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _number(value: np.floating[Any] | float) -> float | None:
    result = float(value)
    return result if math.isfinite(result) else None


def _fit_numeric(values: np.ndarray[Any, Any], bins: int, grid_size: int) -> NumericProfile:
    sorted_values = strip_nan(np.sort(values))
    missing = int(values.size - sorted_values.size)
    finite = finite_part(sorted_values)
    neg_inf = int(np.searchsorted(sorted_values, -np.inf, side="right"))
    edges = quantile_edges(sorted_values, bins)
    grid, is_sample = quantile_grid(sorted_values, grid_size)
    ks_error, w_error = grid_errors(sorted_values, grid, is_sample)
    summary: dict[str, float | None] = dict.fromkeys(
        ("min", "max", "mean", "std", "q01", "q99", "median", "mad")
    )
    if finite.size:
        with np.errstate(over="ignore", invalid="ignore"):
            q01, median, q99 = np.quantile(finite, [0.01, 0.5, 0.99])
            summary.update(
                min=float(finite[0]),
                max=float(finite[-1]),
                mean=_number(np.mean(finite)),
                std=_number(np.std(finite)),
                q01=_number(q01),
                q99=_number(q99),
                median=_number(median),
                mad=_number(np.median(np.abs(finite - median))),
            )
    return NumericProfile(
        count=int(sorted_values.size),
        missing=missing,
        neg_inf=neg_inf,
        pos_inf=int(sorted_values.size - finite.size - neg_inf),
        edges=tuple(edges.tolist()),
        bin_counts=tuple(bin_counts(sorted_values, edges, is_sorted=True).tolist()),
        grid=tuple(grid.tolist()),
        grid_is_sample=is_sample,
        ks_error=ks_error,
        wasserstein_error=w_error,
        **summary,
    )


def fit_profile(
    frame: Frame,
    kinds: Mapping[str, FeatureKind] | None = None,
    bins: int = DEFAULT_BINS,
    *,
    grid_size: int = GRID_SIZE,
    created_at: datetime | None = None,
) -> ReferenceProfile:
    """Profile every column of a reference frame; kinds are inferred unless given.

    DataError for a frame without rows or columns, for overrides naming absent columns, and
    for columns that do not fit their kind.
    """
    columns, n_rows = frame_columns(frame, "reference")
    overrides = check_kinds(kinds)
    unknown = sorted(set(overrides) - set(columns))
    if unknown:
        raise DataError(f"kinds names columns the reference does not have: {unknown}")
    if not columns or n_rows == 0:
        raise DataError(
            f"cannot profile an empty reference ({len(columns)} columns, {n_rows} rows); "
            "fit the profile on the data the model was trained or validated on"
        )
    features: dict[str, FeatureProfile] = {}
    for name, values in columns.items():
        kind = overrides.get(name) or infer_kind(values)
        if kind == "numeric":
            features[name] = _fit_numeric(numeric_column(name, values), bins, grid_size)
        else:
            counts, missing = category_counts(name, values)
            ordered = dict(sorted(counts.items()))
            features[name] = CategoricalProfile(sum(ordered.values()), missing, ordered)
    return ReferenceProfile(
        features, n_rows, created_at or datetime.now(UTC), bins=bins, grid_size=grid_size
    )


def save_profile(profile: ReferenceProfile, path: str | os.PathLike[str]) -> Path:
    """Write the profile as JSON, atomically (temporary file, fsync, rename); return the path."""
    target = Path(path)
    text = json.dumps(profile.to_json(), allow_nan=False, separators=(",", ":"))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def load_profile(path: str | os.PathLike[str]) -> ReferenceProfile:
    """Read a profile written by :func:`save_profile`; ProfileError if missing or corrupt."""
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProfileError(
            f"no reference profile at {source}; fit one with fit_profile and save_profile"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read the reference profile at {source}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(
            f"the reference profile at {source} is not valid JSON ({exc}); it is corrupt: "
            "refit and save it again"
        ) from exc
    try:
        return ReferenceProfile.from_json(data)
    except ProfileError as exc:
        raise ProfileError(f"{source}: {exc}") from exc
