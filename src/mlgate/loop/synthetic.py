"""A small synthetic world whose rules change at a known point: for the demo, tests, bench.

Six numeric features and a binary label. In world ``"before"`` the label follows one
linear rule; in world ``"after"`` two features have moved (covariate drift) and the rule
itself has changed (concept drift), so a model trained before answers little better than
a coin after. ``poison`` flips that share of labels at random, as a compromised labelling
feed would. Everything is drawn from one seeded generator, so a scenario replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["FEATURES", "SyntheticWorld", "World"]

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
World = Literal["before", "after"]

_RULES: dict[str, NDArray[np.float64]] = {
    "before": np.array([1.0, 1.0, -1.0, 0.5, 0.0, 0.0]),
    "after": np.array([1.0, -1.0, 1.0, 0.0, 0.5, 0.0]),
}
_SHIFT: dict[str, NDArray[np.float64]] = {
    "before": np.zeros(6),
    "after": np.array([0.8, 0.8, 0.0, 0.0, 0.0, 0.0]),
}
_SHARPNESS = 3.0  # logit scale: the best model is right about 88 % of the time


@dataclass
class SyntheticWorld:
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def rows(
        self, n: int, world: World = "before", *, poison: float = 0.0
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        """``n`` rows of features and labels drawn from ``world``."""
        x = self._rng.normal(size=(n, len(FEATURES))) + _SHIFT[world]
        centred = x - _SHIFT[world]
        logit = _SHARPNESS * centred @ _RULES[world]
        y = (self._rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
        if poison > 0:
            flip = self._rng.random(n) < poison
            y = np.where(flip, 1 - y, y)
        return x, y
