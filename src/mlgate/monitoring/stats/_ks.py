"""Two-sample Kolmogorov-Smirnov p-values from (D, m, n), as scipy's ``method="auto"`` gives them.

Why not call :func:`scipy.stats.ks_2samp`: it sorts both samples again and evaluates both
ECDFs at every point, which at a million rows costs as much as all the other statistics
together; and a reference profile has no sample left to give it. The drift code already
has the statistic from its own ECDFs, so this module only turns ``(D, m, n)`` into the
p-value scipy would report for the same samples:

- ``max(m, n) <= 10,000`` (scipy's ``MAX_AUTO_N``): the exact null distribution. ``D`` is
  first rounded to the lattice ``h / lcm(m, n)`` that it must lie on, as scipy does. Then
  ``P(D >= h / lcm)`` is the share of monotone lattice paths from (0, 0) to (m, n) that
  leave the band ``|x/m - y/n| < h / lcm`` (Hodges 1958, "The significance probability of
  the Smirnov two-sample test", Ark. Mat. 3). For ``m == n`` the reflection principle gives
  a closed alternating series (Gnedenko & Korolyuk 1951). For ``m != n`` scipy's compiled
  path counter (Viehmann 2021, arXiv:2102.08037) is used when present, else
  :func:`_sf_band_paths`, a numpy count of the paths that have left the band, kept in log
  space because those counts span more than the float range on one lattice column.
- larger samples: Smirnov's limit as scipy applies it, the one-sample distribution
  ``kstwo`` at ``n_eff = round(m n / (m + n))`` (Simard & L'Ecuyer 2011).

Where an exact computation fails (a non-finite result or one outside [0, 1]) scipy falls
back to the asymptotic form with a warning; this module does the same, silently, and says
so in the returned method name.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from scipy import special

from mlgate.monitoring.stats._pelz_good import pelz_good_sf

__all__ = ["EXACT_MAX_N", "KSMethod", "asymptotic_sf", "ks_p_value", "smirnov_sf"]

EXACT_MAX_N = 10_000
"""Largest sample size for which the exact distribution is used (scipy's ``MAX_AUTO_N``)."""

KSMethod = Literal["exact", "asymp"]

_PathCounter = Callable[[int, int, int, int], float]
FloatArray = NDArray[np.float64]


# scipy.stats takes half a second to import, so it is imported on first use only: for the
# exact regime's compiled path counter and the rare kstwo branches _pelz_good does not cover.
@functools.cache
def _compiled_counter() -> _PathCounter | None:
    # scipy's pythran-compiled counter is private, so its absence (a future scipy that moves
    # it) must cost speed, never correctness: the numpy counter below gives the same numbers.
    try:
        from scipy.stats._stats_pythran import _compute_outer_prob_inside_method
    except ImportError:  # pragma: no cover - depends on the installed scipy
        return None
    counter: _PathCounter = _compute_outer_prob_inside_method
    return counter


def __getattr__(name: str) -> _PathCounter | None:
    # ``_COMPILED_COUNTER``, resolved when first asked for rather than at import.
    if name == "_COMPILED_COUNTER":
        return _compiled_counter()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _kstwo_sf(d: float, n: int) -> float:
    """``scipy.stats.kstwo.sf(d, n)``, by the Pelz-Good series where scipy itself uses it."""
    p = pelz_good_sf(n, d)
    if p is None:
        from scipy.stats import distributions

        p = float(distributions.kstwo.sf(d, n))
    return p


def ks_p_value(statistic: float, n_ref: int, n_cur: int) -> tuple[float, float, KSMethod]:
    """Return ``(statistic, p_value, method)`` for a two-sided two-sample KS test.

    ``statistic`` comes back rounded to its lattice in the exact regime, as scipy reports
    it. Both sizes must be positive.
    """
    if n_ref <= 0 or n_cur <= 0:
        raise ValueError(f"sample sizes must be positive, got {n_ref} and {n_cur}")
    d = min(max(float(statistic), 0.0), 1.0)
    if max(n_ref, n_cur) <= EXACT_MAX_N:
        g = math.gcd(n_ref, n_cur)
        lcm = (n_ref // g) * n_cur
        h = int(np.round(d * lcm))
        d = h / lcm
        if h == 0:
            return d, 1.0, "exact"
        p = _exact_sf(n_ref, n_cur, g, h)
        if math.isfinite(p) and 0.0 <= p <= 1.0:
            return d, p, "exact"
    return d, asymptotic_sf(d, n_ref, n_cur), "asymp"


def asymptotic_sf(statistic: float, n_ref: int, n_cur: int) -> float:
    """Smirnov's large-sample p-value: ``kstwo.sf(D, round(m n / (m + n)))``, as scipy gives it.

    For ``2.2 <= n_eff D^2 < 370`` scipy evaluates the exact one-sided Smirnov tail, a sum
    of ~n terms that takes most of a second at a million rows; there this module sums the
    same series in numpy (:func:`smirnov_sf`), which agrees to ~1e-13.
    """
    big, small = max(n_ref, n_cur), min(n_ref, n_cur)
    n_eff = int(np.round(big * small / (big + small)))
    d = statistic
    t = n_eff * d
    if n_eff > _FAST_SMIRNOV_MIN_N and 0.0 < d < 1.0 and 1.0 < t < n_eff - 1:
        if d >= 0.5 or 2.2 <= t * d < 370.0:
            return min(max(2.0 * smirnov_sf(n_eff, d), 0.0), 1.0)
        if t * d >= 370.0:
            return 0.0
    p = _kstwo_sf(d, n_eff)
    return min(max(p, 0.0), 1.0)


_FAST_SMIRNOV_MIN_N = 10_000
_STIRLING = (1.0 / 12, 1.0 / 360, 1.0 / 1260, 1.0 / 1680, 1.0 / 1188)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _stirling_error(k: FloatArray) -> FloatArray:
    """``log(k!) - log(sqrt(2 pi k) (k/e)^k)``, accurate for every k >= 1 (Loader 2000)."""
    out = np.empty_like(k)
    big = k > 15
    kb = k[big]
    k2 = kb * kb
    s0, s1, s2, s3, s4 = _STIRLING
    out[big] = (s0 - (s1 - (s2 - (s3 - s4 / k2) / k2) / k2) / k2) / kb
    ks = k[~big]
    out[~big] = special.gammaln(ks + 1.0) - (ks + 0.5) * np.log(ks) + ks - _LOG_SQRT_2PI
    return out


def _deviance(x: FloatArray, mean: FloatArray) -> FloatArray:
    """``x log(x / mean) + mean - x`` without cancellation when x is near mean (Loader 2000)."""
    out = np.empty_like(x)
    diff = x - mean
    near = np.abs(diff) < 0.1 * (x + mean)
    xn, dn = x[near], diff[near]
    ratio = dn / (xn + mean[near])
    total = dn * ratio
    odd = 2.0 * xn * ratio
    r2 = ratio * ratio
    for j in range(1, 60):  # |ratio| < 1/19, so each round gains over 2.5 digits
        odd = odd * r2
        nxt = total + odd / (2 * j + 1)
        if np.array_equal(nxt, total):
            break
        total = nxt
    out[near] = total
    xf, mf = x[~near], mean[~near]
    out[~near] = xf * np.log(xf / mf) + mf - xf
    return out


def _log_terms(n: int, e: float, v: FloatArray) -> FloatArray:
    """Logs of the Birnbaum-Tingey terms ``C(n,v) e (e + v/n)^(v-1) (1 - e - v/n)^(n-v)``, v >= 1.

    Each is ``e / p`` times the binomial probability ``P(Bin(n, p) = v)`` at ``p = e + v/n``,
    computed by Loader's saddle-point form, which keeps ~14 digits where the plain
    ``lgamma`` form loses five to cancellation at a million.
    """
    p = e + v / n
    q = (n - v) / n - e
    rest = n - v
    log_binom_pmf = (
        _stirling_error(np.array([float(n)]))[0]
        - _stirling_error(v)
        - _stirling_error(rest)
        - _deviance(v, n * p)
        - _deviance(rest, n * q)
        + 0.5 * np.log(n / (2.0 * math.pi * v * rest))
    )
    out: FloatArray = math.log(e) - np.log(p) + log_binom_pmf
    return out


def smirnov_sf(n: int, e: float) -> float:
    """One-sided ``P(D+_n >= e)`` by the Birnbaum-Tingey (1951) series, summed in numpy.

    The terms are log-concave in v, so after a coarse scan only the run within e^-60 of the
    largest term is summed: what is left out is below 1e-20 of the total.
    """
    last = math.floor(n * (1.0 - e))
    if (n - last) / n - e <= 0:
        last -= 1  # that term has (1 - e - v/n) = 0 and contributes nothing
    first_term = (1.0 - e) ** n  # v = 0
    if last < 1:
        return first_term
    step = max(1, last // 1024)
    coarse = np.unique(np.append(np.arange(1, last + 1, step), last)).astype(np.float64)
    coarse_logs = _log_terms(n, e, coarse)
    top = float(np.max(coarse_logs))
    live = coarse[coarse_logs > top - 60.0]
    lo, hi = max(1, int(live[0]) - step), min(last, int(live[-1]) + step)
    v = np.arange(lo, hi + 1, dtype=np.float64)
    return first_term + math.exp(top) * float(np.sum(np.exp(_log_terms(n, e, v) - top)))


def _exact_sf(m: int, n: int, g: int, h: int) -> float:
    if m == n:
        return _sf_equal(n, h)
    counter = _compiled_counter()
    if counter is not None:
        with np.errstate(invalid="raise", over="raise"):
            try:
                return float(counter(m, n, g, h))
            except FloatingPointError:  # pragma: no cover - scipy's own fallback case
                return math.nan
    return _sf_band_paths(m, n, h)


def _sf_equal(n: int, h: int) -> float:
    """``P(D_{n,n} >= h/n)`` = 2 sum_k (-1)^(k+1) C(2n, n-kh) / C(2n, n) (reflection principle)."""
    # C(2n, n-t) / C(2n, n) = prod_{j<t} (n-j)/(n+1+j); the running product is exact enough
    # (relative error ~ t * 1e-16) and simply underflows to 0 far in the tail.
    j = np.arange(n, dtype=np.float64)
    ratios = np.cumprod((n - j) / (n + 1.0 + j))
    k = np.arange(1, n // h + 1)
    terms = ratios[k * h - 1]
    signs = np.where(k % 2 == 1, 1.0, -1.0)
    # Rounding can push a certain event (h = 1) a few ulps past 1.
    return min(float(2.0 * np.sum(signs * terms)), 1.0)


def _log_binom(top: int, k: int) -> float:
    return math.lgamma(top + 1) - math.lgamma(k + 1) - math.lgamma(top - k + 1)


def _sf_band_paths(n1: int, n2: int, h: int) -> float:
    """Share of lattice paths (0,0) -> (a,b) that touch ``|b' x - a' y| >= h`` (a' b' reduced).

    Column by column over x (the smaller sample), ``C(x, y)`` counts the paths to (x, y) that
    have already left the band. Outside the band every path has left, so ``C = binom(x+y, x)``;
    inside, ``C(x, y) = C(x-1, y) + C(x, y-1)``, which unrolls to one cumulative sum per column
    that starts from the point just below the band. Counts below and above the band differ by
    hundreds of orders of magnitude on the same column, so they are kept as logarithms.
    """
    a, b = min(n1, n2), max(n1, n2)
    g = math.gcd(a, b)
    a_red, b_red = a // g, b // g
    x = np.arange(a + 1, dtype=np.int64)
    # Inside the band: b_red * x - h < a_red * y < b_red * x + h.
    lo = np.maximum((b_red * x - h) // a_red + 1, 0)
    hi = np.minimum(-((-(b_red * x + h)) // a_red) - 1, b)
    if bool(np.any(hi < lo)):
        return 1.0  # some column has no point inside the band: every path leaves it
    log_left = np.full(int(hi[0] - lo[0]) + 1, -np.inf)  # column 0: no path has left yet
    for col in range(1, a + 1):
        low, high = int(lo[col]), int(hi[col])
        prev_low, prev_high = int(lo[col - 1]), int(hi[col - 1])
        below = _log_binom(col + low - 1, col) if low >= 1 else -math.inf
        carried = log_left[low - prev_low : min(high, prev_high) - prev_low + 1]
        start = max(prev_high + 1, low)
        ys = np.arange(start, high + 1, dtype=np.float64)
        # Points of the previous column above its band: every path to them has left.
        above = special.gammaln(col + ys) - special.gammaln(col) - special.gammaln(ys + 1.0)
        terms = np.concatenate(([below], carried, above))
        log_left = np.logaddexp.accumulate(terms)[1:]
    return math.exp(float(log_left[-1]) - _log_binom(a + b, a))
