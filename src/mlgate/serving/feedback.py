"""Client feedback, and reading the prediction log back (bandits, monitors, the CLI).

Feedback arrives later, keyed by the ``request_id`` the server answered with, and is joined
to the log by ``(endpoint, request_id)``. It is not checked against the log when written:
the prediction it refers to may still be in a writer's queue.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mlgate.errors import InvalidRequestError
from mlgate.ledger.events import format_time
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log

__all__ = [
    "FeedbackItem",
    "labelled_predictions",
    "read_predictions",
    "record_feedback",
]

Clock = Callable[[], datetime]

# Statuses whose row carries a prediction the client received: the only rows that can
# earn a reward or be compared with a label ("error" and "shed" rows answered nothing).
_SERVED = ("ok", "fallback")
_MAX_READ_ROWS = 10_000
# None must reach the database as SQL NULL ("not logged", "no label"), not as the JSON
# document ``null`` that sa.JSON writes by default, so that IS NULL means what it says.
_NULLABLE_JSON = sa.JSON(none_as_null=True)
_INSERT_FEEDBACK = feedback.insert().values(label=sa.bindparam("label", type_=_NULLABLE_JSON))
_PREDICTION_COLUMNS = tuple(prediction_log.columns)


@dataclass(frozen=True, slots=True)
class FeedbackItem:
    """What a client learnt later about one prediction: its true label, a reward, or both."""

    request_id: str
    label: Any | None = None
    reward: float | None = None


def record_feedback(
    store: Store, endpoint: str, items: Sequence[FeedbackItem], clock: Clock
) -> int:
    """Validate every item, then store them all in one transaction; returns how many."""
    _check_endpoint(endpoint)
    rows = [_feedback_row(endpoint, index, item) for index, item in enumerate(items)]
    if not rows:
        return 0
    now = format_time(clock())
    for row in rows:
        row["created_at"] = now
    with store.write() as conn:
        conn.execute(_INSERT_FEEDBACK, rows)
    return len(rows)


def _feedback_row(endpoint: str, index: int, item: FeedbackItem) -> dict[str, Any]:
    where = f"feedback item {index}"
    request_id = item.request_id
    if not isinstance(request_id, str) or not 0 < len(request_id) <= 128:
        found = (
            f"{len(request_id)} characters"
            if isinstance(request_id, str)
            else type(request_id).__name__
        )
        raise InvalidRequestError(
            f"{where}: request_id must be the non-empty id (at most 128 characters) the "
            f"prediction answered with, got {found}"
        )
    where = f"{where} (request {request_id!r})"
    if item.label is None and item.reward is None:
        raise InvalidRequestError(f"{where}: give a label, a reward or both; it has neither")
    reward = item.reward
    if reward is not None:
        if isinstance(reward, bool) or not isinstance(reward, int | float):
            raise InvalidRequestError(
                f"{where}: reward must be a number, got {type(reward).__name__}"
            )
        if not math.isfinite(reward):
            raise InvalidRequestError(f"{where}: reward must be a finite number, got {reward}")
        reward = float(reward)
    if item.label is not None:
        try:
            json.dumps(item.label, allow_nan=False)
        except (TypeError, ValueError):
            raise InvalidRequestError(
                f"{where}: label must be JSON (string, finite number, boolean, list or "
                f"object), got {type(item.label).__name__} that is not"
            ) from None
    return {"endpoint": endpoint, "request_id": request_id, "label": item.label, "reward": reward}


def read_predictions(
    store: Store, endpoint: str, *, limit: int = 1000, since_id: int = 0
) -> list[dict[str, Any]]:
    """Rows of ``endpoint`` with id above ``since_id``, oldest first: page by the last id."""
    _check_limit(limit)
    query = (
        sa.select(*_PREDICTION_COLUMNS)
        .where(prediction_log.c.endpoint == endpoint, prediction_log.c.id > since_id)
        .order_by(prediction_log.c.id)
        .limit(limit)
    )
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def labelled_predictions(store: Store, endpoint: str, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest ``limit`` served predictions that have a label, oldest first, with ``label``.

    A request labelled more than once takes its latest label. Shadow rows are included
    (their ``shadow`` column says so): comparing a shadow with the primary is the point.
    """
    _check_limit(limit)
    latest = (
        sa.select(sa.func.max(feedback.c.id).label("id"))
        .where(feedback.c.endpoint == endpoint, feedback.c.label.is_not(None))
        .group_by(feedback.c.request_id)
        .subquery()
    )
    labels = (
        sa.select(feedback.c.request_id, feedback.c.label)
        .join(latest, feedback.c.id == latest.c.id)
        .subquery()
    )
    query = (
        sa.select(*_PREDICTION_COLUMNS, labels.c.label)
        .join_from(prediction_log, labels, prediction_log.c.request_id == labels.c.request_id)
        .where(prediction_log.c.endpoint == endpoint, prediction_log.c.status.in_(_SERVED))
        .order_by(prediction_log.c.id.desc())
        .limit(limit)
    )
    with store.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(query)]
    rows.reverse()
    return rows


def _check_endpoint(endpoint: str) -> None:
    if not isinstance(endpoint, str) or not 0 < len(endpoint) <= 128:
        raise InvalidRequestError(
            f"endpoint must be a name of 1 to 128 characters, got {endpoint!r:.140}"
        )


def _check_limit(limit: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= _MAX_READ_ROWS:
        raise InvalidRequestError(
            f"limit must be an integer from 1 to {_MAX_READ_ROWS}, got {limit!r}; "
            "page through longer logs with since_id"
        )
