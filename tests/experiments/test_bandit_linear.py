"""Context encoding and the linear policies, held to the papers' formulas computed directly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits import ContextEncoder, LinearThompsonSampling, LinUCB

ENCODER = ContextEncoder(numeric=["age", "spend"], categorical={"country": ["fr", "us", 3]})


def test_encoding_layout() -> None:
    assert ENCODER.feature_names == (
        "intercept",
        "age",
        "spend",
        "country=fr",
        "country=us",
        "country=3",
    )
    row = ENCODER.encode({"age": 31, "spend": 2.5, "country": "us", "ignored": "x"})
    assert row.tolist() == [1.0, 31.0, 2.5, 0.0, 1.0, 0.0]
    assert ENCODER.encode({"age": True, "spend": np.float32(1), "country": 3})[5] == 1.0
    many = ENCODER.encode_many([{"age": 1, "spend": 0, "country": "fr"}] * 3)
    assert many.shape == (3, 6)
    no_intercept = ContextEncoder(["a"], intercept=False)
    assert no_intercept.encode({"a": 2}).tolist() == [2.0]


@pytest.mark.parametrize(
    ("attributes", "match"),
    [
        ({"spend": 1, "country": "fr"}, "'age' is missing; send a number"),
        ({"age": None, "spend": 1, "country": "fr"}, "'age' is missing"),
        ({"age": "31y", "spend": 1, "country": "fr"}, "'age' must be a number, found '31y'"),
        ({"age": 1e7, "spend": 1, "country": "fr"}, "'age' must be a finite number of magnitude"),
        ({"age": math.nan, "spend": 1, "country": "fr"}, "'age' must be a finite number"),
        ({"age": 1, "spend": math.inf, "country": "fr"}, "'spend' must be a finite"),
        ({"age": 1, "spend": 1}, r"'country' is missing; send one of \['fr', 'us', 3\]"),
        ({"age": 1, "spend": 1, "country": "de"}, "unknown category 'de'; send one of"),
        ({"age": 1, "spend": 1, "country": ["fr"]}, "unknown category"),
    ],
)
def test_bad_attributes_name_the_attribute(attributes: dict[str, Any], match: str) -> None:
    with pytest.raises(ExperimentInputError, match=match):
        ENCODER.encode(attributes)


def test_unknown_category_can_encode_as_zeros() -> None:
    lenient = ContextEncoder(categorical={"country": ["fr", "us"]}, unknown="zero")
    assert lenient.encode({"country": "de"}).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ExperimentInputError, match="'country' is missing"):
        lenient.encode({})  # a missing attribute is still an error


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"numeric": "age"}, "list of attribute names"),
        ({"numeric": ["a", "a"]}, "declared twice"),
        ({"numeric": ["a"], "categorical": {"a": ["x"]}}, "declared twice"),
        ({"categorical": {"c": []}}, "at least one category"),
        ({"categorical": {"c": ["x", "x"]}}, "repeat"),
        ({"categorical": {"c": "xy"}}, "list of values"),
        ({"intercept": False}, "at least one feature"),
        ({"numeric": [""]}, "non-empty"),
        ({"unknown": "ignore"}, "unknown must be"),
    ],
)
def test_bad_encoder_declarations(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ExperimentInputError, match=match):
        ContextEncoder(**kwargs)


def test_contextual_policies_need_a_context() -> None:
    policy = LinUCB(["a", "b"], ["age"])
    assert policy.encoder.feature_names == ("intercept", "age")
    with pytest.raises(ExperimentInputError, match="needs each request's context"):
        policy.pull()
    with pytest.raises(ExperimentInputError, match="'age' is missing"):
        policy.pull({"agee": 3})
    with pytest.raises(ExperimentInputError, match="length 2"):
        policy.pull(np.ones(3))
    with pytest.raises(ExperimentInputError, match="position 1"):
        policy.update("a", 1.0, np.array([1.0, np.nan]))
    with pytest.raises(ExperimentInputError, match="one context per reward"):
        policy.update_many(["a"], [1.0])
    with pytest.raises(ExperimentInputError, match="1 rewards but 2 contexts"):
        policy.update_many(["a"], [1.0], [{"age": 1}, {"age": 2}])
    assert policy.pull(np.array([1.0, 0.5])) in ("a", "b")  # an encoded vector works


def test_linucb_scores_are_the_papers_formula() -> None:
    """theta = A^-1 b, score = x.theta + alpha sqrt(x' A^-1 x), computed from scratch."""
    rng = np.random.default_rng(3)
    arms = ["a", "b", "c"]
    policy = LinUCB(arms, ENCODER, alpha=0.7, ridge=2.0, seed=0)
    logged: dict[str, list[tuple[np.ndarray, float]]] = {arm: [] for arm in arms}
    for _ in range(200):
        attrs = {
            "age": float(rng.normal()),
            "spend": float(rng.normal()),
            "country": ["fr", "us", 3][int(rng.integers(3))],
        }
        arm = policy.pull(attrs)
        reward = float(rng.normal())
        policy.update(arm, reward, attrs)
        logged[str(arm)].append((ENCODER.encode(attrs), reward))
    x = ENCODER.encode({"age": 0.3, "spend": -1.0, "country": "us"})
    expected = []
    for arm in arms:
        a = 2.0 * np.eye(ENCODER.dim) + sum(
            (np.outer(v, v) for v, _ in logged[arm]), np.zeros((6, 6))
        )
        b = sum((r * v for v, r in logged[arm]), np.zeros(6))
        theta = np.linalg.solve(a, b)
        np.testing.assert_allclose(policy.coefficients()[arm], theta, atol=1e-9)
        expected.append(x @ theta + 0.7 * math.sqrt(x @ np.linalg.solve(a, x)))
    np.testing.assert_allclose(policy._scores(x), expected, atol=1e-9)
    assert policy.decide(x) == (arms[int(np.argmax(expected))], "ucb")


@settings(max_examples=25, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.floats(-10, 10),
            st.lists(st.floats(-3, 3), min_size=3, max_size=3),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_sherman_morrison_matches_the_batch_inverse(
    rows: list[tuple[str, float, list[float]]],
) -> None:
    """Property: rank-one updates of A^-1 agree with inverting A after a batch (to 1e-9)."""
    sequential = LinUCB(["a", "b"], ContextEncoder(["x", "y", "z"], intercept=False))
    batched = LinUCB(["a", "b"], ContextEncoder(["x", "y", "z"], intercept=False))
    for arm, reward, x in rows:
        sequential.update(arm, reward, np.array(x))
    batched.update_many([r[0] for r in rows], [r[1] for r in rows], np.array([r[2] for r in rows]))
    np.testing.assert_allclose(sequential._model.a_inv, batched._model.a_inv, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(
        sequential._model.a_inv, np.linalg.inv(batched._model.a), rtol=1e-9, atol=1e-9
    )
    np.testing.assert_allclose(sequential._model.theta, batched._model.theta, atol=1e-9)


def test_linear_thompson_draws_have_the_posterior_spread() -> None:
    """Scores are N(x.theta, alpha^2 x'A^-1x): check mean and sd over many draws."""
    policy = LinearThompsonSampling(["a", "b"], ["x"], alpha=0.5, seed=11)
    for i in range(40):
        policy.update("a", 1.0, {"x": i / 40})
    x = np.array([1.0, 0.5])
    draws = np.array([policy._scores(x) for _ in range(20000)])
    model = policy._model
    for k in range(2):
        mean = x @ model.theta[k]
        sd = 0.5 * math.sqrt(x @ model.a_inv[k] @ x)
        assert draws[:, k].mean() == pytest.approx(mean, abs=4 * sd / math.sqrt(20000))
        assert draws[:, k].std() == pytest.approx(sd, rel=0.03)


@pytest.mark.parametrize("policy_type", [LinUCB, LinearThompsonSampling])
def test_routes_by_user_segment(policy_type: type[LinUCB]) -> None:
    """The best arm depends on the segment; the policy learns a different arm per segment."""
    rng = np.random.default_rng(5)
    encoder = ContextEncoder(categorical={"segment": ["young", "old"]})
    rates = {("young", "a"): 0.7, ("young", "b"): 0.3, ("old", "a"): 0.3, ("old", "b"): 0.7}
    policy = policy_type(["a", "b"], encoder, alpha=0.5, seed=5)
    late: dict[str, list[str]] = {"young": [], "old": []}
    for i in range(3000):
        segment = "young" if rng.random() < 0.5 else "old"
        arm = str(policy.pull({"segment": segment}))
        policy.update(arm, float(rng.random() < rates[segment, arm]), {"segment": segment})
        if i > 2000:
            late[segment].append(arm)
    assert late["young"].count("a") / len(late["young"]) > 0.8
    assert late["old"].count("b") / len(late["old"]) > 0.8
