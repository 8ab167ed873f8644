"""A live experiment's analysis, from an endpoint's prediction log and feedback.

The admin API and ``mlgate experiment live`` analyse a running endpoint by building
the very document ``mlgate experiment analyze FILE`` reads, from sums the database
computes (one grouped query, no rows shipped), so there is one analysis path to trust.

Per variant (a split's variant or a bandit's arm, in spec order; the first is the
control) the metric is the feedback reward of served, non-shadow predictions: for
``proportion`` every served request counts and a request without a reward counts as
0 (a conversion that did not happen); for ``mean`` only rewarded requests count.
Sample-ratio checks count units (the sticky key's values) when the split is sticky,
because a sticky split assigns users, not requests. Latency is a guardrail (harm:
increase, 10% tolerance), so a variant that wins on reward by being slow is flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from mlgate.errors import ExperimentInputError
from mlgate.experiments.analysis import analyze_document
from mlgate.ledger.events import format_time
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.spec import EndpointSpec
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log
from mlgate.workspace import Workspace

__all__ = ["VariantTotals", "analyze_endpoint", "live_document", "parse_since", "variant_totals"]

_SERVED = ("ok", "fallback")
LATENCY_TOLERANCE = 0.10


@dataclass(frozen=True, slots=True)
class VariantTotals:
    """Sums over one version's served requests; enough for every analysis we run."""

    requests: int
    units: int
    rewarded: int
    reward_sum: float
    reward_sum_squares: float
    reward_min: float | None
    reward_max: float | None
    latency_sum: float
    latency_sum_squares: float


def parse_since(text: str) -> str:
    """``text`` (ISO 8601; a time without zone is UTC) in the log's own time format."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ExperimentInputError(
            f"since must be an ISO 8601 time such as 2026-11-27T09:00:00Z, got {text!r}"
        ) from None
    return format_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC))


def variant_totals(
    store: Store, endpoint: str, versions: tuple[str, ...], *, since: str | None = None
) -> dict[str, VariantTotals]:
    """Totals per logged version (its number as text) since ``since`` (RFC 3339)."""
    latest = (
        sa.select(feedback.c.request_id, sa.func.max(feedback.c.id).label("id"))
        .where(feedback.c.endpoint == endpoint, feedback.c.reward.is_not(None))
        .group_by(feedback.c.request_id)
        .subquery()
    )
    rewards = (
        sa.select(feedback.c.request_id, feedback.c.reward)
        .join(latest, feedback.c.id == latest.c.id)
        .subquery()
    )
    conditions = [
        prediction_log.c.endpoint == endpoint,
        prediction_log.c.shadow == sa.false(),
        prediction_log.c.status.in_(_SERVED),
        prediction_log.c.version.in_(versions),
    ]
    if since is not None:
        conditions.append(prediction_log.c.created_at >= since)
    reward = rewards.c.reward
    latency = prediction_log.c.latency_ms
    query = (
        sa.select(
            prediction_log.c.version,
            sa.func.count(),
            sa.func.count(sa.distinct(prediction_log.c.unit)),
            sa.func.count(reward),
            sa.func.coalesce(sa.func.sum(reward), 0.0),
            sa.func.coalesce(sa.func.sum(reward * reward), 0.0),
            sa.func.min(reward),
            sa.func.max(reward),
            sa.func.coalesce(sa.func.sum(latency), 0.0),
            sa.func.coalesce(sa.func.sum(latency * latency), 0.0),
        )
        .select_from(prediction_log)
        .outerjoin(rewards, rewards.c.request_id == prediction_log.c.request_id)
        .where(*conditions)
        .group_by(prediction_log.c.version)
    )
    with store.read() as conn:
        rows = list(conn.execute(query))
    return {
        str(row[0]): VariantTotals(
            requests=int(row[1]),
            units=int(row[2]),
            rewarded=int(row[3]),
            reward_sum=float(row[4]),
            reward_sum_squares=float(row[5]),
            reward_min=None if row[6] is None else float(row[6]),
            reward_max=None if row[7] is None else float(row[7]),
            latency_sum=float(row[8]),
            latency_sum_squares=float(row[9]),
        )
        for row in rows
    }


def live_document(
    store: Store,
    spec: EndpointSpec,
    version_of: Mapping[str, str],
    *,
    kind: Literal["mean", "proportion"] = "proportion",
    difference: Literal["relative", "absolute"] = "relative",
    method: Literal["frequentist", "sequential", "bayesian"] = "sequential",
    alpha: float = 0.05,
    since: str | None = None,
) -> dict[str, Any]:
    """The analysis document of ``spec``'s running experiment.

    ``version_of`` maps each target as text ("2", "champion") to the version number
    (as text) it resolves to now. Raises ExperimentInputError when the endpoint runs
    no experiment, or when its rewards cannot be analysed as ``kind``.
    """
    route = spec.route
    arms: list[tuple[str, float | None]]
    if route.split is not None:
        total = sum(v.weight for v in route.split.variants)
        arms = [(str(v.target), v.weight / total) for v in route.split.variants]
        sticky = route.split.sticky_key is not None
    elif route.bandit is not None:
        arms = [(str(arm), None) for arm in route.bandit.arms]
        sticky = False
    else:
        raise ExperimentInputError(
            f"endpoint {spec.name!r} routes by {route.kind}, not by an experiment; deploy a "
            "split (or a bandit) over the versions to compare, then analyse it"
        )
    missing = [target for target, _ in arms if target not in version_of]
    if missing:
        raise ExperimentInputError(
            f"targets {missing} of endpoint {spec.name!r} resolve to no version; fix the spec"
        )
    versions = tuple(version_of[target] for target, _ in arms)
    if len(set(versions)) != len(versions):
        raise ExperimentInputError(
            f"two variants of endpoint {spec.name!r} resolve to the same version {versions}: "
            "there is nothing to compare"
        )
    totals = variant_totals(store, spec.name, versions, since=since)
    empty = VariantTotals(0, 0, 0, 0.0, 0.0, None, None, 0.0, 0.0)
    variants: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    units: dict[str, int] = {}
    for target, _ in arms:
        found = totals.get(version_of[target], empty)
        variants[target] = _metric(spec.name, target, found, kind)
        latency[target] = {
            "n": found.requests,
            "sum": found.latency_sum,
            "sum_squares": found.latency_sum_squares,
        }
        units[target] = found.units if sticky else found.requests
    document: dict[str, Any] = {
        "kind": kind,
        "difference": difference,
        "method": method,
        "alpha": alpha,
        "variants": variants,
        "guardrails": {
            "latency_ms": {
                "kind": "mean",
                "harm": "increase",
                "tolerance": LATENCY_TOLERANCE,
                "variants": latency,
            }
        },
    }
    weights = {target: weight for target, weight in arms if weight is not None}
    if len(weights) == len(arms):
        document["weights"] = weights
        document["units"] = units
    else:
        document["allocation"] = "adaptive"
    return document


def _metric(endpoint: str, target: str, totals: VariantTotals, kind: str) -> dict[str, float]:
    if kind == "mean":
        return {
            "n": totals.rewarded,
            "sum": totals.reward_sum,
            "sum_squares": totals.reward_sum_squares,
        }
    low, high = totals.reward_min, totals.reward_max
    if (low is not None and low < 0.0) or (high is not None and high > 1.0):
        raise ExperimentInputError(
            f"rewards of endpoint {endpoint!r} (variant {target}) range over [{low}, {high}], "
            "not 0/1: analyse them with kind=mean"
        )
    return {"n": totals.requests, "sum": totals.reward_sum}


def analyze_endpoint(
    workspace: Workspace,
    endpoint: str,
    *,
    kind: Literal["mean", "proportion"] = "proportion",
    difference: Literal["relative", "absolute"] = "relative",
    method: Literal["frequentist", "sequential", "bayesian"] = "sequential",
    alpha: float = 0.05,
    since: str | None = None,
) -> dict[str, Any]:
    """Analyse ``endpoint``'s running experiment: ``{"endpoint", "document", "analysis"}``.

    Sequential is the default method because a live experiment is looked at again and
    again; only its always-valid p-values stay honest under that.
    """
    endpoints = EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock)
    deployed = endpoints.get(endpoint)
    if deployed is None:
        raise ExperimentInputError(
            f"no endpoint named {endpoint!r} is deployed; an experiment is a deployed split "
            "or bandit (see `mlgate endpoints list`)"
        )
    resolved = {target: str(version) for target, version in endpoints.check(deployed.spec).items()}
    document = live_document(
        workspace.store,
        deployed.spec,
        resolved,
        kind=kind,
        difference=difference,
        method=method,
        alpha=alpha,
        since=since,
    )
    return {
        "endpoint": endpoint,
        "revision": deployed.revision,
        "versions": {target: resolved[target] for target in document["variants"]},
        "document": document,
        "analysis": analyze_document(document),
    }
