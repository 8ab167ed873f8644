"""Two independent Beta posteriors: P(X > Y) and E[(Y - X)+], deterministically.

``X ~ Beta(a_x, b_x)`` is the treatment's conversion rate, ``Y ~ Beta(a_y, b_y)`` the
control's. With integer ``a_x`` (a Beta(1, 1) prior plus whole success counts) the chance
to beat has a closed form (Miller 2015, "Formulas for Bayesian A/B testing", after
Cook 2005)::

    P(X > Y) = sum_{i=0}^{a_x - 1} B(a_y + i, b_y + b_x) / ((b_x + i) B(1 + i, b_x) B(a_y, b_y))

computed in log space. It has ``a_x`` terms, so the side with fewer successes is summed
(``P(X > Y) = 1 - P(Y > X)``; ties have probability 0) and above :data:`MAX_TERMS` terms
the one-dimensional integral is taken instead.

The integrals run over the narrower posterior's density, on a Simpson grid of
:data:`GRID_POINTS` points spanning 12 of its standard deviations either side (clipped to
[0, 1]): the other posterior's CDF, and its partial mean, are smooth on that scale, which
a grid over the wider one would not see::

    P(X > Y)    = int f_Y(y) (1 - F_X(y)) dy
    E[(Y - X)+] = int f_X(x) (m_Y (1 - I_x(a_y + 1, b_y)) - x (1 - I_x(a_y, b_y))) dx

using ``E[Y 1{Y > x}] = m_Y (1 - I_x(a_y + 1, b_y))`` for a Beta.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import integrate, special, stats

__all__ = ["GRID_POINTS", "MAX_TERMS", "beta_chance_to_beat", "beta_expected_loss"]

MAX_TERMS = 100_000
GRID_POINTS = 4_001  # odd, for Simpson's rule
_SPAN_SD = 12.0

FloatArray = NDArray[np.float64]


def _sd(a: float, b: float) -> float:
    return math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1.0)))


def _grid(a: float, b: float) -> FloatArray:
    mean, sd = a / (a + b), _sd(a, b)
    lo, hi = max(0.0, mean - _SPAN_SD * sd), min(1.0, mean + _SPAN_SD * sd)
    return np.linspace(lo, hi, GRID_POINTS)


def _closed_form(ax: int, bx: float, ay: float, by: float) -> float:
    i = np.arange(ax, dtype=np.float64)
    log_terms = (
        special.betaln(ay + i, by + bx)
        - np.log(bx + i)
        - special.betaln(1.0 + i, bx)
        - special.betaln(ay, by)
    )
    return float(np.exp(special.logsumexp(log_terms)))


def _quadrature_chance(ax: float, bx: float, ay: float, by: float) -> float:
    # Integrate over the narrower posterior's density.
    if _sd(ax, bx) < _sd(ay, by):
        return 1.0 - _quadrature_chance(ay, by, ax, bx)
    y = _grid(ay, by)
    integrand = stats.beta.pdf(y, ay, by) * stats.beta.sf(y, ax, bx)
    return float(integrate.simpson(integrand, x=y))


def beta_chance_to_beat(
    ax: float, bx: float, ay: float, by: float, *, max_terms: int = MAX_TERMS
) -> float:
    """``P(X > Y)`` for independent ``X ~ Beta(ax, bx)``, ``Y ~ Beta(ay, by)``."""
    if ax == int(ax) and ay == int(ay) and min(ax, ay) <= max_terms:
        if ax <= ay:
            p = _closed_form(int(ax), bx, ay, by)
        else:
            p = 1.0 - _closed_form(int(ay), by, ax, bx)
    else:
        p = _quadrature_chance(ax, bx, ay, by)
    return min(1.0, max(0.0, p))


def beta_expected_loss(ax: float, bx: float, ay: float, by: float) -> float:
    """``E[max(Y - X, 0)]``: what choosing X costs, on average, when Y is better."""
    if _sd(ax, bx) <= _sd(ay, by):
        x = _grid(ax, bx)
        mean_y = ay / (ay + by)
        partial = mean_y * special.betaincc(ay + 1.0, by, x) - x * special.betaincc(ay, by, x)
        integrand = stats.beta.pdf(x, ax, bx) * partial
        grid = x
    else:
        # E[(Y - X)+] = int f_Y(y) E[(y - X)+] dy, E[(y - X)+] = y I_y(ax, bx) - m_X I_y(ax + 1, bx)
        y = _grid(ay, by)
        mean_x = ax / (ax + bx)
        partial = y * special.betainc(ax, bx, y) - mean_x * special.betainc(ax + 1.0, bx, y)
        integrand = stats.beta.pdf(y, ay, by) * partial
        grid = y
    return max(0.0, float(integrate.simpson(integrand, x=grid)))
