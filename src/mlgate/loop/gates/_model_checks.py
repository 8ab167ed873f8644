"""Checks on the candidate's predictions: thresholds, change against the champion,
significance of the improvement, and no regression on any declared slice.

Every check that compares with the champion passes, marked skipped, when there is none:
the first model of a loop has nothing to beat, and its absolute thresholds still apply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import GateError
from mlgate.loop.gates._metrics import (
    METRICS,
    MetricUndefinedError,
    Scored,
    correctness,
    label_universe,
    prepare,
)
from mlgate.loop.gates._stats import mcnemar_one_sided, paired_bootstrap
from mlgate.loop.gates.inputs import GateInputs, Predictions
from mlgate.loop.gates.report import CheckResult
from mlgate.loop.gates.spec import ChampionCheck, MetricCheck, SignificanceCheck

__all__ = ["Holdout", "check_champion", "check_metric", "check_significance", "undefined"]

NO_CHAMPION = "no champion to compare with (first model of the loop), so this passes"


@dataclass
class Holdout:
    """The inputs plus what several checks share: the label universe and scored metrics."""

    inputs: GateInputs
    seed: int
    universe: NDArray[Any] | None = field(default=None, init=False)
    _scored: dict[tuple[str, str], Scored | MetricUndefinedError] = field(
        default_factory=dict, init=False
    )

    def __post_init__(self) -> None:
        if self.inputs.task == "classification":
            i = self.inputs
            self.universe = label_universe(i.y_true, i.candidate, i.champion)

    def model(self, role: str) -> Predictions:
        pred = self.inputs.candidate if role == "candidate" else self.inputs.champion
        assert pred is not None  # callers check for the champion first
        return pred

    def scored(self, role: str, metric: str) -> Scored:
        """The metric for ``role`` on the whole holdout, computed once per gate."""
        key = (role, metric)
        if key not in self._scored:
            try:
                i = self.inputs
                self._scored[key] = prepare(
                    metric, i.task, i.y_true, self.model(role), self.universe
                )
            except MetricUndefinedError as exc:
                why = f"the {role}'s {metric} could not be computed: {exc}"
                self._scored[key] = MetricUndefinedError(why)
        found = self._scored[key]
        if isinstance(found, MetricUndefinedError):
            raise found
        return found


def check_metric(check: MetricCheck, path: str, holdout: Holdout) -> CheckResult:
    try:
        value = holdout.scored("candidate", check.name).value
    except MetricUndefinedError as exc:
        return undefined(path, check.KIND, exc)
    low, high = check.min, check.max
    details = {"min": low, "max": high}
    if low is not None and value < low:
        what = f"the candidate's {check.name} {value:.4g} is below the minimum {low:g}"
        return CheckResult(path, check.KIND, False, f"{what}; {_IMPROVE}", value, low, details)
    if high is not None and value > high:
        what = f"the candidate's {check.name} {value:.4g} is above the maximum {high:g}"
        return CheckResult(path, check.KIND, False, f"{what}; {_IMPROVE}", value, high, details)
    bound = (
        low if (METRICS[check.name].higher_is_better and low is not None) or high is None else high
    )
    span = f"[{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}]"
    message = f"the candidate's {check.name} {value:.4g} is within {span}"
    return CheckResult(path, check.KIND, True, message, value, bound, details)


def check_champion(check: ChampionCheck, path: str, holdout: Holdout) -> CheckResult:
    if holdout.inputs.champion is None:
        return CheckResult(path, check.KIND, True, NO_CHAMPION, None, check.min_delta, skipped=True)
    try:
        cand = holdout.scored("candidate", check.metric).value
        champ = holdout.scored("champion", check.metric).value
    except MetricUndefinedError as exc:
        return undefined(path, check.KIND, exc)
    delta = cand - champ if METRICS[check.metric].higher_is_better else champ - cand
    details = {"candidate": cand, "champion": champ, "delta": delta}
    value, unit = delta, ""
    if check.relative:
        if champ == 0:
            message = (
                f"a relative change is undefined because the champion's {check.metric} is 0; "
                "use an absolute min_delta (relative: false)"
            )
            return CheckResult(path, check.KIND, False, message, None, check.min_delta, details)
        value = delta / abs(champ)
        details["relative_delta"] = value
        unit = " of the champion's value"
    passed = value >= check.min_delta
    what = (
        f"{check.metric}: candidate {cand:.4g} vs champion {champ:.4g}, a change of {value:+.4g}"
        f"{unit} in the good direction, {'at least' if passed else 'below'} the minimum "
        f"{check.min_delta:+g}"
    )
    if not passed:
        what += "; the candidate does not improve enough on the model in production"
    return CheckResult(path, check.KIND, passed, what, value, check.min_delta, details)


def check_significance(check: SignificanceCheck, path: str, holdout: Holdout) -> CheckResult:
    if holdout.inputs.champion is None:
        return CheckResult(path, check.KIND, True, NO_CHAMPION, skipped=True)
    if check.test == "mcnemar":
        return _mcnemar(check, path, holdout)
    try:
        cand, champ = (
            holdout.scored("candidate", check.metric),
            holdout.scored("champion", check.metric),
        )
        interval = paired_bootstrap(
            cand,
            champ,
            n_rows=holdout.inputs.n_rows,
            higher_is_better=METRICS[check.metric].higher_is_better,
            n_resamples=check.n_resamples,
            confidence=check.confidence,
            rng=np.random.default_rng(holdout.seed),
        )
    except MetricUndefinedError as exc:
        return undefined(path, check.KIND, exc)
    details = {
        "candidate": cand.value,
        "champion": champ.value,
        "observed_delta": interval.observed,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "confidence": interval.confidence,
        "n_resamples": interval.n_resamples,
        "undefined_resamples": interval.n_undefined,
    }
    ci = f"{check.confidence:.0%} interval [{interval.low:+.4g}, {interval.high:+.4g}]"
    what = (
        f"{check.metric} improvement (candidate {cand.value:.4g} vs champion {champ.value:.4g}, "
        f"paired bootstrap of {check.n_resamples} resamples): {ci}"
    )
    if interval.n_undefined > check.n_resamples // 10:
        what += (
            f"; {interval.n_undefined} resamples had no {check.metric} value, too many to "
            "trust the interval: use a larger holdout or another metric"
        )
        return CheckResult(path, check.KIND, False, what, interval.low, 0.0, details)
    if interval.low > 0:
        return CheckResult(
            path, check.KIND, True, f"{what} lies above 0", interval.low, 0.0, details
        )
    what += " reaches 0 or below, so the improvement may be noise; gather more holdout rows"
    return CheckResult(path, check.KIND, False, what, interval.low, 0.0, details)


def _mcnemar(check: SignificanceCheck, path: str, holdout: Holdout) -> CheckResult:
    i, universe = holdout.inputs, holdout.universe
    if i.task != "classification" or universe is None or i.champion is None:
        raise GateError(f"{path}: mcnemar needs a classification loop, this one is {i.task}")
    correct = []
    for role, pred in (("candidate", i.candidate), ("champion", i.champion)):
        try:
            correct.append(correctness(i.y_true, pred, universe))
        except MetricUndefinedError as exc:
            why = f"the {role}'s right and wrong rows could not be counted: {exc}"
            return undefined(path, check.KIND, MetricUndefinedError(why))
    result = mcnemar_one_sided(*correct)
    wins, losses, p = result.candidate_wins, result.champion_wins, result.p_value
    details = {"candidate_wins": wins, "champion_wins": losses, "p_value": p, "alpha": check.alpha}
    what = (
        f"McNemar exact one-sided test: of {wins + losses} rows exactly one model got right, "
        f"the candidate won {wins} and the champion {losses}; p = {p:.4g}"
    )
    if p < check.alpha:
        return CheckResult(
            path, check.KIND, True, f"{what} < alpha {check.alpha:g}", p, check.alpha, details
        )
    what += f" >= alpha {check.alpha:g}, so the improvement may be noise; gather more holdout rows"
    return CheckResult(path, check.KIND, False, what, p, check.alpha, details)


def undefined(path: str, kind: str, exc: MetricUndefinedError) -> CheckResult:
    """A check that could not compute its number fails (never a NaN verdict), saying why."""
    message = f"{exc}; fix the predictions or gate on another metric"
    return CheckResult(path, kind, False, message)


_IMPROVE = "retrain with more or better data, or revise the threshold in the loop's gates"
