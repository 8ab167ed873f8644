"""The scipy.stats functions the drift code computes without importing scipy.stats: to the bit.

``_pelz_good`` and ``_binned``'s chi-square helpers exist only to save scipy.stats' import
time, so they must give scipy's numbers exactly, not approximately.
"""

from __future__ import annotations

import math
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from mlgate.monitoring.stats._binned import _chi2_ppf, _chi2_sf
from mlgate.monitoring.stats._ks import asymptotic_sf
from mlgate.monitoring.stats._pelz_good import pelz_good_sf


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


@settings(max_examples=400, deadline=None)
@given(st.integers(141, 5_000_000), st.floats(0.0, 1.0), st.floats(0.0, 3.0))
def test_pelz_good_is_scipys_kstwo_sf_to_the_bit(n: int, share: float, scaled: float) -> None:
    # Draw D both on the scale of 1/sqrt(n), where drift-free statistics live, and anywhere.
    for d in (scaled / math.sqrt(n), share):
        ours = pelz_good_sf(n, d)
        if ours is not None:
            assert ours == float(sps.kstwo.sf(d, n)), (n, d)


def test_pelz_good_covers_the_large_window_drift_free_case() -> None:
    # A million rows per window, D of a drift-free feature: the branch that used to import scipy.
    n_eff, d = 500_000, 0.0011
    assert pelz_good_sf(n_eff, d) is not None
    assert asymptotic_sf(d, 1_000_000, 1_000_000) == float(sps.kstwo.sf(d, n_eff))
    # Outside scipy's Pelz-Good branch the answer comes from scipy itself.
    assert pelz_good_sf(100, 0.1) is None and pelz_good_sf(500_000, 0.6) is None
    assert pelz_good_sf(50_000, 0.0005) is None  # scipy's Durbin-matrix branch


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5_000), st.floats(0.0, 1e6))
def test_chi2_sf_is_scipys_to_the_bit(dof: int, statistic: float) -> None:
    assert same(_chi2_sf(statistic, dof), float(sps.chi2.sf(statistic, dof)))


def test_chi2_edges_and_ppf_are_scipys_to_the_bit() -> None:
    for dof in (1, 2, 9, 49, 1_000):
        for statistic in (0.0, math.inf, math.nan, 1e-300, float(dof)):
            assert same(_chi2_sf(statistic, dof), float(sps.chi2.sf(statistic, dof)))
        for q in (0.0, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0):
            assert _chi2_ppf(q, dof) == float(sps.chi2.ppf(q, dof))


def test_drift_does_not_import_scipy_stats() -> None:
    code = (
        "import sys, numpy as np\n"
        "from mlgate.monitoring.drift import compare\n"
        "rng = np.random.default_rng(0)\n"
        "ref = {'x': rng.normal(size=300_000), 'c': np.array(['a', 'b'] * 150_000, dtype=object)}\n"
        "cur = {'x': rng.normal(size=300_000), 'c': np.array(['a', 'b'] * 150_000, dtype=object)}\n"
        "compare(ref, cur)\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
