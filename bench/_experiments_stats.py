"""A/B statistics: agreement with independent references, and what peeking costs.

Run from the repository root::

    .venv/bin/python -m bench._experiments_stats           # the full run, about a minute
    .venv/bin/python -m bench._experiments_stats --quick   # a few seconds

1. Correctness on random inputs, each computed by mlgate from summaries and by an
   independent reference from the raw data or counts:

   * means: Welch's test from ``(n, sum, sum_squares)`` against statsmodels'
     ``CompareMeans.ttest_ind(usevar="unequal")`` and ``tconfint_diff`` on the raw samples;
   * proportions: the pooled z-test p-value against ``proportions_ztest``, the Wald
     interval against ``confint_proportions_2indep(method="wald")``;
   * Bayesian chance to beat control (Beta(1, 1) priors) against ``scipy.integrate.quad``
     of ``f_t(x) F_c(x)``, with sizes up to a million units (the quadrature branch).

2. Peeking. A/A and A/B experiments with Bernoulli units, baseline rate 10%, looked at
   20 times at equal steps up to the sample size at which the fixed-horizon z-test has 80%
   power for a +10% relative effect (``sample_size_proportion``). The fixed test is read at
   every look (stop at the first p < 0.05) and, for power, once at the end; the sequential
   test (mSPRT, default mixing sd) at every look. Counts are drawn with numpy (binomial
   increments, cumulated), the p-values come from mlgate's own functions.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
from scipy import integrate
from scipy import stats as sps

from mlgate.experiments.stats import (
    DEFAULT_MIXING_SD,
    MeanSummary,
    ProportionSummary,
    beta_chance_to_beat,
    msprt,
    sample_size_proportion,
    two_proportion_z_test,
    welch_t_test,
)

__all__ = ["run"]

ALPHA = 0.05
LOOKS = 20
BASELINE = 0.10
LIFT = 0.10  # relative


def _means(cases: int, rng: np.random.Generator) -> dict[str, float]:
    from statsmodels.stats import weightstats as smw

    worst = {"p_value": 0.0, "ci": 0.0}
    for _ in range(cases):
        nc, nt = rng.integers(2, 500, size=2)
        loc = rng.uniform(-50, 50)
        xc = rng.normal(loc, rng.uniform(0.1, 20), nc)
        xt = rng.normal(loc + rng.normal(0, 2), rng.uniform(0.1, 20), nt)
        c = MeanSummary(int(nc), float(xc.sum()), float(xc @ xc))
        t = MeanSummary(int(nt), float(xt.sum()), float(xt @ xt))
        ours = welch_t_test(c.moments(), t.moments(), alpha=ALPHA)
        cm = smw.CompareMeans(smw.DescrStatsW(xt), smw.DescrStatsW(xc))
        _, p, _ = cm.ttest_ind(usevar="unequal")
        low, high = cm.tconfint_diff(alpha=ALPHA, usevar="unequal")
        worst["p_value"] = max(worst["p_value"], abs(ours.p_value - p))
        worst["ci"] = max(worst["ci"], abs(ours.absolute.low - low), abs(ours.absolute.high - high))
    return worst


def _proportions(cases: int, rng: np.random.Generator) -> dict[str, float]:
    from statsmodels.stats import proportion as smp

    worst = {"p_value": 0.0, "ci": 0.0}
    done = 0
    while done < cases:
        nc, nt = (int(v) for v in np.exp(rng.uniform(math.log(20), math.log(1e6), 2)))
        rate = rng.uniform(0.001, 0.6)
        sc, st = int(rng.binomial(nc, rate)), int(rng.binomial(nt, rate * rng.uniform(0.8, 1.2)))
        if sc + st == 0 or (sc == 0 and st == nt) or (st == 0 and sc == nc):
            continue  # no spread in either arm: both tools decline
        ours = two_proportion_z_test(ProportionSummary(nc, sc), ProportionSummary(nt, st))
        _, p = smp.proportions_ztest([st, sc], [nt, nc])
        low, high = smp.confint_proportions_2indep(st, nt, sc, nc, method="wald", alpha=ALPHA)
        worst["p_value"] = max(worst["p_value"], abs(ours.p_value - float(p)))
        worst["ci"] = max(worst["ci"], abs(ours.absolute.low - low), abs(ours.absolute.high - high))
        done += 1
    return worst


def _quad_chance(ax: float, bx: float, ay: float, by: float) -> float:
    """P(X > Y) by adaptive quadrature over the narrower density (the other one's CDF is
    then smooth; over the wider one, quad can step over the narrow CDF's jump)."""
    if sps.beta.std(ax, bx) < sps.beta.std(ay, by):
        return 1.0 - _quad_chance(ay, by, ax, bx)
    lo, hi = sps.beta.ppf([1e-14, 1 - 1e-14], ay, by)
    value, _ = integrate.quad(
        lambda y: sps.beta.pdf(y, ay, by) * sps.beta.sf(y, ax, bx),
        lo,
        hi,
        points=[float(sps.beta.median(ay, by))],
        limit=500,
        epsabs=1e-13,
    )
    return float(value)


def _chance(cases: int, rng: np.random.Generator) -> dict[str, float]:
    worst = 0.0
    for _ in range(cases):
        nc, nt = (int(v) for v in np.exp(rng.uniform(math.log(5), math.log(1e6), 2)))
        rate = rng.uniform(0.001, 0.5)
        sc, st = int(rng.binomial(nc, rate)), int(rng.binomial(nt, rate * rng.uniform(0.9, 1.1)))
        ax, bx, ay, by = 1 + st, 1 + nt - st, 1 + sc, 1 + nc - sc
        ours = beta_chance_to_beat(ax, bx, ay, by)
        worst = max(worst, abs(ours - _quad_chance(ax, bx, ay, by)))
    return {"chance_to_beat": worst}


def _peeking(experiments: int, n_per_arm: int, effect: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    steps = np.diff(np.linspace(0, n_per_arm, LOOKS + 1).round().astype(np.int64))
    ns = np.cumsum(steps)
    treated = BASELINE * (1.0 + effect)
    sc = np.cumsum(rng.binomial(steps, BASELINE, size=(experiments, LOOKS)), axis=1)
    st = np.cumsum(rng.binomial(steps, treated, size=(experiments, LOOKS)), axis=1)
    fixed_any = fixed_final = seq_any = 0
    stop_fraction = []
    for e in range(experiments):
        f_hit = s_hit = False
        for k in range(LOOKS):
            c = ProportionSummary(int(ns[k]), int(sc[e, k]))
            t = ProportionSummary(int(ns[k]), int(st[e, k]))
            p_fixed = two_proportion_z_test(c, t, alpha=ALPHA).p_value
            f_hit |= p_fixed < ALPHA
            if not s_hit and msprt(c.moments(), t.moments(), alpha=ALPHA).p_value <= ALPHA:
                s_hit = True
                stop_fraction.append(ns[k] / n_per_arm)
        fixed_any += f_hit
        fixed_final += p_fixed < ALPHA
        seq_any += s_hit
    return {
        "fixed_peeking": fixed_any / experiments,
        "fixed_final": fixed_final / experiments,
        "sequential": seq_any / experiments,
        "sequential_stop_fraction": float(np.mean(stop_fraction)) if stop_fraction else math.nan,
    }


def _interval(rate: float, n: int) -> str:
    half = 1.96 * math.sqrt(max(rate * (1 - rate), 1e-12) / n)
    return f"{rate:.1%} (± {half:.1%})"


def run(quick: bool) -> tuple[str, dict[str, Any]]:
    """The Markdown fragment and the raw numbers; ``quick`` uses ~10x fewer cases."""
    cases = 200 if quick else 2_000
    experiments = 200 if quick else 1_000
    rng = np.random.default_rng(20240601)
    started = time.perf_counter()
    correctness = {
        "means": _means(cases, rng),
        "proportions": _proportions(cases, rng),
        "bayesian": _chance(cases // 4 if quick else cases, rng),
    }
    n = sample_size_proportion(BASELINE, LIFT, relative=True, alpha=ALPHA, power=0.8)
    null = _peeking(experiments, n, 0.0, seed=1)
    alt = _peeking(experiments, n, LIFT, seed=2)
    raw: dict[str, Any] = {
        "cases": cases,
        "experiments": experiments,
        "looks": LOOKS,
        "n_per_arm": n,
        "mixing_sd": DEFAULT_MIXING_SD,
        "correctness": correctness,
        "aa": null,
        "ab": alt,
        "seconds": time.perf_counter() - started,
    }
    c = correctness

    def row(label: str, key: str) -> str:
        aa, ab = _interval(null[key], experiments), _interval(alt[key], experiments)
        return f"| {label} | {aa} | {ab} |"

    lines = [
        f"Agreement with independent references on {cases:,} random inputs per row "
        "(largest absolute difference):",
        "",
        "| statistic | reference | max \\|Δ p-value\\| | max \\|Δ interval bound\\| |",
        "|---|---|---:|---:|",
        f"| Welch t-test, from sums | statsmodels `CompareMeans` on raw samples "
        f"| {c['means']['p_value']:.1e} | {c['means']['ci']:.1e} |",
        f"| two-proportion z-test, Wald interval | statsmodels `proportions_ztest`, "
        f"`confint_proportions_2indep` | {c['proportions']['p_value']:.1e} "
        f"| {c['proportions']['ci']:.1e} |",
        f"| Bayesian chance to beat control | `scipy.integrate.quad` over the narrower posterior "
        f"| {c['bayesian']['chance_to_beat']:.1e} (probability) | — |",
        "",
        f"Peeking: {experiments:,} simulated experiments per row, Bernoulli units at a 10% "
        f"baseline, {LOOKS} equally spaced looks up to {n:,} units per arm (the fixed-horizon "
        "z-test's 80%-power size for a +10% relative lift), alpha = 0.05, mSPRT mixing sd "
        f"{DEFAULT_MIXING_SD} metric standard deviations. Rates with 95% binomial margins:",
        "",
        "| test | A/A false positives | power at +10% |",
        "|---|---:|---:|",
        row("fixed-horizon z-test, read once at the end", "fixed_final"),
        row("fixed-horizon z-test, stop at the first p < 0.05 of 20 looks", "fixed_peeking"),
        row("sequential (mSPRT), stop at the first p <= 0.05 of 20 looks", "sequential"),
        "",
        "Peeking at the fixed test multiplies its false-positive rate; the sequential test "
        "stays under 5% at every look, and pays for it in power at the fixed test's sample "
        "size. When it does detect the +10% lift it stops, on average, after "
        f"{alt['sequential_stop_fraction']:.0%} of that sample.",
    ]
    return "\n".join(lines), raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases, a few seconds")
    args = parser.parse_args()
    fragment, _ = run(args.quick)
    print(fragment)


if __name__ == "__main__":
    main()
