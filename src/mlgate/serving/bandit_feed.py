"""Teaching a routing bandit from feedback, the same way in every server process.

A bandit's state is not stored as such: it is a fold of two durable streams, so every
process holds the same learned state without any of them owning it, and a restart
rebuilds it from the rows:

* **rewards**: feedback joined to the request's prediction-log row, credited to the
  arm the bandit *chose* (read from the logged route, ``bandit:<reason>→<arm>``), not
  to whichever version answered; a request's first reward counts, later ones for the
  same request are ignored (a retried POST must not count twice);
* **failures**: a bandit-routed request that failed (``error``, ``circuit_open``) or was
  answered by a fallback is a reward of 0 for the chosen arm, logged or not: a broken arm
  earns no feedback, and without this it would look untried and win every pull.

The fold's inputs are sufficient statistics (counts, sums, X'X, X'y), which add up in any
order, so processes that fold the same rows in different passes hold the same state.

Each pass reads only rows after the last folded one, in a worker thread, into a private
*learner*; the event loop's policy then takes the learner's state in one reference swap.
The watermark is ``(created_at, id)``, and a row is read only once it is ``settle_s``
old: ids are not commit order (PostgreSQL hands them out before commit, and prediction
rows are written in batches up to a flush interval after their request), so an id
watermark would skip a row that commits late for good, while every row stamped more than
``settle_s`` ago has been written (or dropped) by then. A reward can also arrive before
its prediction row: the fold stops there and retries next pass, and gives the reward up
once it is older than ``grace_s``, because the log is lossy and that row may not come.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from mlgate.errors import ExperimentInputError
from mlgate.ledger.events import format_time
from mlgate.serving.router import routed_target
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log

__all__ = ["BanditFeed", "LearningPolicy"]

logger = logging.getLogger(__name__)

_FAILED = ("error", "circuit_open", "fallback")
_PAGE_ROWS = 5_000
# A context value beyond this cannot be a sensible feature; one such row would overflow
# a linear policy's X'X and poison its state for every later pull.
MAX_CONTEXT_MAGNITUDE = 1e6


class LearningPolicy(Protocol):
    """What the feed needs of a policy (every ``mlgate.experiments`` bandit has it)."""

    def update_many(
        self,
        arms: Sequence[Any],
        rewards: np.ndarray,
        contexts: np.ndarray | None = None,
    ) -> None: ...

    def update(self, arm: Any, reward: float, context: Any = None) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


class BanditFeed:
    """Folds one endpoint's rewards and failures into a learner (``fold``: worker thread).

    ``arms`` are the route's arms; a logged route names its arm as text, so ``str(arm)``
    must be unique. ``dimension`` is a contextual policy's context length (None
    otherwise): a row logged with another length (an older spec) is skipped.
    """

    def __init__(
        self,
        store: Store,
        endpoint: str,
        learner: LearningPolicy,
        arms: Sequence[Any],
        *,
        dimension: int | None,
        clock: Callable[[], datetime],
        grace_s: float = 30.0,
        settle_s: float = 5.0,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._learner = learner
        self._arms = {str(arm): arm for arm in arms}
        self._dimension = dimension
        self._clock = clock
        self._grace = timedelta(seconds=grace_s)
        self._settle = timedelta(seconds=settle_s)
        self._reward_mark: tuple[str, int] = ("", 0)  # (created_at, id) of the last folded
        self._failure_mark: tuple[str, int] = ("", 0)
        self._lock = threading.Lock()
        self.folded = 0
        self.refused = 0  # rewards the policy refused (say, 5.0 for a Bernoulli bandit)

    @property
    def watermark(self) -> int:
        """The id of the last feedback folded (or given up on)."""
        return self._reward_mark[1]

    def fold(self) -> dict[str, Any] | None:
        """Fold new rewards and failures; the learner's new state, or None if unchanged.

        A feed outlives snapshots, and a poll and a deploy's refresh may fold at once:
        the lock keeps one fold at a time.
        """
        with self._lock:
            return self._fold()

    def _fold(self) -> dict[str, Any] | None:
        now = self._clock()
        settled = format_time(now - self._settle)
        cutoff = format_time(now - self._grace)
        changed = False
        while True:
            rows = self._failures(settled)
            if rows:
                self._failure_mark = (rows[-1].created_at, rows[-1].id)
                changed |= self._learn([(r.route, 0.0, r.context) for r in rows]) > 0
            if len(rows) < _PAGE_ROWS:
                break
        while True:
            rows = self._rewards(settled)
            events, complete = self._settle_rewards(rows, cutoff)
            changed |= self._learn(events) > 0
            if not complete or len(rows) < _PAGE_ROWS:
                break
        return self._learner.state() if changed else None

    def _failures(self, settled: str) -> list[Any]:
        query = (
            sa.select(
                prediction_log.c.id,
                prediction_log.c.created_at,
                prediction_log.c.route,
                prediction_log.c.context,
            )
            .where(
                prediction_log.c.endpoint == self._endpoint,
                _after(prediction_log, self._failure_mark),
                prediction_log.c.shadow == sa.false(),
                prediction_log.c.status.in_(_FAILED),
                prediction_log.c.route.like("bandit:%"),
                prediction_log.c.created_at <= settled,
            )
            .order_by(prediction_log.c.created_at, prediction_log.c.id)
            .limit(_PAGE_ROWS)
        )
        with self._store.read() as conn:
            return list(conn.execute(query))

    def _rewards(self, settled: str) -> list[Any]:
        """New first rewards, each with its request's first non-shadow log row, if any."""
        earlier = feedback.alias("earlier")
        first_reward = ~sa.exists().where(
            earlier.c.endpoint == feedback.c.endpoint,
            earlier.c.request_id == feedback.c.request_id,
            earlier.c.reward.is_not(None),
            earlier.c.id < feedback.c.id,
        ).correlate(feedback)
        logged = prediction_log.alias("logged")
        first_row = (
            sa.select(sa.func.min(logged.c.id))
            .where(
                logged.c.endpoint == feedback.c.endpoint,
                logged.c.request_id == feedback.c.request_id,
                logged.c.shadow == sa.false(),
            )
            .correlate(feedback)
            .scalar_subquery()
        )
        query = (
            sa.select(
                feedback.c.id,
                feedback.c.reward,
                feedback.c.created_at,
                prediction_log.c.id.label("log_id"),
                prediction_log.c.route,
                prediction_log.c.status,
                prediction_log.c.context,
            )
            .select_from(feedback)
            .outerjoin(prediction_log, prediction_log.c.id == first_row)
            .where(
                feedback.c.endpoint == self._endpoint,
                _after(feedback, self._reward_mark),
                feedback.c.reward.is_not(None),
                feedback.c.created_at <= settled,
                first_reward,
            )
            .order_by(feedback.c.created_at, feedback.c.id)
            .limit(_PAGE_ROWS)
        )
        with self._store.read() as conn:
            return list(conn.execute(query))

    def _settle_rewards(
        self, rows: list[Any], cutoff: str
    ) -> tuple[list[tuple[str, float, Any]], bool]:
        """Rewards to learn, advancing the watermark past what is settled.

        Only rewards of ``ok`` rows are learned: a failed or fallen-back request is
        already a 0 from the failure stream, whatever feedback says about the answer
        another version gave. ``complete`` is False when it stopped at a reward whose
        request is not logged yet.
        """
        events: list[tuple[str, float, Any]] = []
        for row in rows:
            if row.log_id is None and row.created_at > cutoff:
                return events, False
            self._reward_mark = (row.created_at, row.id)
            if row.log_id is not None and row.status == "ok":
                events.append((row.route, float(row.reward), row.context))
        return events, True

    def _learn(self, events: list[tuple[str, float, Any]]) -> int:
        """Learn what fits this bandit in one batch; a refused reward costs only itself."""
        arms: list[Any] = []
        rewards: list[float] = []
        contexts: list[list[float]] = []
        for route, reward, context in events:
            arm = self._arms.get(routed_target(route) or "")
            if arm is None:
                continue  # a route of an older spec, or of another policy
            if self._dimension is not None:
                if not _usable_context(context, self._dimension):
                    continue
                contexts.append(context)
            arms.append(arm)
            rewards.append(reward)
        if not arms:
            return 0
        matrix = np.asarray(contexts, dtype=np.float64) if contexts else None
        try:
            self._learner.update_many(arms, np.asarray(rewards, dtype=np.float64), matrix)
            self.folded += len(arms)
            return len(arms)
        except ExperimentInputError:
            pass  # the batch is checked whole before any of it is used: nothing was learned
        learned = 0
        for index, (arm, reward) in enumerate(zip(arms, rewards, strict=True)):
            try:
                self._learner.update(arm, reward, None if matrix is None else matrix[index])
                learned += 1
            except ExperimentInputError as exc:
                self.refused += 1
                if self.refused <= 10 or self.refused % 1000 == 0:  # not one line per row
                    logger.warning(
                        "bandit %r refused a reward (%d so far): %s",
                        self._endpoint,
                        self.refused,
                        exc,
                    )
        self.folded += learned
        return learned


def _after(table: sa.Table, mark: tuple[str, int]) -> sa.ColumnElement[bool]:
    """Rows after ``mark`` in (created_at, id) order (keyset pagination)."""
    stamp, ident = mark
    return sa.or_(
        table.c.created_at > stamp, sa.and_(table.c.created_at == stamp, table.c.id > ident)
    )


def _usable_context(context: Any, dimension: int) -> bool:
    return (
        isinstance(context, list)
        and len(context) == dimension
        and all(
            isinstance(v, int | float)
            and not isinstance(v, bool)
            and math.isfinite(v)
            and abs(v) <= MAX_CONTEXT_MAGNITUDE
            for v in context
        )
    )
