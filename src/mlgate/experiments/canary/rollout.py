"""The endpoint specs a canary deploys, as pure functions of its state.

Every spec keeps the original's other settings (timeouts, batching, logging, auth,
fallback, circuit breaker, rate limit, shadows) and changes only the route, so a canary
changes who answers and nothing else. Shadows of the candidate itself are dropped while
it takes primary traffic: mirroring a version onto itself only doubles its load.

Because the desired spec is a function of the stored state, the controller can compare
it with what is deployed and finish a step a crashed process left half done.
"""

from __future__ import annotations

from typing import Any

from mlgate.experiments.canary.status import CanaryStatus
from mlgate.serving.spec import EndpointSpec, endpoint_from_json, endpoint_to_json

__all__ = ["previous_spec", "promoted_spec", "spec_json", "split_spec", "wanted_spec"]


def split_spec(
    original: EndpointSpec,
    baseline: int,
    candidate: int,
    percent: float,
    sticky_key: str | None = None,
) -> EndpointSpec:
    """``original`` with its route replaced by baseline/candidate at ``percent`` to the latter."""
    split: dict[str, Any] = {
        "variants": [
            {"target": baseline, "weight": 100.0 - percent},
            {"target": candidate, "weight": percent},
        ]
    }
    if sticky_key is not None:
        split["sticky_key"] = sticky_key
    return _with_route(original, {"split": split}, candidate)


def promoted_spec(
    original: EndpointSpec, candidate: int, promote_alias: str | None
) -> EndpointSpec:
    """Where the endpoint goes once the canary passed every step.

    If the original routed to the alias that promotion moves (``champion``), the original
    spec is restored as it was: the alias now names the candidate. Otherwise the route
    names the candidate's version.
    """
    if promote_alias is not None and original.route.target == promote_alias:
        return _with_route(original, endpoint_to_json(original)["route"], candidate)
    return _with_route(original, {"target": candidate}, candidate)


def wanted_spec(status: CanaryStatus) -> EndpointSpec:
    """The endpoint spec ``status`` calls for."""
    original = endpoint_from_json(status.original_spec)
    cand = int(status.candidate)
    config = status.config
    if status.state == "promoted":
        return promoted_spec(original, cand, config.promote_alias)
    if status.state in ("rolled_back", "aborted"):
        return original
    percent = config.steps[status.step_index]
    return split_spec(original, int(status.baseline), cand, percent, config.sticky_key)


def previous_spec(status: CanaryStatus) -> EndpointSpec:
    """The spec of the state ``status`` came from: what a crash mid-change leaves deployed."""
    original = endpoint_from_json(status.original_spec)
    ended = status.state in ("rolled_back", "aborted")  # they leave the step they were at
    index = status.step_index if ended else status.step_index - 1
    if index < 0:
        return original
    config = status.config
    return split_spec(
        original,
        int(status.baseline),
        int(status.candidate),
        config.steps[index],
        config.sticky_key,
    )


def spec_json(spec: EndpointSpec) -> dict[str, Any]:
    """The stored form, for comparing a desired spec with the deployed one."""
    return endpoint_to_json(spec)


def _with_route(original: EndpointSpec, route: dict[str, Any], candidate: int) -> EndpointSpec:
    document = endpoint_to_json(original)
    document["route"] = route
    shadows = [s for s in document.get("shadow", []) if s.get("target") != candidate]
    document["shadow"] = shadows
    return endpoint_from_json(document)
