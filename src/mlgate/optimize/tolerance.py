"""How far a variant may stray from its parent: one bound per statistic, per kind of variant.

A plain conversion should change nothing but float rounding, so it is held to tight
prediction and probability bounds (:data:`EXACT`); quantized and float16 variants trade a
little accuracy for speed and are held to agreement and metric bounds instead (the
:class:`Tolerance` defaults). :meth:`Tolerances.with_bounds` is how a user loosens or
tightens the reduced kinds' bounds without loosening the exact kind's.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

from mlgate.errors import OptimizeError

__all__ = ["EXACT", "Tolerance", "Tolerances"]

_BOUNDS = (
    "max_probability_diff",
    "min_label_agreement",
    "max_accuracy_drop",
    "max_scaled_prediction_diff",
    "max_rmse_increase",
)


@dataclass(frozen=True)
class Tolerance:
    """Bounds a variant must meet; None leaves that bound unchecked.

    The defaults are those for reduced-precision variants (int8, float16); see
    :data:`EXACT` for the plain conversion's.
    """

    max_probability_diff: float | None = 0.05
    min_label_agreement: float | None = 0.99
    max_accuracy_drop: float | None = 0.01
    max_scaled_prediction_diff: float | None = 0.05
    # Relative: 0.01 allows the variant's RMSE to be 1% above the parent's (see RMSE_FLOOR).
    max_rmse_increase: float | None = 0.01

    def __post_init__(self) -> None:
        for name in _BOUNDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value) or value < 0:
                raise OptimizeError(f"tolerance {name} must be a finite number >= 0, got {value}")
        for name in ("max_probability_diff", "min_label_agreement"):
            value = getattr(self, name)
            if value is not None and value > 1:
                raise OptimizeError(f"tolerance {name} is a share, between 0 and 1; got {value}")

    def to_json(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in _BOUNDS}


# The plain conversion: answers equal up to float32 rounding. Judged by the prediction and
# probability bounds, not by RMSE (a relative RMSE change says nothing about rounding).
EXACT = Tolerance(
    max_probability_diff=1e-4,
    min_label_agreement=0.999,
    max_scaled_prediction_diff=1e-4,
    max_rmse_increase=None,
)


@dataclass(frozen=True)
class Tolerances:
    """``exact`` for the plain ONNX conversion, ``reduced`` for int8 and float16 variants."""

    exact: Tolerance = field(default_factory=lambda: EXACT)
    reduced: Tolerance = field(default_factory=Tolerance)

    def for_kind(self, kind: str) -> Tolerance:
        return self.exact if kind == "onnx" else self.reduced

    @classmethod
    def with_bounds(
        cls,
        *,
        max_probability_diff: float | None = None,
        min_label_agreement: float | None = None,
        max_accuracy_drop: float | None = None,
        max_scaled_prediction_diff: float | None = None,
        max_rmse_increase: float | None = None,
    ) -> Tolerances:
        """The defaults with the bounds given (None: keep the default) set for reduced kinds.

        The exact kind keeps its own, tighter bounds, except where a given bound is
        stricter still: then it applies to the exact kind too. A bound the exact kind
        leaves unchecked on purpose (RMSE) stays unchecked.
        """
        given = {
            "max_probability_diff": max_probability_diff,
            "min_label_agreement": min_label_agreement,
            "max_accuracy_drop": max_accuracy_drop,
            "max_scaled_prediction_diff": max_scaled_prediction_diff,
            "max_rmse_increase": max_rmse_increase,
        }
        chosen = {k: v for k, v in given.items() if v is not None}
        exact: dict[str, float] = {}
        for name, value in chosen.items():
            own = getattr(EXACT, name)
            if own is None:
                continue
            stricter = value > own if name == "min_label_agreement" else value < own
            if stricter:
                exact[name] = value
        return cls(
            exact=dataclasses.replace(EXACT, **exact),
            reduced=dataclasses.replace(Tolerance(), **chosen),
        )
