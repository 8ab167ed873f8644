"""The one-call path for label + probabilities gives exactly what predict() gives."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from mlgate.registry.flavors import flavor_named

RNG = np.random.default_rng(3)
X = RNG.normal(size=(300, 5))
Y3 = np.array(["ant", "bee", "cat"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.3)]
Y2 = (X[:, 2] + X[:, 3] > 0).astype(int)


@pytest.mark.parametrize(
    ("estimator", "labels", "fast"),
    [
        (LogisticRegression(), Y3, True),
        (LogisticRegression(), Y2, True),
        (RandomForestClassifier(n_estimators=5, random_state=0), Y3, True),
        (ExtraTreesClassifier(n_estimators=5, random_state=0), Y2, True),
        (DecisionTreeClassifier(max_depth=3, random_state=0), Y3, True),  # many tied rows
        (make_pipeline(StandardScaler(), LogisticRegression()), Y3, True),
        (GradientBoostingClassifier(n_estimators=5, random_state=0), Y3, False),
    ],
)
def test_labels_match_predict(estimator: Any, labels: np.ndarray, fast: bool) -> None:
    estimator.fit(X, labels)
    data = skops.io.dumps(estimator)
    flavor = flavor_named("sklearn")
    inspection = flavor.inspect(data, trusted_types=skops.io.get_untrusted_types(data=data))
    model = flavor.load(data, inspection)
    probe = RNG.normal(size=(200, 5))
    outputs = model.predict({"input": probe})
    np.testing.assert_array_equal(outputs["label"], estimator.predict(probe))
    np.testing.assert_allclose(outputs["probabilities"], estimator.predict_proba(probe))
    assert model._label_from_proba is fast  # type: ignore[attr-defined]
