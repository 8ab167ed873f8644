"""Teaching a routing bandit from feedback, the same way in every server process.

A bandit's state is not stored as such: it is a fold of the feedback table joined to
the prediction log (which arm answered, and for a contextual bandit which context it
saw), taken in feedback-id order. Every process folds the same rows in the same order,
so every process holds the same learned state without any of them owning it, a restart
rebuilds it from durable rows, and a crash loses nothing but a fold in progress.

Folding is incremental: each pass reads only feedback above the last folded id, in a
worker thread, into a private *learner* copy of the policy; the event loop's policy then
takes the learner's state in one reference swap. The hot path never waits on a database
and never sees a half-applied update.

A reward can arrive before its prediction row (the log is written in batches): the fold
stops at such a row and retries it next pass, and gives it up only once it is older than
``grace_s``, because the log is lossy by design and that row may never come.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import numpy as np
import sqlalchemy as sa

from mlgate.errors import ExperimentInputError
from mlgate.ledger.events import format_time
from mlgate.store.engine import Store
from mlgate.store.schema import feedback, prediction_log

__all__ = ["BanditFeed", "LearningPolicy"]

logger = logging.getLogger(__name__)

_SERVED = ("ok", "fallback")
_PAGE_ROWS = 5_000


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
    """Folds one endpoint's rewards into a learner; ``fold`` runs in a worker thread.

    ``arm_of_version`` maps a logged version (its number as text) to the arm that
    routes to it; rows of versions that are no arm (a fallback answered) are skipped.
    ``dimension`` is the context length of a contextual policy (None otherwise); a
    row whose logged context has another length (logged under an older spec) is skipped.
    """

    def __init__(
        self,
        store: Store,
        endpoint: str,
        learner: LearningPolicy,
        arm_of_version: Mapping[str, Any],
        *,
        dimension: int | None,
        clock: Callable[[], datetime],
        grace_s: float = 30.0,
    ) -> None:
        self._store = store
        self._endpoint = endpoint
        self._learner = learner
        self._arm_of_version = dict(arm_of_version)
        self._dimension = dimension
        self._clock = clock
        self._grace = timedelta(seconds=grace_s)
        self._watermark = 0
        self.folded = 0
        self.refused = 0  # rewards the policy refused (say, 5.0 for a Bernoulli bandit)

    @property
    def watermark(self) -> int:
        """The last feedback id folded (or given up on)."""
        return self._watermark

    def fold(self) -> dict[str, Any] | None:
        """Fold new rewards; the learner's new state, or None when nothing changed."""
        changed = False
        while True:
            rows = self._read_page()
            if not rows:
                break
            arms, rewards, contexts, complete = self._usable(rows)
            if arms:
                self.folded += self._learn(arms, rewards, contexts)
                changed = True
            if not complete or len(rows) < _PAGE_ROWS:
                break
        return self._learner.state() if changed else None

    def _learn(self, arms: list[Any], rewards: list[float], contexts: list[Any]) -> int:
        """Learn a page in one batch; a reward the policy refuses costs itself, not the page.

        Feedback is checked when it arrives only for being a finite number: a reward outside
        [0, 1] sent to a Bernoulli Thompson route is refused here, by the policy, so the page
        is learned row by row, skipping (and logging) what it refuses.
        """
        matrix = np.asarray(contexts, dtype=np.float64) if contexts else None
        try:
            self._learner.update_many(arms, np.asarray(rewards, dtype=np.float64), matrix)
            return len(arms)
        except ExperimentInputError:
            pass  # the batch is checked whole before any of it is used: nothing was learned
        learned = 0
        for index, (arm, reward) in enumerate(zip(arms, rewards, strict=True)):
            context = None if matrix is None else matrix[index]
            try:
                self._learner.update(arm, reward, context)
                learned += 1
            except ExperimentInputError as exc:
                self.refused += 1
                logger.warning("bandit %r skipped a reward: %s", self._endpoint, exc)
        return learned

    def _read_page(self) -> list[Any]:
        query = (
            sa.select(
                feedback.c.id,
                feedback.c.reward,
                feedback.c.created_at,
                prediction_log.c.id.label("log_id"),
                prediction_log.c.version,
                prediction_log.c.status,
                prediction_log.c.shadow,
                prediction_log.c.context,
            )
            .outerjoin(
                prediction_log,
                sa.and_(
                    prediction_log.c.endpoint == feedback.c.endpoint,
                    prediction_log.c.request_id == feedback.c.request_id,
                ),
            )
            .where(
                feedback.c.endpoint == self._endpoint,
                feedback.c.id > self._watermark,
                feedback.c.reward.is_not(None),
            )
            .order_by(feedback.c.id, prediction_log.c.id)
            .limit(_PAGE_ROWS)
        )
        with self._store.read() as conn:
            return list(conn.execute(query))

    def _usable(self, rows: list[Any]) -> tuple[list[Any], list[float], list[Any], bool]:
        """The fold's inputs from ``rows``, advancing the watermark past what is settled.

        Rows come grouped by feedback id (one per logged row of its request). A reward
        counts once, for the first served, non-shadow row of its request; a request
        logged only as a shadow or an error earns nothing. Returns ``complete`` False
        when it stopped at a reward whose request is not logged yet (the caller waits
        for the next pass). The last group of a full page may be cut by the LIMIT, so it
        is left for the next page.
        """
        cutoff = format_time(self._clock() - self._grace)
        groups: dict[int, list[Any]] = {}
        for row in rows:
            groups.setdefault(row.id, []).append(row)
        if len(rows) >= _PAGE_ROWS and len(groups) > 1:
            groups.popitem()
        arms: list[Any] = []
        rewards: list[float] = []
        contexts: list[Any] = []
        for feedback_id, group in groups.items():
            first = group[0]
            if first.log_id is None and first.created_at > cutoff:
                return arms, rewards, contexts, False
            self._watermark = feedback_id
            served = next(
                (r for r in group if r.log_id is not None and not r.shadow and r.status in _SERVED),
                None,
            )
            arm = None if served is None else self._arm_of_version.get(served.version)
            if served is None or arm is None:
                continue
            if self._dimension is not None:
                context = served.context
                if not isinstance(context, list) or len(context) != self._dimension:
                    continue
                contexts.append(context)
            arms.append(arm)
            rewards.append(float(first.reward))
        return arms, rewards, contexts, True
