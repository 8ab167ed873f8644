"""What every bandit policy shares: the port, arm and reward checks, shares, state plumbing.

The verbs are river's (``pull(context)`` / ``update(arm, reward, context)``), plus
the three a server needs:

* ``decide(context) -> (arm, reason)``: ``pull`` with the reason, one of
  :data:`REASONS`, so the router can log why an arm was chosen;
* ``update_many(arms, rewards, contexts)``: a batch of rewards folded in with
  whole-array operations, equal (to rounding) to ``update`` called in order;
* ``state()`` / ``load_state(state)``: the sufficient statistics as a JSON-able
  dict, so a worker thread can fold rewards into a learner copy and hand them to
  the policy the event loop pulls from.

Threads. ``pull``/``decide`` and ``update``/``update_many`` on one object belong
to one thread. ``load_state`` may be called from another thread while that one
pulls: it builds new statistics and swaps one reference, never writing into
arrays a pull may be reading, so a pull sees the old statistics or the new ones,
never a mix.

Speed. Without share bounds (the default) a pull needs no bookkeeping, so the
constructor binds each policy's unguarded ``pull`` and ``decide`` onto the
instance: one Python call per decision, reading what the policy derived from its
statistics when they last changed (``update``, ``update_many``, ``load_state``).
With bounds, the class's ``pull``/``decide`` run the policy's choice through the
:class:`~mlgate.experiments.bandits._shares.ShareGuard`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._shares import REASONS, Arm, Reason, Scores, ShareGuard

__all__ = [
    "REASONS",
    "Arm",
    "BasePolicy",
    "Policy",
    "Reason",
    "check_arms",
    "check_rewards",
    "state_vector",
]

FloatArray = NDArray[np.float64]
IndexArray = NDArray[np.intp]


@runtime_checkable
class Policy(Protocol):
    """A bandit policy as the router and the replay evaluator use it."""

    @property
    def arms(self) -> tuple[Arm, ...]: ...

    def pull(self, context: Any = None) -> Arm: ...

    def decide(self, context: Any = None) -> tuple[Arm, Reason]: ...

    def update(self, arm: Arm, reward: float, context: Any = None) -> None: ...

    def update_many(self, arms: Sequence[Arm], rewards: Any, contexts: Any = None) -> None: ...

    def state(self) -> dict[str, Any]: ...

    def load_state(self, state: Mapping[str, Any]) -> None: ...


def check_arms(arms: Sequence[Arm]) -> tuple[Arm, ...]:
    """The arm names as a tuple, or an error: at least two distinct str or int names."""
    if isinstance(arms, str | bytes) or not isinstance(arms, Sequence):
        raise ExperimentInputError(
            f"arms must be a list of arm names, found {arms!r}; e.g. ['model-a', 'model-b']"
        )
    names = tuple(arms)
    for arm in names:
        if isinstance(arm, bool) or not isinstance(arm, str | int):
            raise ExperimentInputError(
                f"arm names must be strings or integers, found {arm!r} ({type(arm).__name__})"
            )
    if len(names) < 2:
        raise ExperimentInputError(f"a bandit needs at least 2 arms, found {list(names)}")
    if len(set(names)) != len(names):
        raise ExperimentInputError(f"arm names must be distinct, found {list(names)}")
    return names


def check_rewards(rewards: Any, size: int, owner: str) -> FloatArray:
    """A batch of rewards as a 1-D float array of ``size`` finite numbers."""
    array = np.asarray(rewards)
    if array.dtype.kind not in "biuf":
        raise ExperimentInputError(
            f"{owner}.update_many expected numeric rewards, found dtype {array.dtype}; "
            "send numbers (no reward of this batch was used)"
        )
    values = array.astype(np.float64, copy=False)
    if values.shape != (size,):
        raise ExperimentInputError(
            f"{owner}.update_many expected {size} rewards (one per arm), found shape {values.shape}"
        )
    finite = np.isfinite(values)
    if not finite.all():
        at = int(np.flatnonzero(~finite)[0])
        raise ExperimentInputError(
            f"{owner}.update_many expected finite rewards, found {values[at]} at index {at}; "
            "drop or repair it (no reward of this batch was used)"
        )
    return values


class BasePolicy:
    """Arms, seeded randomness, the share guard and the public verbs over a few hooks.

    A subclass implements ``_choose(context) -> (index, reason)``, ``_scores(context)``
    (every arm's score, freshly drawn for sampling policies, used when a cap
    redirects a pull), ``_learn``/``_learn_many``, ``_export``/``_import``.
    """

    def __init__(
        self,
        arms: Sequence[Arm],
        *,
        seed: int | None,
        min_share: float,
        max_share: float,
    ) -> None:
        self._arms = check_arms(arms)
        self._index: dict[Arm, int] = {arm: i for i, arm in enumerate(self._arms)}
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ExperimentInputError(f"seed must be an integer or None, found {seed!r}")
        self._seed = seed
        self._rng = random.Random(seed)
        self._np_rng = np.random.default_rng(seed)
        guard = ShareGuard(len(self._arms), min_share, max_share)
        self._min_share, self._max_share = guard.bounds
        self._guard: ShareGuard | None = guard if guard.active else None
        if self._guard is None:
            # The server decides on every request: skip the dispatch through the
            # guard check (the methods are looked up now, run later, so a subclass
            # may still set what they read after this constructor returns).
            self.pull = self._pull_unguarded  # type: ignore[method-assign]
            self.decide = self._decide_unguarded  # type: ignore[method-assign]

    @property
    def arms(self) -> tuple[Arm, ...]:
        return self._arms

    @property
    def seed(self) -> int | None:
        return self._seed

    @property
    def min_share(self) -> float:
        return self._min_share

    @property
    def max_share(self) -> float:
        return self._max_share

    @property
    def pull_counts(self) -> dict[Arm, int] | None:
        """Pulls per arm counted by the share guard (None when the shares are 0 and 1)."""
        if self._guard is None:
            return None
        return dict(zip(self._arms, self._guard.counts, strict=True))

    def decide(self, context: Any = None) -> tuple[Arm, Reason]:
        """The arm to play and why (one of :data:`REASONS`)."""
        index, reason = self._choose(context)
        guard = self._guard
        if guard is not None:
            index, reason = guard.admit(index, reason, lambda: self._scores(context))
        return self._arms[index], reason

    def pull(self, context: Any = None) -> Arm:
        """The arm to play for one request."""
        return self.decide(context)[0]

    def _decide_unguarded(self, context: Any = None) -> tuple[Arm, Reason]:
        """``decide`` when no share bound is set (bound onto the instance)."""
        index, reason = self._choose(context)
        return self._arms[index], reason

    def _pull_unguarded(self, context: Any = None) -> Arm:
        """``pull`` when no share bound is set; policies override it with a shorter path."""
        return self._arms[self._choose(context)[0]]

    def update(self, arm: Arm, reward: float, context: Any = None) -> None:
        """Learn one reward for ``arm`` (with the request's context for contextual policies)."""
        index = self._arm_index(arm)
        if type(reward) is float:
            value = reward
        elif isinstance(reward, int | float | np.integer | np.floating):
            value = float(reward)
        else:
            raise ExperimentInputError(
                f"reward for arm {arm!r} must be a number, found {reward!r} "
                f"({type(reward).__name__})"
            )
        if not math.isfinite(value):
            raise ExperimentInputError(
                f"reward for arm {arm!r} must be a finite number, found {value}"
            )
        self._check_reward(value, arm)
        self._learn(index, value, context)

    def update_many(self, arms: Sequence[Arm], rewards: Any, contexts: Any = None) -> None:
        """Learn a batch of rewards, as ``update`` called for each in order would.

        The batch is checked whole first; on any error none of it is used.
        """
        if isinstance(arms, str | bytes):
            raise ExperimentInputError("update_many expected a list of arms, found a string")
        lookup = self._arm_index
        indices = np.fromiter((lookup(arm) for arm in arms), dtype=np.intp)
        values = check_rewards(rewards, indices.size, type(self).__name__)
        self._check_rewards(values)
        self._learn_many(indices, values, contexts)

    def state(self) -> dict[str, Any]:
        """The sufficient statistics as a JSON-able dict (see each policy's layout)."""
        return {"policy": type(self).__name__, "arms": list(self._arms), **self._export()}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the statistics with ``state`` (from :meth:`state` of a policy like this).

        ``state`` may list the arms in another order; it must hold exactly this
        policy's arms. The new statistics are built aside and swapped in with one
        assignment, so a concurrent pull never sees a half-loaded state.
        """
        if not isinstance(state, Mapping):
            raise ExperimentInputError(
                f"a bandit state must be a mapping (from state()), found {type(state).__name__}"
            )
        arms = state.get("arms")
        if not isinstance(arms, list) or sorted(map(repr, arms)) != sorted(map(repr, self._arms)):
            raise ExperimentInputError(
                f"the state's arms {arms!r} are not this policy's arms {list(self._arms)}; "
                "load a state saved by a policy over the same arms"
            )
        order = [arms.index(arm) for arm in self._arms]
        self._import(state, order)

    def _arm_index(self, arm: Arm) -> int:
        try:
            return self._index[arm]
        except (KeyError, TypeError):
            raise ExperimentInputError(
                f"arm {arm!r} is not one of this bandit's arms {list(self._arms)}"
            ) from None

    # -- what each policy supplies ---------------------------------------------------

    def _check_reward(self, value: float, arm: Arm) -> None:
        """Reject a reward the policy's model cannot take (Bernoulli: outside [0, 1])."""

    def _check_rewards(self, values: FloatArray) -> None:
        """The batch form of :meth:`_check_reward`."""

    def _choose(self, context: Any) -> tuple[int, Reason]:
        raise NotImplementedError

    def _scores(self, context: Any) -> Scores:
        raise NotImplementedError

    def _learn(self, index: int, reward: float, context: Any) -> None:
        raise NotImplementedError

    def _learn_many(self, indices: IndexArray, rewards: FloatArray, contexts: Any) -> None:
        raise NotImplementedError

    def _export(self) -> dict[str, Any]:
        raise NotImplementedError

    def _import(self, state: Mapping[str, Any], order: list[int]) -> None:
        raise NotImplementedError


def state_vector(state: Mapping[str, Any], key: str, order: list[int]) -> FloatArray:
    """``state[key]`` as a float vector in this policy's arm order, finite, or an error."""
    raw = state.get(key)
    if not isinstance(raw, list) or len(raw) != len(order):
        raise ExperimentInputError(
            f"state[{key!r}] must be a list with one number per arm ({len(order)}), found {raw!r}"
        )
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in raw):
        raise ExperimentInputError(f"state[{key!r}] must hold numbers, found {raw!r}")
    values = np.array([float(raw[i]) for i in order])
    if not np.isfinite(values).all():
        raise ExperimentInputError(f"state[{key!r}] must hold finite numbers, found {raw!r}")
    return values
