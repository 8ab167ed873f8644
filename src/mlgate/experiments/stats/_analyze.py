"""One analysis of an experiment: every treatment against the control, gated by SRM and guardrails.

The steps, in the order they can stop a verdict:

1. the sample-ratio check (:mod:`._srm`): a failure blocks every treatment's verdict
   (``"blocked_srm"``); the numbers are still reported, for diagnosis, with
   ``significant`` set to None;
2. enough data: fewer than 2 units in a variant, a ratio whose denominator sums to 0, or
   both arms constant give ``"not_enough_data"`` and null numbers with a reason, never a
   verdict. Two identical constants are reported as lift 0 and p-value 1 (there is no
   evidence of a difference, and none is possible);
3. the test of the chosen ``method`` on the (CUPED-adjusted, if covariates are given)
   moments; then each guardrail's one-sided test, a failure giving ``"guardrail_failed"``.

``significant`` means p < alpha for the frequentist method, p <= alpha for the sequential
one (the always-valid p-value's guarantee is on ``p <= alpha``), and a
``1 - alpha`` credible interval of the absolute lift that excludes 0 for the Bayesian one,
whose ``p_value`` is the frequentist test's, reported for reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats._bayesian import (
    BayesianSummary,
    beta_binomial_summary,
    normal_summary,
)
from mlgate.experiments.stats._cuped import CupedAdjustment, cuped
from mlgate.experiments.stats._fixed import (
    FixedHorizonTest,
    two_proportion_z_test,
    welch_t_test,
    z_test,
)
from mlgate.experiments.stats._guardrail import GuardrailTest, Harm, guardrail_test
from mlgate.experiments.stats._lift import Estimate, relative_lift
from mlgate.experiments.stats._sequential import DEFAULT_MIXING_SD, msprt
from mlgate.experiments.stats._srm import DEFAULT_SRM_THRESHOLD, SRMCheck, srm_check
from mlgate.experiments.stats._summaries import (
    CovariateSummary,
    MeanSummary,
    Moments,
    ProportionSummary,
    RatioSummary,
    Summary,
)

__all__ = [
    "Analysis",
    "Difference",
    "Guardrail",
    "Kind",
    "Method",
    "VariantResult",
    "Verdict",
    "analyze",
    "kind_of",
]

Kind = Literal["mean", "proportion", "ratio"]
Difference = Literal["absolute", "relative"]
Method = Literal["frequentist", "sequential", "bayesian"]
Verdict = Literal[
    "blocked_srm", "not_enough_data", "guardrail_failed", "significant", "not_significant"
]


@dataclass(frozen=True, slots=True)
class Guardrail:
    """A metric the treatments must not harm by more than ``tolerance`` (relative)."""

    name: str
    harm: Harm
    variants: Mapping[str, Summary]
    tolerance: float = 0.0


@dataclass(frozen=True, slots=True)
class VariantResult:
    """One treatment against the control.

    ``lift`` and ``ci`` are in the analysis' ``difference`` (the confidence interval, the
    confidence sequence or the credible interval, by method); None where not computable,
    with the reason in ``reasons``. ``absolute`` and ``relative`` give both scales.
    """

    name: str
    control_n: int
    treatment_n: int
    control_mean: float
    treatment_mean: float
    lift: float | None
    ci: tuple[float | None, float | None]
    p_value: float | None
    significant: bool | None
    verdict: Verdict
    test: str | None
    absolute: Estimate | None = None
    relative: Estimate | None = None
    bayesian: BayesianSummary | None = None
    guardrails: Mapping[str, GuardrailTest] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Analysis:
    """Every treatment's result, the SRM check and the settings that produced them."""

    kind: Kind
    difference: Difference
    method: Method
    alpha: float
    control: str
    srm: SRMCheck
    results: Mapping[str, VariantResult]
    cuped: CupedAdjustment | None
    mixing_sd: float
    weights_assumed: bool
    notes: tuple[str, ...] = ()

    @property
    def blocked(self) -> bool:
        return not self.srm.passed

    def to_json(self) -> dict[str, object]:
        """Strict JSON (no NaN or infinity: null, with the reason alongside)."""
        from mlgate.experiments.stats._json import analysis_to_json

        return analysis_to_json(self)


def kind_of(summary: Summary) -> Kind:
    if isinstance(summary, ProportionSummary):
        return "proportion"
    if isinstance(summary, RatioSummary):
        return "ratio"
    return "mean"


def _check_settings(alpha: float, srm_threshold: float, seed: int, mixing_sd: float) -> None:
    for name, value in (("alpha", alpha), ("srm_threshold", srm_threshold)):
        if not (isinstance(value, float | int) and 0.0 < value < 1.0):
            raise ExperimentInputError(f"{name} is {value!r}; give a level in (0, 1), e.g. 0.05")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ExperimentInputError(f"seed is {seed!r}; give a non-negative integer")
    if not (isinstance(mixing_sd, float | int) and math.isfinite(mixing_sd) and mixing_sd > 0):
        raise ExperimentInputError(
            f"mixing_sd is {mixing_sd!r}; give the sequential test's mixing standard "
            "deviation in metric standard deviations (> 0; default 0.05), fixed before the data"
        )


def _moments(
    variants: Mapping[str, Summary],
    covariates: Mapping[str, CovariateSummary] | None,
    kind: Kind,
) -> tuple[dict[str, Moments], CupedAdjustment | None]:
    base = {name: s.moments() for name, s in variants.items()}
    if not covariates:
        return base, None
    if kind == "ratio":
        raise ExperimentInputError(
            "CUPED covariates apply to mean and proportion metrics; drop the covariate "
            "or analyse the ratio's numerator as a mean"
        )
    if any(m.n < 2 for m in base.values()):
        return base, None  # not enough data anyway; the verdict says so
    plain = {n: s for n, s in variants.items() if isinstance(s, MeanSummary | ProportionSummary)}
    adjustment = cuped(plain, covariates)
    return dict(adjustment.moments), adjustment


def _not_enough(control: Moments, treatment: Moments, kind: Kind) -> str | None:
    for role, m in (("control", control), ("treatment", treatment)):
        if m.n < 2:
            return f"the {role} has {m.n} unit(s); wait for at least 2 in every variant"
        if math.isnan(m.mean):
            return f"the {role}'s ratio denominator sums to 0, so its ratio is undefined"
    return None


def _fixed(
    kind: Kind, adjusted: bool, c: Summary, t: Summary, mc: Moments, mt: Moments, alpha: float
) -> FixedHorizonTest:
    if kind == "proportion" and not adjusted:
        assert isinstance(c, ProportionSummary) and isinstance(t, ProportionSummary)
        return two_proportion_z_test(c, t, alpha=alpha)
    if kind == "mean":
        return welch_t_test(mc, mt, alpha=alpha)
    return z_test(mc, mt, alpha=alpha)


def _pick(estimate: Estimate | None) -> tuple[float | None, tuple[float | None, float | None]]:
    if estimate is None:
        return None, (None, None)
    return estimate.estimate, (estimate.low, estimate.high)


def _compare(
    name: str,
    control: tuple[Summary, Moments],
    treatment: tuple[Summary, Moments],
    *,
    kind: Kind,
    adjusted: bool,
    difference: Difference,
    method: Method,
    alpha: float,
    mixing_sd: float,
    seed: int,
) -> VariantResult:
    (c, mc), (t, mt) = control, treatment
    head = (name, mc.n, mt.n, mc.mean, mt.mean)
    reason = _not_enough(mc, mt, kind)
    if reason is not None:
        return VariantResult(
            *head,
            lift=None,
            ci=(None, None),
            p_value=None,
            significant=None,
            verdict="not_enough_data",
            test=None,
            reasons=(reason,),
        )
    if mc.variance + mt.variance == 0:
        diff = mt.mean - mc.mean
        lift = (
            diff
            if difference == "absolute"
            else (relative_lift(mc.mean, mt.mean) if mc.mean != 0 else None)
        )
        why = (
            "both variants are constant (zero variance): no noise to test against, so no "
            "verdict; identical constants are reported as lift 0 and p-value 1. Check that "
            "the metric is logged, or wait for more data"
        )
        return VariantResult(
            *head,
            lift=lift,
            ci=(None, None),
            p_value=1.0 if diff == 0 else None,
            significant=None,
            verdict="not_enough_data",
            test=None,
            reasons=(why,),
        )
    fixed = _fixed(kind, adjusted, c, t, mc, mt, alpha)
    reasons: list[str] = []
    bayes = None
    if method == "sequential":
        seq = msprt(mc, mt, alpha=alpha, mixing_sd=mixing_sd)
        absolute, relative, p_value = seq.absolute, seq.relative, seq.p_value
        why_rel, test = seq.relative_reason, "msprt"
        significant = p_value <= alpha  # Ville's bound: P(ever p <= alpha) <= alpha
    elif method == "bayesian":
        if kind == "proportion" and not adjusted:
            assert isinstance(c, ProportionSummary) and isinstance(t, ProportionSummary)
            bayes = beta_binomial_summary(c, t, alpha=alpha, seed=seed)
        else:
            bayes = normal_summary(mc, mt, alpha=alpha, seed=seed)
        absolute, relative, why_rel = bayes.absolute, bayes.relative, bayes.relative_reason
        p_value, test = fixed.p_value, fixed.test
        significant = not (absolute.low <= 0.0 <= absolute.high)
    else:
        absolute, relative, p_value = fixed.absolute, fixed.relative, fixed.p_value
        why_rel, test = fixed.relative_reason, fixed.test
        significant = p_value < alpha
    if why_rel is not None:
        reasons.append(why_rel)
    elif method != "bayesian" and relative is not None:
        if significant == (relative.low <= 0.0 <= relative.high):
            # The delta-method interval also carries the control mean's noise in its
            # denominator, so near the edge it can disagree with the test of m_t = m_c.
            reasons.append(
                "the relative interval and the test disagree on whether 0 is plausible (the "
                "delta method adds the control mean's noise); the test and the absolute "
                "interval decide significance"
            )
    lift, ci = _pick(absolute if difference == "absolute" else relative)
    return VariantResult(
        *head,
        lift=lift,
        ci=ci,
        p_value=p_value,
        significant=significant,
        verdict="significant" if significant else "not_significant",
        test=test,
        absolute=absolute,
        relative=relative,
        bayesian=bayes,
        reasons=tuple(reasons),
    )


def _guardrails(
    guardrails: Sequence[Guardrail], control: str, treatments: Sequence[str], alpha: float
) -> dict[str, dict[str, GuardrailTest]]:
    out: dict[str, dict[str, GuardrailTest]] = {name: {} for name in treatments}
    for g in guardrails:
        if set(g.variants) != {control, *treatments}:
            raise ExperimentInputError(
                f"guardrail {g.name!r} has variants {sorted(g.variants)}; give the same "
                f"variants as the experiment ({sorted({control, *treatments})})"
            )
        kinds = {kind_of(s) for s in g.variants.values()}
        if len(kinds) != 1:
            raise ExperimentInputError(f"guardrail {g.name!r} mixes summary kinds {sorted(kinds)}")
        use_t = kinds == {"mean"}
        mc = g.variants[control].moments()
        for name in treatments:
            out[name][g.name] = guardrail_test(
                mc,
                g.variants[name].moments(),
                harm=g.harm,
                tolerance=g.tolerance,
                alpha=alpha,
                use_t=use_t,
            )
    return out


def analyze(
    variants: Mapping[str, Summary],
    *,
    difference: Difference = "absolute",
    method: Method = "frequentist",
    alpha: float = 0.05,
    weights: Mapping[str, float] | None = None,
    covariates: Mapping[str, CovariateSummary] | None = None,
    guardrails: Sequence[Guardrail] = (),
    srm_threshold: float = DEFAULT_SRM_THRESHOLD,
    mixing_sd: float = DEFAULT_MIXING_SD,
    seed: int = 0,
    units: Mapping[str, int] | None = None,
    adaptive: bool = False,
) -> Analysis:
    """Analyse every variant after the first (the control) against the first.

    ``weights`` are the configured traffic shares (an even split when None, which the
    result records as assumed). ``units`` are the randomised units per variant (users of
    a sticky split) when they are not the summaries' ``n``: the sample-ratio check counts
    what was randomised. ``adaptive`` marks traffic a bandit allocated by reward: there
    is no configured split to check, so the check is skipped and a note says so.
    ``seed`` fixes the Bayesian method's Monte Carlo draws.
    """
    names = list(variants)
    if len(names) < 2:
        raise ExperimentInputError(
            f"got variants {names}; give the control first and at least one treatment"
        )
    if difference not in ("absolute", "relative"):
        raise ExperimentInputError(f"difference is {difference!r}; use 'absolute' or 'relative'")
    if method not in ("frequentist", "sequential", "bayesian"):
        raise ExperimentInputError(
            f"method is {method!r}; use 'frequentist', 'sequential' or 'bayesian'"
        )
    _check_settings(alpha, srm_threshold, seed, mixing_sd)
    kinds = {kind_of(s) for s in variants.values()}
    if len(kinds) != 1:
        raise ExperimentInputError(f"variants mix summary kinds {sorted(kinds)}; use one kind")
    kind = kinds.pop()
    counts = {n: s.n for n, s in variants.items()}
    if units is not None:
        if set(units) != set(names):
            raise ExperimentInputError(
                f"units name variants {sorted(units)}; give one count per variant {names}"
            )
        counts = {n: units[n] for n in names}
    assumed = weights is None and not adaptive
    shares: Mapping[str, float]
    if adaptive:
        if weights is not None:
            raise ExperimentInputError(
                "adaptive allocation has no configured weights; drop weights or allocation"
            )
        total = sum(counts.values())
        shares = {n: (c / total if total else 1.0 / len(names)) for n, c in counts.items()}
    else:
        shares = {n: 1.0 / len(names) for n in names} if weights is None else weights
    srm = srm_check(counts, shares, threshold=srm_threshold)
    moments, adjustment = _moments(variants, covariates, kind)
    control, treatments = names[0], names[1:]
    checks = _guardrails(guardrails, control, treatments, alpha)
    notes: list[str] = []
    if assumed:
        notes.append("no weights given: the sample-ratio check assumed an even split")
    if adaptive:
        notes.append(
            "adaptive allocation (a bandit): traffic follows rewards, so there is no split "
            "to check; the sample-ratio check is skipped (its p-value is 1 by construction), "
            "and arms' samples are not exchangeable, so read lifts as indicative"
        )
    if covariates and adjustment is None:
        notes.append("CUPED skipped: a variant has fewer than 2 units")
    results = {}
    for name in treatments:
        result = _compare(
            name,
            (variants[control], moments[control]),
            (variants[name], moments[name]),
            kind=kind,
            adjusted=adjustment is not None,
            difference=difference,
            method=method,
            alpha=alpha,
            mixing_sd=mixing_sd,
            seed=seed,
        )
        verdict, significant = result.verdict, result.significant
        reasons = list(result.reasons)
        failed = [g for g, r in checks[name].items() if r.status == "fail"]
        if failed and verdict != "not_enough_data":
            verdict = "guardrail_failed"
            reasons.append(f"guardrail(s) failed: {', '.join(failed)}")
        if not srm.passed:
            verdict, significant = "blocked_srm", None
            reasons.insert(0, srm.reason or "sample-ratio mismatch")
        results[name] = _replace(result, verdict, significant, tuple(reasons), checks[name])
    return Analysis(
        kind,
        difference,
        method,
        alpha,
        control,
        srm,
        results,
        adjustment,
        mixing_sd,
        assumed,
        tuple(notes),
    )


def _replace(
    r: VariantResult,
    verdict: Verdict,
    significant: bool | None,
    reasons: tuple[str, ...],
    guardrails: Mapping[str, GuardrailTest],
) -> VariantResult:
    return replace(
        r, verdict=verdict, significant=significant, reasons=reasons, guardrails=guardrails
    )
