"""Endpoint specs: how one served model name maps to versions, declared in YAML.

Users write the spec by hand (``mlgate deploy endpoint.yaml``) and the server
stores it as JSON, so it is validated completely at deploy time: every mistake,
from weights that do not sum to 100 to a rule that does not parse, becomes one
:class:`PolicyError` naming the field and what to change, before any traffic
moves. The router then trusts the spec and does no checking on the hot path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from mlgate.errors import InvalidNameError, PolicyError
from mlgate.registry.records import check_alias_name, check_model_name
from mlgate.serving.rules import Rule, compile_rule

__all__ = [
    "AuthSpec",
    "BanditRoute",
    "BatchingSpec",
    "CascadeRoute",
    "CascadeStage",
    "CONTEXTUAL_ALGORITHMS",
    "CircuitBreakerSpec",
    "ContextFeature",
    "DefaultResponse",
    "EndpointSpec",
    "EnsembleRoute",
    "FallbackSpec",
    "LoggingSpec",
    "RouteKind",
    "RouteSpec",
    "RuleEntry",
    "ShadowSpec",
    "SplitRoute",
    "Variant",
    "default_endpoint",
    "endpoint_from_json",
    "endpoint_to_json",
    "parse_endpoint_yaml",
    "targets_of",
]

RouteKind = Literal["split", "rules", "ensemble", "cascade", "bandit", "target"]
_ROUTE_KINDS: tuple[RouteKind, ...] = ("split", "rules", "ensemble", "cascade", "bandit", "target")
_VERSION_TEXT = re.compile(r"[1-9][0-9]*")
_WEIGHT_TOTAL = 100.0
_WEIGHT_TOLERANCE = 1e-9
_MAX_REPORTED_ERRORS = 5


def _check_target(value: Any) -> int | str:
    """A version number, an alias, or ``latest``; digit strings are read as versions."""
    if isinstance(value, str) and _VERSION_TEXT.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, str):
        if value == "latest":
            return value
        try:
            return check_alias_name(value)
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from None
    raise ValueError(
        "a target is a version number (1, 2, ...), an alias such as 'champion', or 'latest'; "
        f"found {value!r}"
    )


Target = Annotated[int | str, PlainValidator(_check_target)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]


def _unique(targets: Iterable[int | str]) -> None:
    seen: set[int | str] = set()
    for target in targets:
        if target in seen:
            raise ValueError(f"target {target!r} is listed twice; list each target once")
        seen.add(target)


def _distinct(targets: tuple[int | str, ...]) -> tuple[int | str, ...]:
    _unique(targets)
    return targets


Targets = Annotated[tuple[Target, ...], AfterValidator(_distinct)]


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Variant(_Spec):
    target: Target
    weight: Weight


class SplitRoute(_Spec):
    """Weighted canary split; with ``sticky_key`` a user keeps their variant."""

    sticky_key: str | None = Field(default=None, min_length=1)
    variants: tuple[Variant, ...] = Field(min_length=1)

    @field_validator("variants")
    @classmethod
    def _weights_sum_to_100(cls, variants: tuple[Variant, ...]) -> tuple[Variant, ...]:
        _unique(v.target for v in variants)
        total = math.fsum(v.weight for v in variants)
        if abs(total - _WEIGHT_TOTAL) > _WEIGHT_TOLERANCE:
            raise ValueError(f"weights must sum to 100, found {total:.12g}")
        return variants


class RuleEntry(_Spec):
    """``{when: <rule>, target: t}`` or the closing ``{default: t}``."""

    when: str | None = None
    target: Target | None = None
    default: Target | None = None
    _rule: Rule | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _compile(self) -> Self:
        if self.default is not None:
            if self.when is not None or self.target is not None:
                raise ValueError("a default entry has only 'default: <target>'")
            return self
        if self.when is None or self.target is None:
            raise ValueError("each rule needs 'when: <rule>' and 'target: <target>'")
        try:
            self._rule = compile_rule(self.when)
        except PolicyError as exc:
            raise ValueError(str(exc)) from None
        return self

    @property
    def rule(self) -> Rule | None:
        """The compiled ``when``; None for the default entry."""
        return self._rule


class EnsembleRoute(_Spec):
    targets: Targets = Field(min_length=2)
    combine: Literal["mean", "weighted_mean", "majority"] = "mean"
    weights: tuple[Weight, ...] | None = None

    @model_validator(mode="after")
    def _check_weights(self) -> Self:
        if self.combine != "weighted_mean":
            if self.weights is not None:
                raise ValueError("weights are used only with 'combine: weighted_mean'; remove them")
        elif self.weights is None:
            raise ValueError("'combine: weighted_mean' needs weights, one per target")
        elif len(self.weights) != len(self.targets):
            raise ValueError(
                f"weights must have one entry per target: {len(self.targets)} targets, "
                f"found {len(self.weights)} weights"
            )
        elif not any(self.weights):
            raise ValueError("at least one ensemble weight must be above 0")
        return self


class CascadeStage(_Spec):
    target: Target
    min_confidence: float | None = Field(default=None, gt=0.0, le=1.0)


class CascadeRoute(_Spec):
    """Cheap models first: a stage answers when its confidence reaches ``min_confidence``."""

    stages: tuple[CascadeStage, ...] = Field(min_length=2)
    output: str = Field(default="probabilities", min_length=1)

    @field_validator("stages")
    @classmethod
    def _check_stages(cls, stages: tuple[CascadeStage, ...]) -> tuple[CascadeStage, ...]:
        _unique(s.target for s in stages)
        for index, stage in enumerate(stages[:-1]):
            if stage.min_confidence is None:
                raise ValueError(
                    f"stage {index} needs min_confidence in (0, 1]: only the last stage "
                    "answers unconditionally"
                )
        if stages[-1].min_confidence is not None:
            raise ValueError("the last stage always answers; remove its min_confidence")
        return stages


BanditAlgorithm = Literal["epsilon_greedy", "ucb1", "thompson", "linucb", "linear_thompson"]
CONTEXTUAL_ALGORITHMS: frozenset[str] = frozenset({"linucb", "linear_thompson"})


class ContextFeature(_Spec):
    """A categorical request attribute, one-hot encoded over ``categories``."""

    name: str = Field(min_length=1, max_length=128)
    categories: tuple[str, ...] = Field(min_length=1)


class BanditRoute(_Spec):
    """An online policy over ``arms``, learning from feedback rewards.

    ``features`` (contextual algorithms only) name the request attributes (OIP
    parameters or ``x-mlgate-<name>`` headers) the policy routes by: a plain name is a
    number, ``{name, categories}`` a category. ``min_share``/``max_share`` bound every
    arm's share of traffic, so a bad arm is never starved of evidence nor a lucky one
    handed everything.
    """

    algorithm: BanditAlgorithm = "epsilon_greedy"
    arms: Targets = Field(min_length=2)
    epsilon: Fraction = 0.1
    alpha: float = Field(default=1.0, gt=0.0, le=100.0, allow_inf_nan=False)
    likelihood: Literal["bernoulli", "gaussian"] = "bernoulli"
    features: tuple[str | ContextFeature, ...] = ()
    min_share: Fraction = 0.0
    max_share: Fraction = 1.0
    reward: str = Field(default="reward", min_length=1)
    seed: int | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        contextual = self.algorithm in CONTEXTUAL_ALGORITHMS
        if contextual and not self.features:
            raise ValueError(
                f"{self.algorithm} routes by request attributes: list them under features"
            )
        if not contextual and self.features:
            raise ValueError(
                f"{self.algorithm} does not use features; use linucb or linear_thompson "
                "to route by request attributes, or remove features"
            )
        names = [f if isinstance(f, str) else f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"features lists a name twice: {names}")
        arms = len(self.arms)
        if self.min_share * arms > 1.0 + 1e-9 or self.max_share * arms < 1.0 - 1e-9:
            raise ValueError(
                f"with {arms} arms, min_share must be at most {1 / arms:.4g} and max_share "
                f"at least {1 / arms:.4g}; found {self.min_share} and {self.max_share}"
            )
        if self.min_share > self.max_share:
            raise ValueError("min_share must not exceed max_share")
        return self


class RouteSpec(_Spec):
    """Exactly one primary policy; ``route: champion`` is short for ``target: champion``."""

    split: SplitRoute | None = None
    rules: tuple[RuleEntry, ...] | None = None
    ensemble: EnsembleRoute | None = None
    cascade: CascadeRoute | None = None
    bandit: BanditRoute | None = None
    target: Target | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, int | str):
            return {"target": data}
        return data

    @field_validator("rules")
    @classmethod
    def _default_last(cls, rules: tuple[RuleEntry, ...] | None) -> tuple[RuleEntry, ...] | None:
        if rules is None:
            return None
        defaults = [i for i, entry in enumerate(rules) if entry.default is not None]
        if defaults != [len(rules) - 1]:
            raise ValueError(
                "rules need exactly one '{default: <target>}' entry, as the last one, for "
                f"requests no rule matches; found it at positions {defaults}"
            )
        return rules

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        chosen = [kind for kind in _ROUTE_KINDS if getattr(self, kind) is not None]
        if len(chosen) != 1:
            raise ValueError(
                f"choose exactly one of {', '.join(_ROUTE_KINDS)}; found "
                f"{', '.join(chosen) if chosen else 'none'}"
            )
        return self

    @property
    def kind(self) -> RouteKind:
        return next(kind for kind in _ROUTE_KINDS if getattr(self, kind) is not None)

    def targets(self) -> tuple[int | str, ...]:
        """Every target the primary policy can send a request to, in spec order."""
        if self.split is not None:
            return tuple(v.target for v in self.split.variants)
        if self.rules is not None:
            return tuple(t for e in self.rules for t in (e.target, e.default) if t is not None)
        if self.ensemble is not None:
            return self.ensemble.targets
        if self.cascade is not None:
            return tuple(stage.target for stage in self.cascade.stages)
        if self.bandit is not None:
            return self.bandit.arms
        assert self.target is not None  # guaranteed by _exactly_one
        return (self.target,)


class ShadowSpec(_Spec):
    """A version mirrored a ``fraction`` of requests, asynchronously; never answers."""

    target: Target
    fraction: Fraction = 1.0


class DefaultResponse(_Spec):
    outputs: dict[str, list[Any]] = Field(min_length=1)


class FallbackSpec(_Spec):
    targets: Targets = ()
    default: DefaultResponse | None = None


class BatchingSpec(_Spec):
    max_batch_size: int = Field(default=64, ge=1)
    max_wait_ms: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    max_queue: int = Field(default=1024, ge=1)
    # Calls expected to finish within this run on the event loop, not a thread; 0: never.
    inline_budget_ms: float = Field(default=2.0, ge=0.0, le=10.0, allow_inf_nan=False)


class LoggingSpec(_Spec):
    sample_rate: Fraction = 1.0


class AuthSpec(_Spec):
    required: bool = False


class RateLimitSpec(_Spec):
    """Per-client limit, answered with 429 and Retry-After once a client exceeds it.

    ``key`` names who a client is: ``client`` (the bearer token when one is sent,
    else the peer address) or the name of a request header such as ``x-api-key``.
    """

    requests_per_s: float = Field(gt=0.0, allow_inf_nan=False)
    burst: int = Field(default=10, ge=1)
    key: str = Field(default="client", min_length=1)


class CircuitBreakerSpec(_Spec):
    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: float = Field(default=10.0, gt=0.0, allow_inf_nan=False)


class EndpointSpec(_Spec):
    name: str
    model: str = ""  # filled with ``name`` when left out
    timeout_ms: float = Field(default=1000.0, gt=0.0, allow_inf_nan=False)
    allow_non_finite: bool = False
    batching: BatchingSpec = BatchingSpec()
    logging: LoggingSpec = LoggingSpec()
    auth: AuthSpec = AuthSpec()
    route: RouteSpec = RouteSpec(target="champion")
    shadow: tuple[ShadowSpec, ...] = ()
    fallback: FallbackSpec = FallbackSpec()
    circuit_breaker: CircuitBreakerSpec = CircuitBreakerSpec()
    rate_limit: RateLimitSpec | None = None

    @model_validator(mode="before")
    @classmethod
    def _model_defaults_to_name(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("model") in (None, "") and "name" in data:
            return {**data, "model": data["name"]}
        return data

    @field_validator("name", "model")
    @classmethod
    def _model_name(cls, name: str) -> str:
        try:
            return check_model_name(name)
        except InvalidNameError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("shadow")
    @classmethod
    def _distinct_shadows(cls, shadows: tuple[ShadowSpec, ...]) -> tuple[ShadowSpec, ...]:
        _unique(s.target for s in shadows)
        return shadows

    @model_validator(mode="after")
    def _bandits_see_every_request(self) -> Self:
        # A bandit learns from the prediction log: a sampled log would hide failures (and
        # stall rewards for the grace period), biasing it toward arms that fail.
        if self.route.bandit is not None and self.logging.sample_rate < 1.0:
            raise ValueError(
                "a bandit route learns from the prediction log, so it needs "
                f"logging.sample_rate 1.0; found {self.logging.sample_rate}"
            )
        return self


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys; a second ``route:`` must be an error."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise PolicyError(
                    f"endpoint YAML repeats the key {key!r} at line {mark.line + 1}, "
                    f"column {mark.column + 1}; keep one"
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def parse_endpoint_yaml(text: str) -> EndpointSpec:
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass: no tags run code
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(f"endpoint YAML does not parse{where}: {problem}") from None
    if not isinstance(data, dict):
        raise PolicyError(
            "endpoint YAML must be a mapping with at least 'name: <model name>'; "
            f"found {type(data).__name__}"
        )
    return endpoint_from_json(data)


def endpoint_to_json(spec: EndpointSpec) -> dict[str, Any]:
    """The stored form; unset options are left out so the JSON reads like the YAML."""
    return spec.model_dump(mode="json", exclude_none=True)


def endpoint_from_json(data: Mapping[str, Any]) -> EndpointSpec:
    try:
        return EndpointSpec.model_validate(dict(data))
    except ValidationError as exc:
        raise _policy_error(exc) from None


def default_endpoint(model_name: str) -> EndpointSpec:
    """Zero configuration: every request goes to the ``champion`` alias."""
    return endpoint_from_json({"name": model_name})


def targets_of(spec: EndpointSpec) -> set[int | str]:
    """Every version or alias the spec names, so a deploy can check that each exists."""
    found: set[int | str] = set(spec.route.targets())
    found.update(shadow.target for shadow in spec.shadow)
    found.update(spec.fallback.targets)
    return found


def _policy_error(exc: ValidationError) -> PolicyError:
    """One message for every problem, each led by its path, e.g. ``shadow[0].fraction``."""
    paths: dict[str, list[str]] = {}  # the same message at several paths is said once
    for error in exc.errors(include_url=False):
        path = ""
        for part in error["loc"]:
            path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
        paths.setdefault(_describe(error), []).append(path or "endpoint")
    parts = [f"{', '.join(where)}: {what}" for what, where in paths.items()]
    if len(parts) > _MAX_REPORTED_ERRORS:
        parts[_MAX_REPORTED_ERRORS:] = [f"and {len(parts) - _MAX_REPORTED_ERRORS} more"]
    return PolicyError("endpoint spec is invalid: " + "; ".join(parts))


def _describe(error: Mapping[str, Any]) -> str:
    kind, message, value = error["type"], str(error["msg"]), error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "value_error":
        return message.removeprefix("Value error, ")
    if kind == "missing":
        return "required; add it"
    if kind == "extra_forbidden":
        return "unknown field; remove it or fix its spelling"
    if kind == "too_short":
        return f"needs at least {ctx.get('min_length')} entries, found {ctx.get('actual_length')}"
    found = f", found {value!r}" if isinstance(value, str | int | float | bool) else ""
    return f"{message[:1].lower()}{message[1:]}{found}"
