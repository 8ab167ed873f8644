"""``scipy.stats.kstwo.sf`` where scipy uses the Pelz-Good series: large n, D well inside.

The two-sample KS p-value at large sizes is ``kstwo.sf(D, n_eff)`` (see :mod:`._ks`). For a
drift-free feature at a million rows ``n D^2`` is small, and there scipy sums the Pelz-Good
(1976) asymptotic series of the Kolmogorov distribution ("Approximating the lower tail-areas
of the Kolmogorov-Smirnov one-sample statistic", J. R. Stat. Soc. B 38(2)) in a few lines of
numpy. Importing ``scipy.stats`` for them costs half a second, more than the whole drift
computation of a small window, so this module performs the same operations, on the same
numpy types (scipy evaluates them on 0-d arrays) and in the same order, as scipy 1.17's
``_kolmogn_PelzGood``: the p-values agree to the bit (``tests/monitoring/test_ks_pelz_good.py``
sweeps them). Outside the branch scipy sends to this series, :func:`pelz_good_sf` says so by
returning None and the caller asks scipy.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["pelz_good_sf"]

_SQRT2PI = np.sqrt(2 * np.pi)
_MIN_LOG = -708
_SQRT3 = np.sqrt(3)
_PI_SQUARED = np.pi**2
_PI_FOUR = np.pi**4
_PI_SIX = np.pi**6


def pelz_good_sf(n: int, d: float) -> float | None:
    """``kstwo.sf(d, n)`` when scipy computes it by the Pelz-Good series, else None.

    scipy's branch (``_kolmogn`` with ``cdf=False``): ``n > 140``, ``1 < n d < n - 1``,
    ``d < 0.5``, ``n d^2 < 2.2``, and not ``n <= 100,000 and n d^1.5 <= 1.4`` (where it uses
    the Durbin matrix instead).
    """
    x = np.asarray(d, dtype=np.float64)  # a 0-d array, as scipy's nditer hands it over
    if not (0.0 < d < 0.5) or n <= 140:
        return None
    t = n * x
    if t <= 1.0 or t >= n - 1 or t * x >= 2.2:
        return None
    if n <= 100000 and n * x**1.5 <= 1.4:
        return None
    cdf = _pelz_good_cdf(n, x)
    return float(np.clip(1.0 - cdf, 0.0, 1.0))


def _pelz_good_cdf(n: int, x: NDArray[np.float64]) -> float:
    """``P(D_n <= x)`` by the Pelz-Good series; scipy's ``_kolmogn_PelzGood(n, x, cdf=True)``."""
    z = np.sqrt(n) * x
    zsquared, zthree, zfour, zsix = z**2, z**3, z**4, z**6

    qlog = -_PI_SQUARED / 8 / zsquared
    if qlog < _MIN_LOG:  # z ~ 0.0417: the CDF is 0 to double precision
        return 0.0

    q = np.exp(qlog)

    # Coefficients of the terms of the sums for K1, K2 and K3.
    k1a = -zsquared
    k1b = _PI_SQUARED / 4

    k2a = 6 * zsix + 2 * zfour
    k2b = (2 * zfour - 5 * zsquared) * _PI_SQUARED / 4
    k2c = _PI_FOUR * (1 - 2 * zsquared) / 16

    k3d = _PI_SIX * (5 - 30 * zsquared) / 64
    k3c = _PI_FOUR * (-60 * zsquared + 212 * zfour) / 16
    k3b = _PI_SQUARED * (135 * zfour - 96 * zsix) / 4
    k3a = -30 * zsix - 90 * z**8

    k0to3 = np.zeros(4)
    # Horner's scheme for sum c_i q^(i^2), a sum over the odd integers.
    maxk = int(np.ceil(16 * z / np.pi))
    for k in range(maxk, 0, -1):
        m = 2 * k - 1
        msquared, mfour, msix = m**2, m**4, m**6
        qpower = np.power(q, 8 * k)
        coeffs = np.array(
            [
                1.0,
                k1a + k1b * msquared,
                k2a + k2b * msquared + k2c * mfour,
                k3a + k3b * msquared + k3c * mfour + k3d * msix,
            ]
        )
        k0to3 *= qpower
        k0to3 += coeffs
    k0to3 *= q
    k0to3 *= _SQRT2PI
    k0to3 /= np.array([z, 6 * zfour, 72 * z**7, 6480 * z**10])

    # The other sum, over all integers k, for K2 and K3 (no cancellation to fear).
    q = np.exp(-_PI_SQUARED / 2 / zsquared)
    ks = np.arange(maxk, 0, -1)
    ksquared = ks**2
    sqrt3z = _SQRT3 * z
    kspi = np.pi * ks
    qpwers = q**ksquared
    k2extra = np.sum(ksquared * qpwers)
    k2extra *= _PI_SQUARED * _SQRT2PI / (-36 * zthree)
    k0to3[2] += k2extra
    k3extra = np.sum((sqrt3z + kspi) * (sqrt3z - kspi) * ksquared * qpwers)
    k3extra *= _PI_SQUARED * _SQRT2PI / (216 * zsix)
    k0to3[3] += k3extra
    powers_of_n = np.power(n * 1.0, np.arange(len(k0to3)) / 2.0)
    k0to3 /= powers_of_n
    return float(sum(k0to3))
