"""Reading a canary's samples back from the prediction log and feedback.

Requests are attributed to the variant the *split* chose, read from the logged route
(``split:weighted→4``, ``split:sticky user bucket→4:fallback``), not to the ``version``
column: a request that failed is logged under version ``-``, and one the candidate failed
and a fallback answered is logged under the fallback's version. Counting those against the
baseline would hide exactly the failures a canary exists to catch. So:

- only primary rows the split routed count: shadow rows, pinned ``/versions/N`` calls and
  rows of other policies are left out (they were not assigned at random);
- ``ok`` is a success; ``error``, ``fallback`` and ``circuit_open`` (the variant's breaker
  refused it) are errors of the routed variant; ``shed``, ``limited`` and ``invalid`` say
  nothing about the model and are left out;
- the prediction of a row is the first number of its first logged output (or of the
  output named in the config); rows without logged outputs give none;
- a reward belongs to an ``ok`` row (its answer came from the variant); a request with
  several rewards counts once, with their mean.

At most ``limit`` rows are read per variant, the newest ones, so a judgement costs the same
on a busy endpoint as on a quiet one. Times are the log's fixed-width UTC text, which sorts
and compares as text on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from mlgate.experiments.canary.judge import Observations
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log

__all__ = ["WindowSamples", "read_samples", "variant_of_route"]

_COUNTED = ("ok", "error", "fallback", "circuit_open")
_ERRORS = frozenset({"error", "fallback", "circuit_open"})
_ARROW = "→"


@dataclass(frozen=True)
class WindowSamples:
    """What a judgement compares: both versions' observations over one window."""

    baseline: Observations
    canary: Observations
    since: str
    until: str


def variant_of_route(route: str) -> str | None:
    """The split target in a logged route, or None when the row was not split-routed."""
    if not route.startswith("split:") or _ARROW not in route:
        return None
    return route.rsplit(_ARROW, 1)[1].split(":", 1)[0]


def read_samples(
    store: Store,
    endpoint: str,
    *,
    baseline: str,
    candidate: str,
    since: str,
    until: str,
    limit: int,
    output: str | None = None,
) -> WindowSamples:
    """Both versions' observations from rows logged in ``[since, until)``."""
    with store.read() as conn:
        found = {
            target: _read_variant(conn, endpoint, target, since, until, limit, output)
            for target in (baseline, candidate)
        }
    return WindowSamples(found[baseline], found[candidate], since, until)


def _read_variant(
    conn: sa.Connection,
    endpoint: str,
    target: str,
    since: str,
    until: str,
    limit: int,
    output: str | None,
) -> Observations:
    route = prediction_log.c.route
    rows = (
        sa.select(
            prediction_log.c.request_id,
            prediction_log.c.status,
            prediction_log.c.latency_ms,
            prediction_log.c.outputs,
        )
        .where(
            prediction_log.c.endpoint == endpoint,
            prediction_log.c.shadow == sa.false(),
            prediction_log.c.status.in_(_COUNTED),
            prediction_log.c.created_at >= since,
            prediction_log.c.created_at < until,
            route.like("split:%"),
            sa.or_(route.like(f"%{_ARROW}{target}"), route.like(f"%{_ARROW}{target}:%")),
        )
        .order_by(prediction_log.c.id.desc())
        .limit(limit)
        .subquery()
    )
    errors: list[float] = []
    latency: list[float] = []
    predictions: list[float] = []
    served: set[str] = set()
    for request_id, status, latency_ms, outputs in conn.execute(sa.select(rows)):
        errors.append(1.0 if status in _ERRORS else 0.0)
        latency.append(float(latency_ms))
        if status == "ok":
            served.add(str(request_id))
            value = _first_number(outputs, output)
            if value is not None:
                predictions.append(value)
    rewards_by_request: dict[str, list[float]] = {}
    rewarded = sa.select(feedback.c.request_id, feedback.c.reward).where(
        feedback.c.endpoint == endpoint,
        feedback.c.reward.is_not(None),
        feedback.c.request_id.in_(sa.select(rows.c.request_id).where(rows.c.status == "ok")),
    )
    for request_id, reward in conn.execute(rewarded):
        if str(request_id) in served:
            rewards_by_request.setdefault(str(request_id), []).append(float(reward))
    rewards = [math.fsum(r) / len(r) for r in rewards_by_request.values()]
    return Observations.of(
        errors=errors, latency_ms=latency, predictions=predictions, rewards=rewards
    )


def _first_number(outputs: Any, name: str | None) -> float | None:
    """The first number of the named (or first) output, depth first; None if there is none."""
    if not isinstance(outputs, Mapping) or not outputs:
        return None
    value = outputs.get(name) if name is not None else next(iter(outputs.values()))
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None
