"""The label part of a quality profile: class counts and the trusted neighbour sample.

See :mod:`mlgate.monitoring.quality._poisoning` for the tests these feed and why the
neighbour index is a reference sample. Features are the numeric columns other than
the label, centred on the reference median and divided by the IQR (falling back to
the robust sigma, then 1, for columns whose IQR is 0). Only rows whose features are
all present and finite take part, in the reference sample and in a batch; features
missing from more than half the reference rows are left out for that reason.
Categorical features take no part in the distance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError, ProfileError
from mlgate.monitoring.quality import _stats as qs
from mlgate.monitoring.quality._json_fields import Fields
from mlgate.monitoring.quality._poisoning import suspect_rows_loo

__all__ = ["MAX_LABEL_CLASSES", "LabelQuality", "fit_label", "label_keys"]

MAX_LABEL_CLASSES = 100
# Standardised coordinates are clipped here so that an absurd value cannot overflow
# a squared distance; anything this far out is out of range and reported anyway.
_CLIP = 1e9

_MIN_PRESENT = 0.5

FloatArray = npt.NDArray[np.float64]


def label_keys(values: np.ndarray) -> npt.NDArray[np.object_]:
    """Class key per row, None where missing: strings as they are, numbers as ``"1"``/``"0.5"``."""
    if values.dtype.kind != "f":
        return values.astype(object)
    keys = np.full(values.shape[0], None, dtype=object)
    with np.errstate(invalid="ignore"):
        small_int = (np.abs(values) < 2.0**53) & (values == np.round(values))
    keys[small_int] = values[small_int].astype(np.int64).astype(str)
    for i in np.flatnonzero(np.isfinite(values) & ~small_int):
        value = float(values[i])
        keys[i] = str(int(value)) if value.is_integer() else repr(value)
    return keys


@dataclass(frozen=True)
class LabelQuality:
    """Reference label distribution and the label-flip check's trusted sample."""

    column: str
    counts: dict[str, int]
    features: tuple[str, ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    sample: tuple[tuple[float, ...], ...]
    sample_labels: tuple[str, ...]
    neighbours: int
    agreement: float
    suspect_rate: float | None
    suspect_n: int = 0
    note: str = ""

    @cached_property
    def sample_points(self) -> FloatArray:
        return np.array(self.sample, dtype=np.float64).reshape(len(self.sample), -1)

    def standardise(
        self, columns: Mapping[str, FloatArray], n_rows: int
    ) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Rows of the numeric features in reference units, and which rows are complete.

        Rows with a missing or infinite feature are not complete: the label-flip check
        skips them rather than impute, because a median put in for a missing value
        can land a clean row among another class (missing values have their own check).
        """
        out = np.zeros((n_rows, len(self.features)), dtype=np.float64)
        complete = np.ones(n_rows, dtype=bool)
        with np.errstate(over="ignore", invalid="ignore"):
            for j, name in enumerate(self.features):
                values = columns[name]
                complete &= np.isfinite(values)
                out[:, j] = (values - self.centre[j]) / self.scale[j]
        out = np.clip(np.nan_to_num(out, nan=0.0, posinf=_CLIP, neginf=-_CLIP), -_CLIP, _CLIP)
        return out, complete

    def to_json(self) -> dict[str, object]:
        return {
            "column": self.column,
            "counts": dict(self.counts),
            "features": list(self.features),
            "centre": list(self.centre),
            "scale": list(self.scale),
            "sample": [list(row) for row in self.sample],
            "sample_labels": list(self.sample_labels),
            "neighbours": self.neighbours,
            "agreement": self.agreement,
            "suspect_rate": self.suspect_rate,
            "suspect_n": self.suspect_n,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, f: Fields) -> LabelQuality:
        features = f.texts("features")
        rows: list[tuple[float, ...]] = []
        for i, row in enumerate(f.items("sample")):
            parsed = Fields({"row": row}, f"{f.path}.sample[{i}]").numbers("row")
            if len(parsed) != len(features):
                raise ProfileError(f"{f.path}.sample[{i}] must have {len(features)} values.")
            rows.append(parsed)
        quality = cls(
            column=f.text("column"),
            counts=f.counts("counts"),
            features=features,
            centre=f.numbers("centre"),
            scale=f.numbers("scale"),
            sample=tuple(rows),
            sample_labels=f.texts("sample_labels"),
            neighbours=f.integer("neighbours"),
            agreement=f.number("agreement"),
            suspect_rate=f.opt_number("suspect_rate"),
            suspect_n=f.integer("suspect_n"),
            note=f.text("note"),
        )
        sizes = {len(quality.centre), len(quality.scale), len(features)}
        if len(sizes) != 1 or len(quality.sample_labels) != len(rows) or quality.neighbours < 1:
            raise ProfileError(
                f"{f.path} is inconsistent (feature, scale, sample or label counts differ, "
                f"or neighbours < 1); the profile is corrupt, fit it again."
            )
        return quality


def _centre_scale(values: FloatArray) -> tuple[float, float]:
    finite = np.sort(values[np.isfinite(values)])
    if finite.shape[0] == 0:
        return 0.0, 1.0
    median = float(np.median(finite))
    q1, q3 = np.quantile(finite, [0.25, 0.75])
    if q3 > q1:
        return median, float(q3 - q1)
    sigma, _ = qs.robust_scale(finite, median)
    return median, sigma if sigma > 0 else 1.0


def fit_label(
    column: str,
    values: np.ndarray,
    features: Mapping[str, FloatArray],
    *,
    sample_size: int,
    neighbours: int,
    agreement: float,
    rng: np.random.Generator,
) -> LabelQuality:
    """Learn the label's class counts, the neighbour sample and its suspect-row base rate."""
    if neighbours < 1 or not 0 < agreement <= 1 or sample_size < 0 or 0 < sample_size <= neighbours:
        raise ValueError(
            f"neighbours must be >= 1, agreement in (0, 1] and sample_size 0 (keep no "
            f"sample) or above neighbours, got "
            f"{neighbours}, {agreement}, {sample_size}"
        )
    keys = label_keys(values)
    has_label = keys != None  # noqa: E711 - elementwise comparison
    classes, counts = np.unique(keys[has_label].astype(str), return_counts=True)
    if classes.shape[0] > MAX_LABEL_CLASSES:
        raise DataError(
            f"label {column!r} has {classes.shape[0]} distinct values; the label checks expect "
            f"class labels (at most {MAX_LABEL_CLASSES}). Leave `label` unset for a "
            f"regression target."
        )
    # A feature mostly missing in the reference would leave few complete rows to judge.
    names = tuple(n for n, v in features.items() if np.isfinite(v).mean() >= _MIN_PRESENT)
    centre_scale = [_centre_scale(features[name]) for name in names]
    centre = tuple(c for c, _ in centre_scale)
    scale = tuple(s for _, s in centre_scale)
    partial = LabelQuality(column, {}, names, centre, scale, (), (), neighbours, agreement, None)
    points, complete = partial.standardise(features, keys.shape[0])
    labelled = np.flatnonzero(has_label & complete)
    note = ""
    if not names:
        note = "no numeric feature besides the label to measure neighbours with"
    elif labelled.shape[0] <= neighbours:
        note = (
            f"{labelled.shape[0]} labelled reference rows with all features present; "
            f"needs more than {neighbours}"
        )
    sample: FloatArray = np.zeros((0, len(names)))
    sample_labels: npt.NDArray[np.str_] = np.zeros(0, dtype=str)
    rate: float | None = None
    n_sample = 0
    if not note:
        # The base rate is measured on a sample of the size kept (at least 5,000 when the
        # sample is not stored) so that the check compares like with like.
        n_sample = min(labelled.shape[0], sample_size or 5_000)
        chosen = np.sort(rng.choice(labelled, size=n_sample, replace=False))
        chosen_keys = keys[chosen].astype(str)
        _, codes = np.unique(chosen_keys, return_inverse=True)
        flags = suspect_rows_loo(points[chosen], codes.astype(np.int64), neighbours, agreement)
        rate = float(np.mean(flags))
        if sample_size:
            sample, sample_labels = points[chosen], chosen_keys
    return LabelQuality(
        column=column,
        counts={str(c): int(n) for c, n in zip(classes, counts, strict=True)},
        features=names,
        centre=centre,
        scale=scale,
        sample=tuple(tuple(float(x) for x in row) for row in sample),
        sample_labels=tuple(str(s) for s in sample_labels),
        neighbours=neighbours,
        agreement=agreement,
        suspect_rate=rate,
        suspect_n=0 if rate is None else int(n_sample),
        note=note,
    )
