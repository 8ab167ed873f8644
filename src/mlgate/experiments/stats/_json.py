"""An :class:`~._analyze.Analysis` as strict JSON, the shape ``mlgate experiment analyze`` prints.

JSON has no NaN or infinity, so a number that is not finite becomes null; every null a
caller may meet has a reason next to it (the result's ``reasons``, the SRM ``reason``). Keys
of one treatment's result::

    lift, ci, p_value, srm_p_value        the promised interface (ci = [low, high])
    significant, verdict, reasons         the decision, and why there is none
    p_value_kind                          "fixed_horizon", "always_valid" (sequential) or
                                          "fixed_horizon_reference" (Bayesian: for reference)
    control_n, treatment_n, control_mean, treatment_mean, test
    absolute, relative                    {"estimate", "ci"} on both scales, or null
    chance_to_beat_control, expected_loss, credible_interval, bayesian   (Bayesian only)
    guardrails                            {name: {status, p_value, relative_change, ...}}
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from mlgate.experiments.stats._lift import Estimate

if TYPE_CHECKING:
    from mlgate.experiments.stats._analyze import Analysis, VariantResult
    from mlgate.experiments.stats._guardrail import GuardrailTest

__all__ = ["analysis_to_json", "finite"]

_P_VALUE_KIND = {
    "frequentist": "fixed_horizon",
    "sequential": "always_valid",
    "bayesian": "fixed_horizon_reference",
}


def finite(x: float | None) -> float | None:
    """The number, or None where JSON cannot hold it (NaN, infinity)."""
    if x is None or not math.isfinite(x):
        return None
    return float(x)


def _estimate(e: Estimate | None) -> dict[str, object] | None:
    if e is None:
        return None
    return {"estimate": finite(e.estimate), "ci": [finite(e.low), finite(e.high)]}


def _guardrail(g: GuardrailTest) -> dict[str, object]:
    return {
        "status": g.status,
        "harm": g.harm,
        "tolerance": g.tolerance,
        "control_mean": finite(g.control_mean),
        "treatment_mean": finite(g.treatment_mean),
        "relative_change": finite(g.relative_change),
        "p_value": finite(g.p_value),
        "reason": g.reason,
    }


def _result(r: VariantResult, analysis: Analysis) -> dict[str, object]:
    out: dict[str, object] = {
        "lift": finite(r.lift),
        "ci": [finite(r.ci[0]), finite(r.ci[1])],
        "p_value": finite(r.p_value),
        "srm_p_value": finite(analysis.srm.p_value),
        "significant": r.significant,
        "verdict": r.verdict,
        "reasons": list(r.reasons),
        "p_value_kind": _P_VALUE_KIND[analysis.method],
        "difference": analysis.difference,
        "test": r.test,
        "control_n": r.control_n,
        "treatment_n": r.treatment_n,
        "control_mean": finite(r.control_mean),
        "treatment_mean": finite(r.treatment_mean),
        "absolute": _estimate(r.absolute),
        "relative": _estimate(r.relative),
        "guardrails": {name: _guardrail(g) for name, g in r.guardrails.items()},
    }
    b = r.bayesian
    if analysis.method == "bayesian":
        relative = analysis.difference == "relative"
        loss = None if b is None else (b.expected_loss_relative if relative else b.expected_loss)
        out["chance_to_beat_control"] = None if b is None else finite(b.chance_to_beat_control)
        out["expected_loss"] = finite(loss)
        out["credible_interval"] = out["ci"]
        out["bayesian"] = None if b is None else {
            "model": b.model,
            "chance_to_beat_control": finite(b.chance_to_beat_control),
            "expected_loss_absolute": finite(b.expected_loss),
            "expected_loss_relative": finite(b.expected_loss_relative),
            "credible_interval_absolute": _estimate(b.absolute),
            "credible_interval_relative": _estimate(b.relative),
            "draws": b.draws,
            "seed": b.seed,
        }  # fmt: skip
    return out


def analysis_to_json(a: Analysis) -> dict[str, object]:
    srm = a.srm
    guardrails: dict[str, dict[str, object]] = {}
    failed: set[str] = set()
    for variant, result in a.results.items():
        for name, g in result.guardrails.items():
            guardrails.setdefault(name, {})[variant] = _guardrail(g)
            if g.status == "fail":
                failed.add(name)
    out: dict[str, object] = {
        "kind": a.kind,
        "difference": a.difference,
        "method": a.method,
        "alpha": a.alpha,
        "control": a.control,
        "blocked": a.blocked,
        "verdict": "blocked_srm" if a.blocked else ("guardrail_failed" if failed else "analysed"),
        "srm": {
            "p_value": finite(srm.p_value),
            "statistic": finite(srm.statistic),
            "passed": srm.passed,
            "threshold": srm.threshold,
            "observed": dict(srm.observed),
            "expected": {k: finite(v) for k, v in srm.expected.items()},
            "tested": list(srm.tested),
            "weights_assumed": a.weights_assumed,
            "reason": srm.reason,
        },
        "results": {name: _result(r, a) for name, r in a.results.items()},
        "guardrails": guardrails,
        "cuped": None,
        "notes": list(a.notes),
    }
    if a.cuped is not None:
        out["cuped"] = {
            "theta": finite(a.cuped.theta),
            "covariate_mean": finite(a.cuped.covariate_mean),
            "variance_reduction": finite(a.cuped.variance_reduction),
        }
    if a.method == "sequential":
        out["sequential"] = {
            "mixing_sd": a.mixing_sd,
            "mixing_sd_units": "metric standard deviations",
        }
    return out
