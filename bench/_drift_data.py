"""The drift benchmark's data: 20 numeric and 5 categorical features, seeded, in Parquet.

Each feature names its reference distribution and what changes in the current window.
``drifted`` is the truth the verdict table is scored against: a change big enough to
matter (at least ~0.2 reference standard deviations, or a visible share shift). One
numeric feature moves by 0.02 sigma on purpose: at a million rows every p-value calls it
drifted, and a useful verdict does not.

``null=True`` draws the current window from the reference's distributions (a fresh seed):
the false-alarm runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

__all__ = ["FEATURES", "Feature", "categorical_names", "numeric_names", "write_window"]

Draw = Callable[[np.random.Generator, int, bool], NDArray[np.float64] | NDArray[np.int64]]


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str  # "numeric" | "categorical"
    description: str
    drifted: bool
    draw: Draw | None = None  # numeric: (rng, n, current) -> values
    levels: int = 0  # categorical
    probs: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None  # (reference, current)
    missing: float = 0.0  # share of missing values, both windows


def _normal(mu: float, sigma: float, mu2: float, sigma2: float) -> Draw:
    return lambda rng, n, cur: rng.normal(mu2 if cur else mu, sigma2 if cur else sigma, n)


def _lognormal(mu: float, sigma: float, mu2: float, sigma2: float) -> Draw:
    return lambda rng, n, cur: rng.lognormal(mu2 if cur else mu, sigma2 if cur else sigma, n)


def _uniform(lo: float, hi: float, lo2: float, hi2: float) -> Draw:
    return lambda rng, n, cur: rng.uniform(lo2 if cur else lo, hi2 if cur else hi, n)


def _poisson(lam: float, lam2: float) -> Draw:
    return lambda rng, n, cur: rng.poisson(lam2 if cur else lam, n).astype(np.int64)


def _integers(lo: int, hi: int) -> Draw:
    return lambda rng, n, cur: rng.integers(lo, hi, n, dtype=np.int64)


def _binomial(k: int, p: float) -> Draw:
    return lambda rng, n, cur: rng.binomial(k, p, n).astype(np.int64)


def _exponential(scale: float, scale2: float) -> Draw:
    return lambda rng, n, cur: rng.exponential(scale2 if cur else scale, n)


def _student_t(df: float) -> Draw:
    return lambda rng, n, cur: rng.standard_t(df, n)


def _mixture(w: float, w2: float) -> Draw:
    def draw(rng: np.random.Generator, n: int, cur: bool) -> NDArray[np.float64]:
        second = rng.random(n) < (w2 if cur else w)
        return np.where(second, rng.normal(4.0, 1.0, n), rng.normal(0.0, 1.0, n))

    return draw


def _gamma(shape: float, scale: float) -> Draw:
    return lambda rng, n, cur: rng.gamma(shape, scale, n)


def _beta(a: float, b: float) -> Draw:
    return lambda rng, n, cur: rng.beta(a, b, n)


def _zipf(k: int, s: float) -> NDArray[np.float64]:
    w = 1.0 / np.arange(1, k + 1) ** s
    return np.asarray(w / w.sum(), dtype=np.float64)


def _uniform_probs(k: int) -> NDArray[np.float64]:
    return np.full(k, 1.0 / k)


def _reordered(p: NDArray[np.float64], head: int) -> NDArray[np.float64]:
    """The first ``head`` shares reversed: the most common category becomes a rare one."""
    q = p.copy()
    q[:head] = q[:head][::-1]
    return q


def _with_new(p: NDArray[np.float64], new: int, share: float) -> NDArray[np.float64]:
    """``p`` flattened halfway to uniform, plus ``new`` categories holding ``share``."""
    flat = 0.5 * p + 0.5 / p.size
    return np.concatenate([flat * (1.0 - share), np.full(new, share / new)])


def _geometric(k: int, r: float) -> NDArray[np.float64]:
    w = r ** np.arange(k)
    return np.asarray(w / w.sum(), dtype=np.float64)


_N, _C = "numeric", "categorical"
FEATURES: tuple[Feature, ...] = (
    Feature("n00_normal", _N, "N(0, 1)", False, _normal(0, 1, 0, 1)),
    Feature("n01_normal_shift", _N, "N(0, 1) → N(0.25, 1)", True, _normal(0, 1, 0.25, 1)),
    Feature("n02_normal_scale", _N, "N(5, 2) → N(5, 2.6)", True, _normal(5, 2, 5, 2.6)),
    Feature(
        "n03_normal_tiny", _N, "N(10, 3) → N(10.06, 3): 0.02σ", False, _normal(10, 3, 10.06, 3)
    ),
    Feature("n04_lognormal", _N, "LogN(0, 0.5)", False, _lognormal(0, 0.5, 0, 0.5)),
    Feature("n05_lognormal_shift", _N, "LogN(0, 1) → LogN(0.3, 1)", True, _lognormal(0, 1, 0.3, 1)),
    Feature("n06_lognormal_heavy", _N, "LogN(1, 1.5)", False, _lognormal(1, 1.5, 1, 1.5)),
    Feature("n07_uniform", _N, "U(0, 1)", False, _uniform(0, 1, 0, 1)),
    Feature("n08_uniform_widen", _N, "U(0, 10) → U(0, 12)", True, _uniform(0, 10, 0, 12)),
    Feature("n09_uniform_sym", _N, "U(-1, 1)", False, _uniform(-1, 1, -1, 1)),
    Feature("n10_int_poisson", _N, "Poisson(3), integers", False, _poisson(3, 3)),
    Feature("n11_int_poisson_up", _N, "Poisson(3) → Poisson(3.8)", True, _poisson(3, 3.8)),
    Feature("n12_int_uniform", _N, "integers 0..99", False, _integers(0, 100)),
    Feature("n13_int_binomial", _N, "Binomial(20, 0.3)", False, _binomial(20, 0.3)),
    Feature("n14_exponential", _N, "Exp(1)", False, _exponential(1, 1)),
    Feature("n15_exponential_up", _N, "Exp(1) → Exp(mean 1.3)", True, _exponential(1, 1.3)),
    Feature("n16_student_t3", _N, "Student t(3)", False, _student_t(3)),
    Feature("n17_mixture", _N, "0.7 N(0,1) + 0.3 N(4,1) → 0.5/0.5", True, _mixture(0.3, 0.5)),
    Feature("n18_gamma_missing", _N, "Gamma(2, 2), 2% missing", False, _gamma(2, 2), missing=0.02),
    Feature("n19_beta", _N, "Beta(2, 5)", False, _beta(2, 5)),
    Feature(
        "c0_uniform10",
        _C,
        "10 levels, uniform",
        False,
        levels=10,
        probs=(_uniform_probs(10), _uniform_probs(10)),
    ),
    Feature(
        "c1_zipf20_reorder",
        _C,
        "20 levels, Zipf(1); top 5 reversed",
        True,
        levels=20,
        probs=(_zipf(20, 1.0), _reordered(_zipf(20, 1.0), 5)),
    ),
    Feature(
        "c2_uniform50",
        _C,
        "50 levels, uniform",
        False,
        levels=50,
        probs=(_uniform_probs(50), _uniform_probs(50)),
    ),
    Feature(
        "c3_zipf30_new",
        _C,
        "30 levels, Zipf(1.2) → flatter + 2 new levels (3%)",
        True,
        levels=30,
        probs=(_zipf(30, 1.2), _with_new(_zipf(30, 1.2), 2, 0.03)),
    ),
    Feature(
        "c4_geometric12_missing",
        _C,
        "12 levels, geometric(0.7), 1% missing",
        False,
        levels=12,
        probs=(_geometric(12, 0.7), _geometric(12, 0.7)),
        missing=0.01,
    ),
)


def numeric_names() -> list[str]:
    return [f.name for f in FEATURES if f.kind == _N]


def categorical_names() -> list[str]:
    return [f.name for f in FEATURES if f.kind == _C]


def _column(feature: Feature, rng: np.random.Generator, n: int, current: bool) -> pa.Array:
    if feature.kind == _N:
        assert feature.draw is not None
        values = feature.draw(rng, n, current)
        mask = rng.random(n) < feature.missing if feature.missing else None
        return pa.array(values, mask=mask)
    assert feature.probs is not None
    p = feature.probs[1] if current else feature.probs[0]
    labels = pa.array([f"{feature.name[:2]}_{i:02d}" for i in range(p.size)])
    codes = rng.choice(p.size, size=n, p=p).astype(np.int32)
    column = labels.take(pa.array(codes))
    if feature.missing:
        mask = pa.array(rng.random(n) < feature.missing)
        column = pc.if_else(mask, pa.scalar(None, pa.string()), column)
    return column


def write_window(path: Path, n: int, seed: int, *, current: bool, null: bool = False) -> None:
    """Write one window of ``n`` rows to ``path`` (Parquet, plain types, no pandas metadata).

    The reference is ``current=False``; ``null=True`` draws a current window from the
    reference's distributions.
    """
    rng = np.random.default_rng(seed)
    shifted = current and not null
    table = pa.table({f.name: _column(f, rng, n, shifted) for f in FEATURES})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pq.write_table(table, tmp, compression="snappy")
    tmp.replace(path)
