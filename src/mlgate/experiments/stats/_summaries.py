"""A variant's sufficient statistics, checked once, and the moments every test reads from them.

An experiment is analysed from running sums, never from raw rows, so that the serving side
only has to keep a few counters per variant. Each summary validates itself when built, and
its error says which field is wrong and what it should hold: a summary that got past the
constructor can be analysed.

- :class:`MeanSummary` ``(n, sum, sum_squares)``: a per-unit numeric metric (revenue,
  latency). The variance is ``(sum_squares - sum**2 / n) / (n - 1)``; a sum of squares
  smaller than ``sum**2 / n`` beyond rounding is an input error (it usually means the squared
  sum or a variance was sent instead). The subtraction loses ``(mean / sd)**2`` ulps, so a
  metric whose mean is 1e6 times its spread should be sent centred.
- :class:`ProportionSummary` ``(n, successes)``: a per-unit 0/1 metric (converted, errored).
  Its per-unit variance is the Bernoulli ``p (1 - p)``, ddof 0, as the Wald interval uses.
- :class:`RatioSummary`: a ratio of two per-unit sums (clicks per session where the unit is
  a user). Units, not sessions, are independent, so the variance comes from the delta method
  (Deng, Knoblich & Lu 2018, "Applying the Delta Method in Metric Analytics", KDD):
  ``Var(X/Y) ~ (s_x^2 - 2 R s_xy + R^2 s_y^2) / (n mu_y^2)`` with ``R = sum_x / sum_y``.
- :class:`CovariateSummary`: a pre-period covariate for CUPED (see :mod:`._cuped`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from mlgate.errors import ExperimentInputError

__all__ = [
    "CovariateSummary",
    "MeanSummary",
    "Moments",
    "ProportionSummary",
    "RatioSummary",
    "Summary",
    "check_count",
    "check_number",
    "centred_sum_squares",
]

# Rounding in ``sum_squares - sum**2 / n`` is ~1e-16 of sum_squares; a deficit larger than
# this share of it is not rounding but a wrong input.
_ROUNDING = 1e-9


def check_number(name: str, value: object) -> float:
    """A finite real number, or an input error that names the field."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExperimentInputError(
            f"{name} must be a number, got {value!r} ({type(value).__name__}); "
            "send a JSON number (true/false and strings are not numbers)"
        )
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond any float (10**400)
        number = math.inf
    if not math.isfinite(number):
        raise ExperimentInputError(
            f"{name} is {value!r}; send a finite number (NaN and infinity cannot be analysed)"
        )
    return number


def check_count(name: str, value: object) -> int:
    """A non-negative whole number (3407 or 3407.0), or an input error that names the field."""
    number = check_number(name, value)
    if number != math.floor(number):
        raise ExperimentInputError(f"{name} must be a whole number of units, got {value!r}")
    if number < 0:
        raise ExperimentInputError(f"{name} is {value!r}; a count cannot be negative")
    return int(number)


def centred_sum_squares(name: str, n: int, total: float, sum_squares: float) -> float:
    """``sum((x - mean)**2)`` from ``(n, sum, sum of squares)``, refusing a negative result."""
    if n == 0:
        if total != 0 or sum_squares != 0:
            raise ExperimentInputError(
                f"{name}: n is 0 but the sums are not; send the sums of the n units counted"
            )
        return 0.0
    centred = sum_squares - total * total / n
    if centred < -_ROUNDING * max(abs(sum_squares), 1.0):
        raise ExperimentInputError(
            f"{name}: sum_squares={sum_squares!r} is smaller than sum**2/n={total * total / n!r}, "
            "which would make the variance negative; sum_squares must be the sum of each "
            "unit's squared value (not the squared sum, nor a variance)"
        )
    return max(centred, 0.0)


@dataclass(frozen=True, slots=True)
class Moments:
    """A variant's estimate, its per-unit variance and its unit count: all a test needs.

    ``unit_variance`` is the variance of one unit's (linearised) value, so the estimate's
    own variance is ``unit_variance / n`` (:attr:`variance`).
    """

    n: int
    mean: float
    unit_variance: float

    @property
    def variance(self) -> float:
        """Variance of the estimate (the squared standard error)."""
        return self.unit_variance / self.n if self.n else math.inf


@dataclass(frozen=True, slots=True)
class MeanSummary:
    """``n`` units, the sum of their values and the sum of their squared values."""

    n: int
    sum: float
    sum_squares: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_count("n", self.n))
        object.__setattr__(self, "sum", check_number("sum", self.sum))
        object.__setattr__(self, "sum_squares", check_number("sum_squares", self.sum_squares))
        centred_sum_squares("sum_squares", self.n, self.sum, self.sum_squares)

    def moments(self) -> Moments:
        if self.n == 0:
            return Moments(0, math.nan, math.nan)
        centred = centred_sum_squares("sum_squares", self.n, self.sum, self.sum_squares)
        variance = centred / (self.n - 1) if self.n > 1 else math.nan
        return Moments(self.n, self.sum / self.n, variance)


@dataclass(frozen=True, slots=True)
class ProportionSummary:
    """``n`` units of which ``successes`` had the event (``"sum"`` in the JSON document)."""

    n: int
    successes: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_count("n", self.n))
        object.__setattr__(self, "successes", check_count("sum", self.successes))
        if self.successes > self.n:
            raise ExperimentInputError(
                f"sum (successes) is {self.successes} but n is {self.n}; a proportion's sum "
                "counts units with the event, so it cannot exceed n"
            )

    def moments(self) -> Moments:
        if self.n == 0:
            return Moments(0, math.nan, math.nan)
        p = self.successes / self.n
        return Moments(self.n, p, p * (1.0 - p))


@dataclass(frozen=True, slots=True)
class RatioSummary:
    """Per-unit numerator and denominator sums, their squares and their cross products."""

    n: int
    numerator_sum: float
    numerator_sum_squares: float
    denominator_sum: float
    denominator_sum_squares: float
    sum_products: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "n", check_count("n", self.n))
        for field in (
            "numerator_sum",
            "numerator_sum_squares",
            "denominator_sum",
            "denominator_sum_squares",
            "sum_products",
        ):
            object.__setattr__(self, field, check_number(field, getattr(self, field)))
        sxx, syy = self._centred()
        sxy = self.sum_products - self.numerator_sum * self.denominator_sum / max(self.n, 1)
        _check_cauchy_schwarz("sum_products", sxy, sxx, syy)

    def _centred(self) -> tuple[float, float]:
        sxx = centred_sum_squares(
            "numerator.sum_squares", self.n, self.numerator_sum, self.numerator_sum_squares
        )
        syy = centred_sum_squares(
            "denominator.sum_squares", self.n, self.denominator_sum, self.denominator_sum_squares
        )
        return sxx, syy

    def moments(self) -> Moments:
        """The ratio ``sum_x / sum_y`` and its delta-method per-unit variance.

        NaN moments (not enough data) when there are fewer than two units or the
        denominator sums to zero, where the ratio is undefined.
        """
        if self.n < 2 or self.denominator_sum == 0:
            return Moments(self.n, math.nan, math.nan)
        n = self.n
        sxx, syy = self._centred()
        sxy = self.sum_products - self.numerator_sum * self.denominator_sum / n
        ratio = self.numerator_sum / self.denominator_sum
        mean_y = self.denominator_sum / n
        linearised = (sxx - 2.0 * ratio * sxy + ratio * ratio * syy) / (n - 1)
        return Moments(n, ratio, max(linearised, 0.0) / (mean_y * mean_y))


@dataclass(frozen=True, slots=True)
class CovariateSummary:
    """A pre-period covariate x per variant: ``sum x``, ``sum x^2`` and ``sum x*y``.

    ``y`` is the variant's metric, so ``sum_products`` pairs each unit's covariate with its
    own metric value (for a proportion, the sum of x over units that converted).
    """

    sum: float
    sum_squares: float
    sum_products: float

    def __post_init__(self) -> None:
        for field in ("sum", "sum_squares", "sum_products"):
            object.__setattr__(
                self, field, check_number(f"covariate.{field}", getattr(self, field))
            )


def _check_cauchy_schwarz(name: str, sxy: float, sxx: float, syy: float) -> None:
    # |cov(x, y)| <= sd(x) sd(y): a larger cross product cannot come from real data.
    bound = math.sqrt(sxx * syy)
    if abs(sxy) > bound * (1.0 + 1e-7) + _ROUNDING * max(abs(sxy), 1.0):
        raise ExperimentInputError(
            f"{name}: the centred cross product {sxy!r} exceeds what the two sums of squares "
            f"allow ({bound!r}); send sum(x*y) over units, with x and y from the same unit"
        )


def check_covariate(
    n: int, metric_sum: float, metric_sum_squares: float, c: CovariateSummary
) -> None:
    """Reject a covariate whose cross product no pair of real columns could produce."""
    sxx = centred_sum_squares("covariate.sum_squares", n, c.sum, c.sum_squares)
    syy = centred_sum_squares("sum_squares", n, metric_sum, metric_sum_squares)
    sxy = c.sum_products - c.sum * metric_sum / n if n else 0.0
    _check_cauchy_schwarz("covariate.sum_products", sxy, sxx, syy)


Summary = MeanSummary | ProportionSummary | RatioSummary
