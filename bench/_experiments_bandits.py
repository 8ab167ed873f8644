"""Bandit policies: regret and CPU per decision, mlgate beside MABWiser.

Run from the repository root (``bench/experiments.py`` wraps it into BENCHMARKS.md)::

    .venv/bin/python -m bench._experiments_bandits          # full: about 2 to 4 minutes
    .venv/bin/python -m bench._experiments_bandits --quick  # well under a minute

1. **Bernoulli arms.** Five arms with success rates 0.05, 0.075, 0.10, 0.125 and
   0.15, 20,000 rounds, 20 seeds (quick: 5 seeds, 5,000 rounds). Epsilon-greedy
   (epsilon 0.1), UCB1 (alpha 1, the paper's bound) and Beta-Bernoulli Thompson
   sampling, ours and MABWiser's (``MAB(arms, LearningPolicy.X, seed=...)``).
2. **Contextual.** Three user segments, each with a different best arm (rate
   0.15 against 0.05 and 0.10), plus a numeric attribute that does not matter;
   10,000 rounds, 5 seeds (quick: 2 seeds, 4,000 rounds). Our LinUCB and linear
   Thompson sampling against MABWiser's ``LinUCB`` and ``LinTS`` with the same
   ``alpha`` and ridge 1, on the same encoded context vectors.

Fairness. Both libraries see the same rewards: each seed draws one reward table
(round x arm) up front, so a library that plays arm ``a`` in round ``t`` gets the
same reward whichever it is. Both start from one pull of every arm in turn
(MABWiser has to ``fit`` something before it can predict, and its untried arms
would otherwise score 0 and never be tried). After that, each decision is one
call (``pull`` / ``predict``), and both learn in batches of 50 rounds
(``update_many`` / ``partial_fit``), because a ``partial_fit`` per round would
take MABWiser tens of minutes here. Regret is the pseudo-regret
``sum_t (best rate - rate of the arm played)``. CPU per decision is process CPU
time of the decision calls alone, summed over each batch's 50 calls, divided by
the number of decisions. Learning CPU per round is the process CPU time of the
batch updates (after the warm start) divided by the same number: a policy can
move work from its decisions into its updates (mlgate's precompute what the
decisions need when the statistics change), so both are reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.experiments.bandits import (
    UCB1,
    ContextEncoder,
    EpsilonGreedy,
    LinearThompsonSampling,
    LinUCB,
    ThompsonSampling,
)

__all__ = ["run"]

RATES = (0.05, 0.075, 0.10, 0.125, 0.15)
BATCH = 50
SEGMENT_RATES = (  # segment -> rate per arm; each segment has its own best arm
    (0.15, 0.05, 0.10),
    (0.05, 0.15, 0.10),
    (0.10, 0.05, 0.15),
)
CONTEXT_ALPHA = 0.25


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class Outcome:
    regret: float
    cpu_ns: int
    decisions: int
    learn_ns: int = 0


class Library:
    """One policy of one library behind the same three calls."""

    def __init__(
        self,
        decide: Callable[[Any], Any],
        learn: Callable[[list[Any], list[float], NDArray[np.float64] | None], None],
    ) -> None:
        self.decide = decide
        self.learn = learn


def ours(name: str, arms: list[int], seed: int) -> Library:
    policy: Any
    if name == "EpsilonGreedy":
        policy = EpsilonGreedy(arms, 0.1, seed=seed)
    elif name == "UCB1":
        policy = UCB1(arms, 1.0, seed=seed)
    elif name == "ThompsonSampling":
        policy = ThompsonSampling(arms, seed=seed)
    else:
        encoder = ContextEncoder(numeric=["score"], categorical={"segment": [0, 1, 2]})
        kind = LinUCB if name == "LinUCB" else LinearThompsonSampling
        policy = kind(arms, encoder, alpha=CONTEXT_ALPHA, seed=seed)
    return Library(policy.pull, policy.update_many)


def mabwiser(name: str, arms: list[int], seed: int) -> Library:
    from mabwiser.mab import MAB, LearningPolicy

    policies: dict[str, Any] = {
        "EpsilonGreedy": LearningPolicy.EpsilonGreedy(epsilon=0.1),
        "UCB1": LearningPolicy.UCB1(alpha=1.0),
        "ThompsonSampling": LearningPolicy.ThompsonSampling(),
        "LinUCB": LearningPolicy.LinUCB(alpha=CONTEXT_ALPHA, l2_lambda=1.0),
        "LinearThompsonSampling": LearningPolicy.LinTS(alpha=CONTEXT_ALPHA, l2_lambda=1.0),
    }
    mab = MAB(arms, policies[name], seed=seed)
    fitted = False

    def decide(context: Any) -> Any:
        return mab.predict(None if context is None else context.reshape(1, -1))

    def learn(decisions: list[Any], rewards: list[float], xs: NDArray[np.float64] | None) -> None:
        nonlocal fitted
        step = mab.partial_fit if fitted else mab.fit
        step(np.asarray(decisions), np.asarray(rewards), xs)
        fitted = True

    return Library(decide, learn)


def simulate(
    library: Library,
    rewards: NDArray[np.float64],
    means: NDArray[np.float64],
    contexts: NDArray[np.float64] | None,
) -> Outcome:
    """Play ``rewards.shape[0]`` rounds; ``means[t, a]`` is arm a's expected reward in round t."""
    rounds, arms = rewards.shape
    best = means.max(axis=1)
    regret = 0.0
    cpu = 0
    learn = 0
    decisions = 0
    # Warm start, the same for both libraries: every arm once, in turn.
    warm = list(range(arms))
    library.learn(
        warm,
        [float(rewards[t, a]) for t, a in enumerate(warm)],
        None if contexts is None else contexts[:arms],
    )
    regret += float(sum(best[t] - means[t, a] for t, a in enumerate(warm)))
    t = arms
    process_time = time.process_time_ns
    decide = library.decide
    while t < rounds:
        end = min(t + BATCH, rounds)
        if contexts is None:
            start = process_time()
            chosen = [decide(None) for _ in range(t, end)]
            cpu += process_time() - start
        else:
            rows = list(contexts[t:end])
            start = process_time()
            chosen = [decide(x) for x in rows]
            cpu += process_time() - start
        decisions += end - t
        picks = [int(a) for a in chosen]
        index = np.arange(t, end)
        regret += float((best[index] - means[index, picks]).sum())
        observed = rewards[index, picks].tolist()
        seen = None if contexts is None else contexts[t:end]
        start = process_time()
        library.learn(picks, observed, seen)
        learn += process_time() - start
        t = end
    return Outcome(regret, cpu, decisions, learn)


def bernoulli(seeds: int, rounds: int) -> dict[str, Any]:
    arms = list(range(len(RATES)))
    rates = np.array(RATES)
    results: dict[str, Any] = {}
    for name in ("EpsilonGreedy", "UCB1", "ThompsonSampling"):
        per: dict[str, list[Outcome]] = {"mlgate": [], "MABWiser": []}
        for seed in range(seeds):
            rng = np.random.default_rng(10_000 + seed)
            rewards = (rng.random((rounds, len(arms))) < rates).astype(np.float64)
            means = np.broadcast_to(rates, rewards.shape)
            for label, make in (("mlgate", ours), ("MABWiser", mabwiser)):
                per[label].append(simulate(make(name, arms, seed), rewards, means, None))
        results[name] = summarise(per)
        say(f"bandits: {name} done")
    return results


def contextual(seeds: int, rounds: int) -> dict[str, Any]:
    arms = list(range(3))
    encoder = ContextEncoder(numeric=["score"], categorical={"segment": [0, 1, 2]})
    table = np.array(SEGMENT_RATES)
    results: dict[str, Any] = {}
    for name in ("LinUCB", "LinearThompsonSampling"):
        per: dict[str, list[Outcome]] = {"mlgate": [], "MABWiser": []}
        for seed in range(seeds):
            rng = np.random.default_rng(20_000 + seed)
            segments = rng.integers(0, 3, size=rounds)
            scores = rng.random(rounds)
            contexts = encoder.encode_many(
                {"segment": int(s), "score": float(x)}
                for s, x in zip(segments, scores, strict=True)
            )
            means = table[segments]
            rewards = (rng.random((rounds, len(arms))) < means).astype(np.float64)
            for label, make in (("mlgate", ours), ("MABWiser", mabwiser)):
                per[label].append(simulate(make(name, arms, seed), rewards, means, contexts))
        results[name] = summarise(per)
        say(f"bandits: {name} done")
    return results


def summarise(per: dict[str, list[Outcome]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, outcomes in per.items():
        regrets = [o.regret for o in outcomes]
        decisions = sum(o.decisions for o in outcomes)
        cpu_us = sum(o.cpu_ns for o in outcomes) / decisions / 1e3
        out[label] = {
            "regret_mean": statistics.fmean(regrets),
            "regret_sd": statistics.stdev(regrets) if len(regrets) > 1 else 0.0,
            "regrets": regrets,
            "cpu_us_per_decision": cpu_us,
            "learn_us_per_round": sum(o.learn_ns for o in outcomes) / decisions / 1e3,
        }
    out["cpu_ratio"] = out["MABWiser"]["cpu_us_per_decision"] / out["mlgate"]["cpu_us_per_decision"]
    return out


def goals(results: dict[str, Any]) -> list[str]:
    """The issue's goals per policy: regret no worse than MABWiser's, 10x less CPU.

    "No worse" is a one-sided Welch test over the seeds (ours higher at p < 0.05 fails);
    decision plus learning CPU is shown too, since work moved into updates is not free.
    """
    from scipy.stats import ttest_ind

    lines = []
    for name, r in results.items():
        ours_, theirs = r["mlgate"], r["MABWiser"]
        worse = ttest_ind(
            ours_["regrets"], theirs["regrets"], equal_var=False, alternative="greater"
        )
        regret_ok = ours_["regret_mean"] <= theirs["regret_mean"] or worse.pvalue >= 0.05
        total = (theirs["cpu_us_per_decision"] + theirs["learn_us_per_round"]) / (
            ours_["cpu_us_per_decision"] + ours_["learn_us_per_round"]
        )
        lines.append(
            f"- {name}: regret no worse than MABWiser's {'✅' if regret_ok else '❌'} "
            f"(one-sided p = {worse.pvalue:.2f}); at least 10× less CPU per decision "
            f"{'✅' if r['cpu_ratio'] >= 10 else '❌'} ({r['cpu_ratio']:.1f}×; "
            f"decision plus learning {total:.1f}×)"
        )
    return lines


def table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| policy | mlgate regret | MABWiser regret | mlgate µs/decision "
        "| MABWiser µs/decision | CPU ratio | mlgate learn µs/round | MABWiser learn µs/round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        ours_, theirs = r["mlgate"], r["MABWiser"]
        lines.append(
            f"| {name} | {ours_['regret_mean']:.1f} ± {ours_['regret_sd']:.1f} "
            f"| {theirs['regret_mean']:.1f} ± {theirs['regret_sd']:.1f} "
            f"| {ours_['cpu_us_per_decision']:.2f} | {theirs['cpu_us_per_decision']:.2f} "
            f"| {r['cpu_ratio']:.1f}× | {ours_['learn_us_per_round']:.2f} "
            f"| {theirs['learn_us_per_round']:.2f} |"
        )
    return lines


def run(quick: bool) -> tuple[str, dict[str, Any]]:
    """Both benchmarks; a Markdown fragment (no section marks) and the raw numbers."""
    seeds, rounds = (5, 5_000) if quick else (20, 20_000)
    ctx_seeds, ctx_rounds = (2, 4_000) if quick else (5, 10_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MABWiser's dependencies warn on import
        plain = bernoulli(seeds, rounds)
        linear = contextual(ctx_seeds, ctx_rounds)
    from importlib.metadata import version

    raw = {
        "bernoulli": plain,
        "contextual": linear,
        "settings": {
            "seeds": seeds,
            "rounds": rounds,
            "contextual_seeds": ctx_seeds,
            "contextual_rounds": ctx_rounds,
            "batch": BATCH,
            "rates": RATES,
            "segment_rates": SEGMENT_RATES,
            "contextual_alpha": CONTEXT_ALPHA,
            "mabwiser": version("mabwiser"),
            "cpus": os.cpu_count(),
        },
    }
    text = [
        f"Bernoulli arms {', '.join(map(str, RATES))}; {rounds:,} rounds, {seeds} seeds "
        "(cumulative pseudo-regret, mean ± sd). Epsilon 0.1, UCB1 alpha 1, Thompson "
        "Beta(1, 1) prior, for both libraries.",
        "",
        *table(plain),
        "",
        *goals(plain),
        "",
        f"Contextual: 3 user segments, each with its own best arm (rate 0.15 against 0.10 "
        f"and 0.05), plus an irrelevant numeric attribute; {ctx_rounds:,} rounds, {ctx_seeds} "
        f"seeds, alpha {CONTEXT_ALPHA} and ridge 1 for both, the same encoded vectors "
        "(intercept, score, one-hot segment).",
        "",
        *table(linear),
        "",
        *goals(linear),
        "",
        f"Notes: both libraries see the same reward table per seed, start from one pull of "
        f"each arm, make one call per decision (`pull` / `predict`) and learn every {BATCH} "
        "rounds (`update_many` / `partial_fit`; per-round `partial_fit` would take MABWiser "
        "tens of minutes). CPU per decision is process CPU time of the decision calls only; "
        "learning CPU per round is that of the batch updates, per decision made. "
        f"MABWiser {raw['settings']['mabwiser']}, {os.cpu_count()} CPUs.",
    ]
    return "\n".join(text), raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer seeds and rounds")
    args = parser.parse_args()
    started = time.perf_counter()
    text, _ = run(args.quick)
    print(text)
    say(f"bandits: {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
