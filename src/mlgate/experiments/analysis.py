"""The experiment-analysis document: parse and validate it, analyse it, answer in strict JSON.

``mlgate experiment analyze FILE --json`` and the admin API hand the parsed JSON document to
:func:`analyze_document`; Python callers with summaries in hand use :func:`analyze` (from
:mod:`mlgate.experiments.stats`) directly. The document::

    {"kind": "mean" | "proportion" | "ratio",           required
     "difference": "absolute" | "relative",             default "absolute"
     "method": "frequentist" | "sequential" | "bayesian",   default "frequentist"
     "alpha": 0.05,                                      default 0.05
     "weights": {"control": 0.5, "treatment": 0.5},     default: an even split (noted)
     "srm_threshold": 0.001, "mixing_sd": 0.05, "seed": 0,    optional
     "variants": {"control": {...}, "treatment": {...}},     the FIRST is the control
     "guardrails": {"error_rate": {"kind": "proportion", "harm": "increase",
                                   "tolerance": 0.0, "variants": {...}}}}   optional

A variant is ``{"n", "sum", "sum_squares"}`` for a mean, ``{"n", "sum"}`` (sum = units with
the event) for a proportion, and ``{"n", "numerator": {"sum", "sum_squares"}, "denominator":
{"sum", "sum_squares"}, "sum_products"}`` for a ratio; means and proportions may add
``"covariate": {"sum", "sum_squares", "sum_products"}`` (pre-period, for CUPED) in every
variant. Unknown keys are errors, not ignored: a misspelt ``"weigths"`` would otherwise
silently turn the sample-ratio check into an even-split one. Every error is an
:class:`~mlgate.errors.ExperimentInputError` whose message starts with the path of the bad
field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar, cast

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import (
    DEFAULT_MIXING_SD,
    DEFAULT_SRM_THRESHOLD,
    Analysis,
    CovariateSummary,
    Difference,
    Guardrail,
    Harm,
    Kind,
    MeanSummary,
    Method,
    ProportionSummary,
    RatioSummary,
    Summary,
    analyze,
)
from mlgate.experiments.stats._summaries import check_number

__all__ = ["Analysis", "analyze", "analyze_document", "parse_variants"]

# An analysis costs work per variant (Bayesian draws): bound what one request may ask.
MAX_VARIANTS = 20
MAX_GUARDRAILS = 20
_TOP = {
    "kind", "difference", "method", "alpha", "weights", "variants", "guardrails",
    "srm_threshold", "mixing_sd", "seed", "units", "allocation",
}  # fmt: skip
_VARIANT = {
    "mean": ({"n", "sum", "sum_squares"}, {"covariate"}),
    "proportion": ({"n", "sum"}, {"covariate"}),
    "ratio": ({"n", "numerator", "denominator", "sum_products"}, set()),
}
_GUARDRAIL = ({"kind", "harm", "variants"}, {"tolerance"})

T = TypeVar("T")


def _at(path: str, build: Callable[[], T]) -> T:
    """Run ``build``, prefixing any input error with the document path it concerns."""
    try:
        return build()
    except ExperimentInputError as exc:
        raise ExperimentInputError(f"{path}: {exc}") from None


def _mapping(path: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ExperimentInputError(f"{path} must be a JSON object, got {type(value).__name__}")
    return cast(Mapping[str, Any], value)


def _keys(path: str, value: Mapping[str, Any], required: set[str], optional: set[str]) -> None:
    unknown = sorted(set(value) - required - optional)
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise ExperimentInputError(f"{path}: unknown key(s) {unknown}; allowed here: {allowed}")
    missing = sorted(required - set(value))
    if missing:
        raise ExperimentInputError(f"{path}: missing key(s) {missing}")


def _choice(path: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ExperimentInputError(f"{path} is {value!r}; use one of {', '.join(allowed)}")
    return value


def _summary(path: str, kind: str, raw: object) -> tuple[Summary, CovariateSummary | None]:
    v = _mapping(path, raw)
    required, optional = _VARIANT[kind]
    _keys(path, v, required, optional)
    summary: Summary
    if kind == "mean":
        summary = _at(path, lambda: MeanSummary(v["n"], v["sum"], v["sum_squares"]))
    elif kind == "proportion":
        summary = _at(path, lambda: ProportionSummary(v["n"], v["sum"]))
    else:
        num = _mapping(f"{path}.numerator", v["numerator"])
        den = _mapping(f"{path}.denominator", v["denominator"])
        _keys(f"{path}.numerator", num, {"sum", "sum_squares"}, set())
        _keys(f"{path}.denominator", den, {"sum", "sum_squares"}, set())
        summary = _at(
            path,
            lambda: RatioSummary(
                v["n"], num["sum"], num["sum_squares"], den["sum"], den["sum_squares"],
                v["sum_products"],
            ),
        )  # fmt: skip
    covariate = None
    if "covariate" in v:
        c = _mapping(f"{path}.covariate", v["covariate"])
        _keys(f"{path}.covariate", c, {"sum", "sum_squares", "sum_products"}, set())
        covariate = _at(
            path, lambda: CovariateSummary(c["sum"], c["sum_squares"], c["sum_products"])
        )
    return summary, covariate


def parse_variants(
    path: str, kind: str, raw: object
) -> tuple[dict[str, Summary], dict[str, CovariateSummary] | None]:
    """The summaries of a ``variants`` object (in document order), and covariates if any."""
    variants = _mapping(path, raw)
    if len(variants) < 2:
        raise ExperimentInputError(
            f"{path} holds {sorted(variants)}; give the control first, then at least one treatment"
        )
    summaries: dict[str, Summary] = {}
    covariates: dict[str, CovariateSummary] = {}
    for name, value in variants.items():
        summaries[name], covariate = _summary(f"{path}.{name}", kind, value)
        if covariate is not None:
            covariates[name] = covariate
    if covariates and len(covariates) != len(summaries):
        missing = sorted(set(summaries) - set(covariates))
        raise ExperimentInputError(
            f"{path}: {missing} have no covariate; CUPED needs one in every variant, or none"
        )
    return summaries, covariates or None


def _guardrails(raw: object) -> list[Guardrail]:
    out = []
    for name, value in _mapping("guardrails", raw).items():
        path = f"guardrails.{name}"
        g = _mapping(path, value)
        _keys(path, g, *_GUARDRAIL)
        kind = _choice(f"{path}.kind", g["kind"], ("mean", "proportion", "ratio"))
        harm = cast(Harm, _choice(f"{path}.harm", g["harm"], ("increase", "decrease")))
        tolerance = _at(path, partial(check_number, "tolerance", g.get("tolerance", 0.0)))
        variants, covariates = parse_variants(f"{path}.variants", kind, g["variants"])
        if covariates:
            raise ExperimentInputError(f"{path}.variants: guardrails take no covariate")
        out.append(Guardrail(name, harm, variants, tolerance))
    return out


def analyze_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an analysis document, analyse it, and return the strict-JSON answer.

    ``answer["results"][treatment]`` holds ``lift``, ``ci`` ([low, high]), ``p_value`` and
    ``srm_p_value`` for every variant after the first, plus the keys listed in
    :mod:`mlgate.experiments.stats._json`.
    """
    d = _mapping("document", doc)
    _keys("document", d, {"kind", "variants"}, _TOP - {"kind", "variants"})
    kind = cast(Kind, _choice("kind", d["kind"], ("mean", "proportion", "ratio")))
    difference = cast(
        Difference, _choice("difference", d.get("difference", "absolute"), ("absolute", "relative"))
    )
    method = cast(
        Method,
        _choice(
            "method", d.get("method", "frequentist"), ("frequentist", "sequential", "bayesian")
        ),
    )
    alpha = check_number("alpha", d.get("alpha", 0.05))
    srm_threshold = check_number("srm_threshold", d.get("srm_threshold", DEFAULT_SRM_THRESHOLD))
    mixing_sd = check_number("mixing_sd", d.get("mixing_sd", DEFAULT_MIXING_SD))
    seed = d.get("seed", 0)
    for key, limit in (("variants", MAX_VARIANTS), ("guardrails", MAX_GUARDRAILS)):
        if isinstance(d.get(key), Mapping) and len(d[key]) > limit:
            raise ExperimentInputError(
                f"{key} has {len(d[key])} entries; analyse at most {limit} per document"
            )
    variants, covariates = parse_variants("variants", kind, d["variants"])
    weights = None
    if "weights" in d:
        weights = {
            name: check_number(f"weights.{name}", value)
            for name, value in _mapping("weights", d["weights"]).items()
        }
    guardrails = _guardrails(d["guardrails"]) if "guardrails" in d else []
    units = None
    if "units" in d:
        units = {}
        for name, value in _mapping("units", d["units"]).items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ExperimentInputError(
                    f"units.{name} must be a count of randomised units (an integer >= 0), "
                    f"got {value!r}"
                )
            units[name] = value
    allocation = _choice("allocation", d.get("allocation", "fixed"), ("fixed", "adaptive"))
    analysis = analyze(
        variants, difference=difference, method=method, alpha=alpha, weights=weights,
        covariates=covariates, guardrails=guardrails, srm_threshold=srm_threshold,
        mixing_sd=mixing_sd, seed=seed, units=units, adaptive=allocation == "adaptive",
    )  # fmt: skip
    return analysis.to_json()
