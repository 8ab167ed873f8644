"""Contextual bandits with one ridge regression per arm ("disjoint" linear models).

* :class:`LinUCB` (Li, Chu, Langford and Schapire, "A Contextual-Bandit Approach
  to Personalized News Article Recommendation", WWW 2010, Algorithm 1): play the
  arm with the highest ``x . theta_a + alpha * sqrt(x' A_a^-1 x)``.
* :class:`LinearThompsonSampling` (Agrawal and Goyal, "Thompson Sampling for
  Contextual Bandits with Linear Payoffs", ICML 2013): draw
  ``theta_a ~ N(theta_hat_a, alpha^2 A_a^-1)`` and play the highest ``x . theta_a``.

Per arm ``A_a = ridge * I + sum x x'`` and ``b_a = sum reward * x`` over the
contexts ``x`` it was rewarded in, and ``theta_hat_a = A_a^-1 b_a``. ``update``
keeps ``A_a^-1`` current with the Sherman-Morrison rank-one formula (O(d^2), no
inversion); ``update_many`` adds a whole batch to ``A`` and ``b`` and inverts each
touched ``A_a`` once, which agrees with sequential updates to rounding.

Only the score ``x . theta_a`` matters for the choice, and under the Thompson
posterior it is normal with mean ``x . theta_hat_a`` and variance
``alpha^2 x' A_a^-1 x``; so linear Thompson sampling draws that one number per arm
(exactly the same distribution as drawing ``theta_a`` whole, at a fraction of
the cost). Exact ties (every arm before any reward) are broken at random.

Contexts are the request's attributes (a mapping, encoded by the policy's
:class:`~mlgate.experiments.bandits.ContextEncoder`) or an already-encoded 1-D
vector of the encoder's length. The state layout adds to the counting policies'::

    {"policy": "LinUCB", "arms": [...], "features": ["intercept", "age", ...],
     "counts": [...], "sums": [...], "sums_squares": [...],
     "A": [[[...d floats] * d] * arms], "b": [[...d floats] * arms]}
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits._base import (
    Arm,
    BasePolicy,
    FloatArray,
    IndexArray,
    Reason,
    state_vector,
)
from mlgate.experiments.bandits._context import ContextEncoder

__all__ = ["LinUCB", "LinearPolicy", "LinearThompsonSampling"]

_FLOAT = np.dtype(np.float64)
_NORMAL_ROWS = 256


class _Model:
    """Every arm's regression, stacked so a pull scores all arms in two small products.

    ``a_inv`` and ``theta`` are views into one ``(k, d + 1, d)`` array (rows 0..d-1
    of each arm's block are ``A_a^-1``, row d is ``theta_a``), so ``flat @ x`` gives
    every arm's ``A_a^-1 x`` and ``x . theta_a`` at once; one more product with
    ``[[x, 0], [0, 1]]`` turns each block into ``(x' A_a^-1 x, x . theta_a)``.
    """

    __slots__ = ("a", "a_inv", "b", "counts", "flat", "stacked", "sums", "sums_squares", "theta")

    def __init__(self, a: FloatArray, b: FloatArray, a_inv: FloatArray) -> None:
        k, d = b.shape
        self.a = a  # (k, d, d)
        self.b = b  # (k, d)
        self.stacked = np.empty((k, d + 1, d))
        self.flat = self.stacked.reshape(k * (d + 1), d)  # a view: a 2-D product is cheaper
        self.a_inv = self.stacked[:, :d, :]
        self.theta = self.stacked[:, d, :]
        self.a_inv[...] = a_inv
        self.theta[...] = np.einsum("kij,kj->ki", a_inv, b)
        self.counts: list[int] = [0] * k
        self.sums: list[float] = [0.0] * k
        self.sums_squares: list[float] = [0.0] * k


class LinearPolicy(BasePolicy):
    """Shared by LinUCB and linear Thompson sampling: models, contexts, learning, state."""

    _reason: Reason

    def __init__(
        self,
        arms: Sequence[Arm],
        features: ContextEncoder | Sequence[str],
        alpha: float = 1.0,
        *,
        ridge: float = 1.0,
        seed: int | None = None,
        min_share: float = 0.0,
        max_share: float = 1.0,
    ) -> None:
        for name, value in (("alpha", alpha), ("ridge", ridge)):
            if not isinstance(value, int | float) or not 0.0 <= value < math.inf:
                raise ExperimentInputError(f"{name} must be a finite number >= 0, found {value!r}")
        if ridge <= 0:
            raise ExperimentInputError(f"ridge must be > 0 so A is invertible, found {ridge}")
        super().__init__(arms, seed=seed, min_share=min_share, max_share=max_share)
        if isinstance(features, ContextEncoder):
            self._encoder = features
        elif isinstance(features, Sequence) and not isinstance(features, str):
            self._encoder = ContextEncoder(numeric=list(features))
        else:
            raise ExperimentInputError(
                f"features must be a ContextEncoder or a list of numeric attribute names, "
                f"found {features!r}"
            )
        self._alpha = float(alpha)
        self._ridge = float(ridge)
        k, d = len(self._arms), self._encoder.dim
        self._shape = (d,)
        # Pull-side scratch (pulls belong to one thread): [[x, 0], [0, 1]], see _Model.
        self._probe = np.zeros((d + 1, 2))
        self._probe[d, 1] = 1.0
        self._probe_x = self._probe[:d, 0]
        self._blocks = (k, d + 1)
        eye = np.broadcast_to(np.eye(d), (k, d, d))
        self._model = _Model(ridge * eye, np.zeros((k, d)), eye / ridge)

    @property
    def encoder(self) -> ContextEncoder:
        return self._encoder

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def ridge(self) -> float:
        return self._ridge

    def coefficients(self) -> dict[Arm, FloatArray]:
        """Each arm's ridge estimate ``theta_hat`` (one weight per encoder feature)."""
        theta = self._model.theta
        return {arm: theta[i].copy() for i, arm in enumerate(self._arms)}

    def _vector(self, context: Any) -> FloatArray:
        if (
            type(context) is np.ndarray
            and context.shape == self._shape
            and context.dtype is _FLOAT
            and math.isfinite(context.dot(context))  # NaN or inf anywhere makes this non-finite
        ):
            return context
        if isinstance(context, Mapping):
            return self._encoder.encode(context)
        if isinstance(context, np.ndarray):
            return self._encoder.check_vector(context)
        raise ExperimentInputError(
            f"{type(self).__name__} needs each request's context: a mapping of attributes "
            f"({', '.join(self._encoder.feature_names)}) or an encoded vector; found "
            f"{type(context).__name__}"
        )

    def _matrix(self, contexts: Any, size: int) -> FloatArray:
        if isinstance(contexts, np.ndarray) and contexts.ndim == 2:
            if contexts.shape != (size, self._encoder.dim):
                raise ExperimentInputError(
                    f"encoded contexts must have shape ({size}, {self._encoder.dim}), found "
                    f"{contexts.shape}"
                )
            matrix = np.asarray(contexts, dtype=np.float64)
            if not np.isfinite(matrix).all():
                raise ExperimentInputError("encoded contexts must hold finite numbers only")
            return matrix
        if contexts is None or isinstance(contexts, str | Mapping):
            raise ExperimentInputError(
                f"{type(self).__name__}.update_many needs one context per reward (a list of "
                f"attribute mappings or an (n, {self._encoder.dim}) array)"
            )
        rows = [self._vector(context) for context in contexts]
        if len(rows) != size:
            raise ExperimentInputError(
                f"update_many got {size} rewards but {len(rows)} contexts; send one each"
            )
        return np.vstack(rows) if rows else np.zeros((0, self._encoder.dim))

    def _estimates(self, context: Any) -> list[list[float]]:
        """Every arm's ``[x' A_a^-1 x, x . theta_a]`` for this context.

        An encoded vector is taken as it is; :meth:`_choose` checks it is finite from
        the scores (a NaN or inf in ``x`` makes every ``x' A_a^-1 x`` non-finite).
        """
        x = context
        if not (type(x) is np.ndarray and x.shape == self._shape and x.dtype is _FLOAT):
            x = self._vector(context)
        self._probe_x[...] = x
        rows: list[list[float]] = (
            self._model.flat.dot(x).reshape(self._blocks).dot(self._probe).tolist()
        )
        return rows

    def _choose(self, context: Any) -> tuple[int, Reason]:
        scores = self._scores(context)
        if not math.isfinite(sum(scores)):
            # Raises for a vector holding NaN or inf (one whose scores merely
            # overflow passes, as it would have before the shortcut).
            self._vector(context)
        top = max(scores)
        best = scores.index(top)
        if scores.count(top) > 1:  # exact ties (no reward yet): at random
            best = self._rng.choice([i for i, s in enumerate(scores) if s == top])
        return best, self._reason

    def _scores(self, context: Any) -> list[float]:
        raise NotImplementedError

    def _learn(self, index: int, reward: float, context: Any) -> None:
        x = self._vector(context)
        model = self._model
        model.a[index] += np.outer(x, x)
        model.b[index] += reward * x
        inv_x = model.a_inv[index] @ x
        model.a_inv[index] -= np.outer(inv_x, inv_x) / (1.0 + x @ inv_x)
        model.theta[index] = model.a_inv[index] @ model.b[index]
        model.counts[index] += 1
        model.sums[index] += reward
        model.sums_squares[index] += reward * reward

    def _learn_many(self, indices: IndexArray, rewards: FloatArray, contexts: Any) -> None:
        matrix = self._matrix(contexts, indices.size)
        if indices.size == 0:
            return
        old = self._model
        a, b, a_inv = old.a.copy(), old.b.copy(), old.a_inv.copy()
        touched = np.unique(indices)
        for arm in touched.tolist():
            rows = indices == arm
            xs = matrix[rows]
            a[arm] += xs.T @ xs
            b[arm] += xs.T @ rewards[rows]
        a_inv[touched] = np.linalg.inv(a[touched])
        a_inv = np.asarray(a_inv, dtype=np.float64)
        model = _Model(a, b, a_inv)
        counts = np.array(old.counts, dtype=np.int64)
        sums, squares = np.array(old.sums), np.array(old.sums_squares)
        np.add.at(counts, indices, 1)
        np.add.at(sums, indices, rewards)
        np.add.at(squares, indices, rewards * rewards)
        model.counts, model.sums, model.sums_squares = (
            counts.tolist(),
            sums.tolist(),
            squares.tolist(),
        )
        self._model = model

    def _export(self) -> dict[str, Any]:
        model = self._model
        return {
            "features": list(self._encoder.feature_names),
            "counts": list(model.counts),
            "sums": list(model.sums),
            "sums_squares": list(model.sums_squares),
            "A": model.a.tolist(),
            "b": model.b.tolist(),
        }

    def _import(self, state: Mapping[str, Any], order: list[int]) -> None:
        names = list(self._encoder.feature_names)
        if state.get("features") != names:
            raise ExperimentInputError(
                f"the state's features {state.get('features')!r} are not this policy's "
                f"{names}; load a state saved with the same context encoder"
            )
        k, d = len(self._arms), len(names)
        try:
            a = np.asarray(state["A"], dtype=np.float64)
            b = np.asarray(state["b"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise ExperimentInputError(
                f"state['A'] and state['b'] must be numeric arrays of shapes ({k}, {d}, {d}) "
                f"and ({k}, {d}) ({exc})"
            ) from exc
        if a.shape != (k, d, d) or b.shape != (k, d):
            raise ExperimentInputError(
                f"state['A'] and state['b'] must have shapes ({k}, {d}, {d}) and ({k}, {d}), "
                f"found {a.shape} and {b.shape}"
            )
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ExperimentInputError("state['A'] and state['b'] must hold finite numbers")
        a, b = a[order], b[order]
        if not np.allclose(a, a.transpose(0, 2, 1), rtol=1e-9, atol=1e-12):
            raise ExperimentInputError("state['A'] must hold symmetric matrices (sum of x x')")
        try:
            np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise ExperimentInputError(
                "state['A'] must hold positive definite matrices (ridge * I + sum of x x')"
            ) from None
        counts = state_vector(state, "counts", order)
        if (counts < 0).any() or (counts != np.floor(counts)).any():
            raise ExperimentInputError("state['counts'] must hold non-negative integers")
        model = _Model(a, b, np.asarray(np.linalg.inv(a), dtype=np.float64))
        model.counts = [int(n) for n in counts]
        model.sums = state_vector(state, "sums", order).tolist()
        model.sums_squares = state_vector(state, "sums_squares", order).tolist()
        self._model = model


class LinUCB(LinearPolicy):
    """Disjoint LinUCB: the arm with the highest upper confidence bound for this context."""

    _reason: Reason = "ucb"

    def _scores(self, context: Any) -> list[float]:
        alpha, sqrt = self._alpha, math.sqrt
        # q <= 0: rounding can leave a tiny negative quadratic form (width 0); q * 0.0
        # keeps a NaN q (from a NaN context) NaN for _choose's check.
        return [m + alpha * (sqrt(q) if q > 0.0 else q * 0.0) for q, m in self._estimates(context)]


class LinearThompsonSampling(LinearPolicy):
    """Linear Thompson sampling: the arm whose sampled payoff for this context is highest.

    The standard normals are drawn ``_NORMAL_ROWS`` pulls at a time (they do not
    depend on the statistics, so a block outlives updates; each is used once).
    """

    _reason: Reason = "sample"

    def __init__(
        self,
        arms: Sequence[Arm],
        features: ContextEncoder | Sequence[str],
        alpha: float = 1.0,
        *,
        ridge: float = 1.0,
        seed: int | None = None,
        min_share: float = 0.0,
        max_share: float = 1.0,
    ) -> None:
        super().__init__(
            arms, features, alpha, ridge=ridge, seed=seed, min_share=min_share, max_share=max_share
        )
        self._next_normals: Callable[[], list[float]] = iter(()).__next__

    def _normals(self) -> list[float]:
        """One standard normal per arm, never used before."""
        try:
            return self._next_normals()
        except StopIteration:
            rows = self._np_rng.standard_normal((_NORMAL_ROWS, len(self._arms))).tolist()
            self._next_normals = iter(rows).__next__
            return self._next_normals()

    def _scores(self, context: Any) -> list[float]:
        alpha, sqrt = self._alpha, math.sqrt
        estimates = self._estimates(context)
        return [
            m + alpha * (sqrt(q) if q > 0.0 else q * 0.0) * z
            for (q, m), z in zip(estimates, self._normals(), strict=True)
        ]
