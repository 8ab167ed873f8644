"""What clean data looks like: the reference side of the data-quality checks.

:meth:`QualityProfile.fit` learns from a reference frame, once, everything
:func:`mlgate.monitoring.quality.check_batch` compares a batch with; no reference
rows are kept except the capped, standardised sample the label-flip check searches.

Defaults, and why:

* Accepted range per numeric column: ``[q0.001 - k*IQR, q0.999 + k*IQR]`` with
  ``k = range_margin_iqr = 0.5``. Quantiles rather than min/max so that one wild
  reference value does not open the range; the IQR margin so that a clean batch
  lands outside only rarely (for a normal column about 1.7e-4 of values). A
  column with IQR 0 takes its margin from ``q0.999 - q0.001``; a constant column
  accepts only its value. The reference's own share outside is the base rate.
* Robust z outliers: ``|x - median| / (1.4826 MAD) > 3.5`` (Iglewicz & Hoaglin);
  see ``quality._stats`` for the MAD = 0 fallbacks. The reference's share is the
  base rate, so naturally heavy-tailed columns do not alarm.
* Categories: every reference category with its count, the ``max_categories``
  (10,000) most frequent if there are more. The base rate for unseen values is the
  Good-Turing estimate of unseen mass (categories seen once, over the count) plus
  the mass of categories not stored.
* Duplicates: a duplicate-share curve over sample sizes (``quality._stats``).
* Label (if named): class counts; the numeric features' median and IQR; a random
  sample of at most ``label_sample_size`` (5,000) labelled rows, standardised, as
  the trusted neighbour index; and the sample's leave-one-out share of suspect rows
  with ``neighbours = 10`` and ``agreement = 0.8`` (``_poisoning``). A label may be
  categorical, or numeric with at most 100 distinct values (class codes).

Refused with :class:`DataError`: an empty reference, infinities, entries of the
wrong type, unknown columns named in ``kinds``, ``label`` or ``required``.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mlgate.errors import DataError, ProfileError
from mlgate.monitoring._columns import FEATURE_KINDS, FeatureKind, Frame, frame_columns
from mlgate.monitoring.quality import _stats as qs
from mlgate.monitoring.quality._frame import as_categorical, as_numeric, infer_kind, row_group_ids
from mlgate.monitoring.quality._json_fields import Fields
from mlgate.monitoring.quality._label_profile import LabelQuality, fit_label

__all__ = [
    "PROFILE_FORMAT",
    "PROFILE_VERSION",
    "CategoricalQuality",
    "LabelQuality",
    "NumericQuality",
    "QualityProfile",
]

PROFILE_FORMAT = "mlgate.quality_profile"
PROFILE_VERSION = 1


def _finite(value: float) -> float:
    """Clamp to the finite floats so that extreme data cannot put inf into the JSON."""
    return min(sys.float_info.max, max(-sys.float_info.max, value))


@dataclass(frozen=True)
class NumericQuality:
    """A numeric column's reference: accepted range, robust centre and scale, base rates.

    Statistics are None when the reference column had no values.
    """

    count: int
    missing: int
    low: float | None = None
    high: float | None = None
    out_of_range_rate: float = 0.0
    median: float | None = None
    scale: float | None = None
    scale_method: str = "none"
    iqr: float | None = None
    outlier_rate: float = 0.0

    @classmethod
    def fit(cls, values: npt.NDArray[np.float64], margin_iqr: float, z: float) -> NumericQuality:
        finite = np.sort(values[~np.isnan(values)])
        count = int(finite.shape[0])
        missing = int(values.shape[0]) - count
        if count == 0:
            return cls(count=0, missing=missing)
        with np.errstate(over="ignore", invalid="ignore"):
            quantiles = np.quantile(finite, [0.001, 0.25, 0.75, 0.999])
        # Interpolating between values near the float limits can overflow; clamp.
        q_low, q1, q3, q_high = (_finite(float(np.nan_to_num(q))) for q in quantiles)
        iqr = _finite(q3 - q1)
        margin = margin_iqr * (iqr if iqr > 0 else _finite(q_high - q_low))
        low, high = _finite(q_low - margin), _finite(q_high + margin)
        median = float(np.median(finite))
        with np.errstate(over="ignore", invalid="ignore"):
            scale, method = qs.robust_scale(finite, median)
            outliers = qs.outlier_mask(finite, median, _finite(scale), z)
        return cls(
            count=count,
            missing=missing,
            low=low,
            high=high,
            out_of_range_rate=float(np.mean((finite < low) | (finite > high))),
            median=median,
            scale=_finite(scale),
            scale_method=method,
            iqr=iqr,
            outlier_rate=float(np.mean(outliers)),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "missing": self.missing,
            "low": self.low,
            "high": self.high,
            "out_of_range_rate": self.out_of_range_rate,
            "median": self.median,
            "scale": self.scale,
            "scale_method": self.scale_method,
            "iqr": self.iqr,
            "outlier_rate": self.outlier_rate,
        }

    @classmethod
    def from_json(cls, f: Fields) -> NumericQuality:
        return cls(
            count=f.integer("count"),
            missing=f.integer("missing"),
            low=f.opt_number("low"),
            high=f.opt_number("high"),
            out_of_range_rate=f.number("out_of_range_rate"),
            median=f.opt_number("median"),
            scale=f.opt_number("scale"),
            scale_method=f.text("scale_method"),
            iqr=f.opt_number("iqr"),
            outlier_rate=f.number("outlier_rate"),
        )


@dataclass(frozen=True)
class CategoricalQuality:
    """A categorical column's reference: category counts and the unseen-value base rate."""

    count: int
    missing: int
    categories: dict[str, int] = field(default_factory=dict)
    unseen_rate: float = 0.0
    truncated: bool = False

    @classmethod
    def fit(cls, values: npt.NDArray[np.object_], max_categories: int) -> CategoricalQuality:
        present = np.array([v for v in values if v is not None], dtype=str)
        count = int(present.shape[0])
        if count == 0:
            return cls(count=0, missing=int(values.shape[0]))
        names, counts = np.unique(present, return_counts=True)
        order = np.lexsort((names, -counts))[:max_categories]
        kept = {str(names[i]): int(counts[i]) for i in order}
        dropped = count - sum(kept.values())
        singletons = sum(1 for c in kept.values() if c == 1)
        return cls(
            count=count,
            missing=int(values.shape[0]) - count,
            categories=kept,
            unseen_rate=(singletons + dropped) / count,
            truncated=len(kept) < names.shape[0],
        )

    def to_json(self) -> dict[str, object]:
        return {
            "count": self.count,
            "missing": self.missing,
            "categories": dict(self.categories),
            "unseen_rate": self.unseen_rate,
            "truncated": self.truncated,
        }

    @classmethod
    def from_json(cls, f: Fields) -> CategoricalQuality:
        return cls(
            count=f.integer("count"),
            missing=f.integer("missing"),
            categories=f.counts("categories"),
            unseen_rate=f.number("unseen_rate"),
            truncated=f.flag("truncated"),
        )


def _refuse_bad_entries(name: str, kind: str, bad: int, raw: np.ndarray) -> None:
    if bad:
        raise DataError(
            f"reference column {name!r} ({kind}) has {bad} entries of another type "
            f"(dtype {raw.dtype}); clean the column or declare its kind in `kinds`."
        )


@dataclass(frozen=True)
class QualityProfile:
    """The learnt reference of every data-quality check; see the module docstring."""

    n_rows: int
    kinds: dict[str, FeatureKind]
    required: tuple[str, ...]
    numeric: dict[str, NumericQuality]
    categorical: dict[str, CategoricalQuality]
    duplicate_curve: tuple[tuple[int, float], ...]
    label: LabelQuality | None = None
    range_margin_iqr: float = 0.5
    outlier_z: float = 3.5

    @classmethod
    def fit(
        cls,
        reference: Frame,
        kinds: Mapping[str, FeatureKind] | None = None,
        label: str | None = None,
        required: Sequence[str] | None = None,
        *,
        range_margin_iqr: float = 0.5,
        outlier_z: float = 3.5,
        max_categories: int = 10_000,
        label_sample_size: int = 5_000,
        neighbours: int = 10,
        agreement: float = 0.8,
        seed: int = 0,
    ) -> QualityProfile:
        """Learn the profile from ``reference``; ``seed`` fixes the sampling (reproducible)."""
        if not (range_margin_iqr >= 0 and outlier_z > 0 and max_categories >= 1):
            raise ValueError(
                f"range_margin_iqr must be >= 0, outlier_z > 0 and max_categories >= 1, got "
                f"{range_margin_iqr}, {outlier_z}, {max_categories}"
            )
        if isinstance(required, str):
            raise TypeError(f"required must be a sequence of column names, not {required!r}")
        columns, n_rows = frame_columns(reference, "reference")
        if n_rows == 0:
            raise DataError(
                "reference has no rows; expected at least one (and 100 or more for the "
                "statistical checks). Fit the profile on real reference data."
            )
        kinds = dict(kinds or {})
        for name, names_what in (
            *((n, "kinds") for n in kinds),
            *((n, "required") for n in required or ()),
            *(((label, "label"),) if label is not None else ()),
        ):
            if name not in columns:
                raise DataError(
                    f"{names_what} names column {name!r}, which the reference lacks; "
                    f"reference columns are {sorted(columns)}."
                )
        resolved: dict[str, FeatureKind] = {}
        numeric: dict[str, NumericQuality] = {}
        categorical: dict[str, CategoricalQuality] = {}
        coerced: dict[str, np.ndarray] = {}
        for name, raw in columns.items():
            kind = kinds.get(name) or infer_kind(raw)
            if kind not in FEATURE_KINDS:
                raise DataError(f"kind of {name!r} must be one of {FEATURE_KINDS}, found {kind!r}.")
            resolved[name] = kind
            if kind == "numeric":
                numbers, bad = as_numeric(raw)
                _refuse_bad_entries(name, kind, bad, raw)
                infinite = int(np.isinf(numbers).sum())
                if infinite:
                    raise DataError(
                        f"reference column {name!r} has {infinite} infinite values; expected "
                        f"finite numbers or NaN. Replace or drop them before fitting."
                    )
                numeric[name] = NumericQuality.fit(numbers, range_margin_iqr, outlier_z)
                coerced[name] = numbers
            else:
                labels, bad = as_categorical(raw)
                _refuse_bad_entries(name, kind, bad, raw)
                categorical[name] = CategoricalQuality.fit(labels, max_categories)
                coerced[name] = labels
        rng = np.random.default_rng(seed)
        curve = qs.duplicate_curve(row_group_ids(list(coerced.values()), n_rows), rng)
        label_quality = None
        if label is not None:
            label_quality = fit_label(
                label,
                coerced[label],
                {c: coerced[c] for c in resolved if resolved[c] == "numeric" and c != label},
                sample_size=label_sample_size,
                neighbours=neighbours,
                agreement=agreement,
                rng=rng,
            )
        return cls(
            n_rows=n_rows,
            kinds=resolved,
            required=tuple(required) if required is not None else tuple(resolved),
            numeric=numeric,
            categorical=categorical,
            duplicate_curve=curve,
            label=label_quality,
            range_margin_iqr=range_margin_iqr,
            outlier_z=outlier_z,
        )

    def to_json(self) -> dict[str, object]:
        """Return a JSON-able dict (no NaN or infinity) that :meth:`from_json` reads back."""
        return {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "n_rows": self.n_rows,
            "kinds": dict(self.kinds),
            "required": list(self.required),
            "numeric": {name: q.to_json() for name, q in self.numeric.items()},
            "categorical": {name: q.to_json() for name, q in self.categorical.items()},
            "duplicate_curve": [[m, s] for m, s in self.duplicate_curve],
            "label": None if self.label is None else self.label.to_json(),
            "range_margin_iqr": self.range_margin_iqr,
            "outlier_z": self.outlier_z,
        }

    @classmethod
    def from_json(cls, data: object) -> QualityProfile:
        """Parse :meth:`to_json` output; raises :class:`ProfileError` when it does not fit."""
        f = Fields(data, "profile")
        fmt, version = f.raw("format"), f.raw("version")
        if fmt != PROFILE_FORMAT or version != PROFILE_VERSION:
            raise ProfileError(
                f"expected a {PROFILE_FORMAT} profile of version {PROFILE_VERSION}, found "
                f"format {fmt!r} version {version!r}; refit the profile with this mlgate."
            )
        kinds_f = f.obj("kinds")
        kinds: dict[str, FeatureKind] = {}
        for name in kinds_f.keys():
            kind = kinds_f.text(name)
            if kind not in FEATURE_KINDS:
                raise ProfileError(
                    f"profile.kinds.{name} must be one of {FEATURE_KINDS}, found {kind!r}."
                )
            kinds[name] = "numeric" if kind == "numeric" else "categorical"
        numeric_f, categorical_f = f.obj("numeric"), f.obj("categorical")
        numeric = {n: NumericQuality.from_json(numeric_f.obj(n)) for n in numeric_f.keys()}
        categorical = {
            n: CategoricalQuality.from_json(categorical_f.obj(n)) for n in categorical_f.keys()
        }
        expected = {n for n, k in kinds.items() if k == "numeric"}
        if set(numeric) != expected or set(categorical) != set(kinds) - expected:
            raise ProfileError(
                "profile.numeric and profile.categorical must describe exactly the columns "
                "of profile.kinds; the profile is corrupt, fit it again."
            )
        curve: list[tuple[int, float]] = []
        for point in f.items("duplicate_curve"):
            if not (isinstance(point, list | tuple) and len(point) == 2):
                raise ProfileError(f"profile.duplicate_curve has a bad point {point!r}.")
            pf = Fields({"m": point[0], "s": point[1]}, "profile.duplicate_curve[]")
            curve.append((pf.integer("m"), pf.number("s")))
        label_f = f.opt_obj("label")
        required = f.texts("required")
        if not set(required) <= set(kinds):
            raise ProfileError("profile.required names columns missing from profile.kinds.")
        return cls(
            n_rows=f.integer("n_rows"),
            kinds=kinds,
            required=required,
            numeric=numeric,
            categorical=categorical,
            duplicate_curve=tuple(curve),
            label=None if label_f is None else LabelQuality.from_json(label_f),
            range_margin_iqr=f.number("range_margin_iqr"),
            outlier_z=f.number("outlier_z"),
        )
