"""A live experiment's analysis, from an endpoint's prediction log and feedback.

The admin API and ``mlgate experiment live`` analyse a running endpoint by building
the very document ``mlgate experiment analyze FILE`` reads, from sums the database
computes (one grouped query, no rows shipped), so there is one analysis path to trust.

Per variant (a split's variant or a bandit's arm, in spec order; the first is the
control) the metric is the feedback reward of the requests the experiment assigned to
it, since the current revision was deployed unless told otherwise: for ``proportion``
every assigned request counts (failures too: intent to treat) and one without a reward
counts as 0 (a conversion that did not happen); for ``mean`` only rewarded requests
count. Sample-ratio checks count units (the sticky key's values; a request without one
is a unit of its own) when the split is sticky, because a sticky split assigns users,
not requests. Latency is a guardrail (harm: increase, 10% tolerance), so a variant that
wins on reward by being slow is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa

from mlgate.errors import EndpointNotFoundError, ExperimentInputError
from mlgate.experiments.analysis import analyze_document
from mlgate.ledger.events import format_time
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.router import ARROW
from mlgate.serving.spec import EndpointSpec
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log
from mlgate.workspace import Workspace

__all__ = ["VariantTotals", "analyze_endpoint", "live_document", "parse_since", "variant_totals"]

# Every status of a request a variant was assigned: its failures are its own.
_RANDOMISED_STATUSES = ("ok", "fallback", "error", "circuit_open")
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
    store: Store, endpoint: str, targets: tuple[str, ...], *, since: str | None = None
) -> dict[str, VariantTotals]:
    """Totals per target (as text) over the requests the experiment routed since ``since``.

    Rows are attributed by the target the split or bandit *chose*, read from the logged
    route (``...→<target>``), not by the version that answered: a variant whose request
    a fallback answered still owns that request (intent to treat). Pinned calls, shadows
    and rows of other policies were not randomised and are left out; so are sheds, which
    never reached a variant. A request's first reward counts, as the bandits count it.
    """
    first = (
        sa.select(feedback.c.request_id, sa.func.min(feedback.c.id).label("id"))
        .where(feedback.c.endpoint == endpoint, feedback.c.reward.is_not(None))
        .group_by(feedback.c.request_id)
        .subquery()
    )
    rewards = (
        sa.select(feedback.c.request_id, feedback.c.reward)
        .join(first, feedback.c.id == first.c.id)
        .subquery()
    )
    route = prediction_log.c.route
    target = sa.case(
        *[
            (
                sa.or_(
                    route.like(f"%{ARROW}{_escaped(t)}", escape="\\"),
                    route.like(f"%{ARROW}{_escaped(t)}:%", escape="\\"),
                ),
                t,
            )
            for t in targets
        ],
        else_=None,
    ).label("target")
    conditions = [
        prediction_log.c.endpoint == endpoint,
        prediction_log.c.shadow == sa.false(),
        prediction_log.c.status.in_(_RANDOMISED_STATUSES),
        sa.or_(route.like("split:%"), route.like("bandit:%")),
    ]
    if since is not None:
        conditions.append(prediction_log.c.created_at >= since)
    reward = rewards.c.reward
    latency = prediction_log.c.latency_ms
    unit = prediction_log.c.unit
    rows_by_target = (
        sa.select(
            target,
            sa.func.count(),
            # A row without a unit (no sticky key sent) is a unit of its own.
            sa.func.count(sa.distinct(unit)) + sa.func.sum(sa.case((unit.is_(None), 1), else_=0)),
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
        .group_by(target)
    )
    with store.read() as conn:
        rows = list(conn.execute(rows_by_target))
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
        if row[0] is not None
    }


def _escaped(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern (``_`` and ``%`` are wildcards there)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def live_document(
    store: Store,
    spec: EndpointSpec,
    *,
    kind: Literal["mean", "proportion"] = "proportion",
    difference: Literal["relative", "absolute"] = "relative",
    method: Literal["frequentist", "sequential", "bayesian"] = "sequential",
    alpha: float = 0.05,
    since: str | None = None,
) -> dict[str, Any]:
    """The analysis document of ``spec``'s running experiment.

    Raises ExperimentInputError when the endpoint runs no experiment, or when its
    rewards cannot be analysed as ``kind``.
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
    targets = tuple(target for target, _ in arms)
    totals = variant_totals(store, spec.name, targets, since=since)
    empty = VariantTotals(0, 0, 0, 0.0, 0.0, None, None, 0.0, 0.0)
    variants: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    units: dict[str, int] = {}
    for target, _ in arms:
        found = totals.get(target, empty)
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
    again; only its always-valid p-values stay honest under that. Without ``since`` the
    window starts at the current revision's deploy: the weights being checked are that
    revision's, and traffic before it was split differently (or not at all).
    """
    endpoints = EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock)
    deployed = endpoints.get(endpoint)
    if deployed is None:
        raise EndpointNotFoundError(
            f"no endpoint named {endpoint!r} is deployed; an experiment is a deployed split "
            "or bandit (see `mlgate endpoints list`)"
        )
    resolved = {target: str(version) for target, version in endpoints.check(deployed.spec).items()}
    document = live_document(
        workspace.store,
        deployed.spec,
        kind=kind,
        difference=difference,
        method=method,
        alpha=alpha,
        since=deployed.updated_at if since is None else since,
    )
    return {
        "endpoint": endpoint,
        "revision": deployed.revision,
        "since": deployed.updated_at if since is None else since,
        "versions": {target: resolved[target] for target in document["variants"]},
        "document": document,
        "analysis": analyze_document(document),
    }
