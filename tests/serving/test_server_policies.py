"""Traffic policies through real HTTP: splits, rules, shadows, ensembles, cascades, bandits,
fallbacks. Which version answered is read from ``x-mlgate-version`` and checked against
the numbers that version's own graph gives for the same rows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
from scipy.stats import chisquare

from mlgate.workspace import Workspace
from tests.models import fragile_classifier, linear_classifier, register, softmax_reference
from tests.serving.conftest import Server, output, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
B2 = [0.0, 0.3, -0.1]
REFERENCE = {"1": (W1, B1), "2": (W2, B2), "3": (W1, B1)}
ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    """iris v1 and v2 (different weights), v3 fails when x[0] >= 3; champion on 1."""
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    register(workspace, "iris", linear_classifier(W2, B2))
    register(workspace, "iris", fragile_classifier(W1, B1))
    return serve()


def _check_answer(response: httpx.Response, rows: Any) -> str:
    """The version that answered, after checking its numbers are that version's."""
    assert response.status_code == 200, response.text
    version: str = response.headers["x-mlgate-version"]
    assert response.json()["model_version"] == version
    weights, bias = REFERENCE[version]
    np.testing.assert_allclose(
        output(response, "probabilities"), softmax_reference(weights, bias, rows)[0], rtol=1e-5
    )
    return version


def test_weighted_split_follows_the_weights(iris: Server) -> None:
    iris.deploy(
        {
            "name": "canary",
            "model": "iris",
            "route": {
                "split": {"variants": [{"target": 1, "weight": 30}, {"target": 2, "weight": 70}]}
            },
        }
    )
    counts: Counter[str] = Counter()
    routes: set[str] = set()
    for _ in range(400):
        response = iris.infer("canary", ROW)
        counts[_check_answer(response, ROW)] += 1
        routes.add(response.headers["x-mlgate-route"])
    assert set(counts) == {"1", "2"}, counts
    test = chisquare([counts["1"], counts["2"]], [120, 280])
    assert test.pvalue > 1e-4, (counts, test)
    assert routes == {"split:weighted->1", "split:weighted->2"}


def test_sticky_split_keeps_each_user_on_one_version(iris: Server) -> None:
    def deploy(canary: int) -> None:
        iris.deploy(
            {
                "name": "sticky",
                "model": "iris",
                "route": {
                    "split": {
                        "sticky_key": "user_id",
                        "variants": [
                            {"target": 1, "weight": 100 - canary},
                            {"target": 2, "weight": canary},
                        ],
                    }
                },
            }
        )

    deploy(50)
    users = [f"user-{i}" for i in range(40)]
    seen: dict[str, str] = {}
    for user in users:
        versions = {
            iris.infer("sticky", ROW, parameters={"user_id": user}).headers["x-mlgate-version"]
            for _ in range(3)
        }
        assert len(versions) == 1, (user, versions)
        seen[user] = versions.pop()
        # The same key as a header (x-mlgate-<key>) lands on the same version.
        by_header = iris.infer("sticky", ROW, headers={"x-mlgate-user_id": user})
        assert by_header.headers["x-mlgate-version"] == seen[user], user
        assert by_header.headers["x-mlgate-route"].startswith("split:sticky user_id bucket")
    assert set(seen.values()) == {"1", "2"}, seen
    anonymous = iris.infer("sticky", ROW)
    assert anonymous.headers["x-mlgate-route"].startswith("split:weighted (no user_id)")

    # Raising the canary's weight only moves users to it, never away from it.
    deploy(80)
    after = {
        user: iris.infer("sticky", ROW, parameters={"user_id": user}).headers["x-mlgate-version"]
        for user in users
    }
    assert all(after[user] == "2" for user in users if seen[user] == "2"), (seen, after)
    assert sum(v == "2" for v in after.values()) > sum(v == "2" for v in seen.values())


def test_rules_route_on_parameters_and_headers(iris: Server) -> None:
    iris.deploy(
        {
            "name": "ruled",
            "model": "iris",
            "route": {
                "rules": [
                    {"when": 'tier == "gold" and country in ["DE", "FR"]', "target": 2},
                    {"when": "age >= 65 or country == 'JP'", "target": 2},
                    {"default": 1},
                ]
            },
        }
    )
    cases: list[tuple[dict[str, Any], dict[str, str], str, str]] = [
        ({"tier": "gold", "country": "DE"}, {}, "2", "rule#0"),
        ({"tier": "gold", "country": "US"}, {}, "1", "default"),
        ({"tier": "silver", "country": "FR"}, {}, "1", "default"),
        ({"age": 70}, {}, "2", "rule#1"),
        ({"age": 30}, {}, "1", "default"),
        ({"country": "JP"}, {}, "2", "rule#1"),
        ({}, {}, "1", "default"),
        ({"country": "FR"}, {"x-mlgate-tier": "gold"}, "2", "rule#0"),
        # Parameters win over headers of the same name.
        ({"tier": "bronze", "country": "FR"}, {"x-mlgate-tier": "gold"}, "1", "default"),
    ]
    for parameters, headers, version, route in cases:
        response = iris.infer("ruled", ROW, parameters=parameters, headers=headers)
        assert _check_answer(response, ROW) == version, (parameters, headers)
        assert response.headers["x-mlgate-route"] == route, (parameters, headers)


def test_a_shadow_is_logged_but_never_answers(iris: Server) -> None:
    iris.deploy({"name": "mirrored", "model": "iris", "route": 1, "shadow": [{"target": 2}]})
    ids = [f"shadowed-{i}" for i in range(3)]
    for request_id in ids:
        response = iris.infer("mirrored", ROW, request_id=request_id)
        assert _check_answer(response, ROW) == "1"
        assert [t["name"] for t in response.json()["outputs"]] == ["probabilities", "label"]
    rows = iris.predictions("mirrored", 6)
    assert len(rows) == 6
    for request_id in ids:
        mine = {r["shadow"]: r for r in rows if r["request_id"] == request_id}
        assert set(mine) == {False, True}, mine
        primary, shadow = mine[False], mine[True]
        assert (primary["version"], primary["status"]) == ("1", "ok")
        assert (shadow["version"], shadow["status"], shadow["route"]) == ("2", "ok", "shadow:2")
        np.testing.assert_allclose(
            shadow["outputs"]["probabilities"], softmax_reference(W2, B2, ROW)[0], rtol=1e-5
        )
        np.testing.assert_allclose(
            primary["outputs"]["probabilities"], softmax_reference(W1, B1, ROW)[0], rtol=1e-5
        )


def test_ensemble_mean_equals_the_mean_of_each_versions_answer(iris: Server) -> None:
    iris.deploy({"name": "duo", "model": "iris", "route": {"ensemble": {"targets": [1, 2]}}})
    rows = [[0.5, 1.0, -1.0, 2.0], [2.0, -1.0, 0.5, 0.0], [-3.0, 0.0, 1.0, 1.0]]
    combined = iris.infer("duo", rows)
    assert combined.status_code == 200, combined.text
    assert combined.headers["x-mlgate-version"] == "1+2"
    assert combined.json()["model_version"] == "1+2"
    one = output(iris.infer("duo", rows, version=1), "probabilities")
    two = output(iris.infer("duo", rows, version=2), "probabilities")
    mean = output(combined, "probabilities")
    np.testing.assert_allclose(mean, (one + two) / 2, rtol=1e-6)
    assert output(combined, "label").tolist() == mean.argmax(axis=1).tolist()
    # The ensemble answers with the datatypes its models declare.
    metadata = {
        o["name"]: o["datatype"] for o in iris.client.get("/v2/models/duo").json()["outputs"]
    }
    sent = {o["name"]: o["datatype"] for o in combined.json()["outputs"]}
    assert sent == {"probabilities": metadata["probabilities"], "label": metadata["label"]}


def test_cascade_escalates_only_low_confidence_requests(iris: Server) -> None:
    iris.deploy(
        {
            "name": "cheap-first",
            "model": "iris",
            "route": {"cascade": {"stages": [{"target": 1, "min_confidence": 0.9}, {"target": 2}]}},
        }
    )
    sure, unsure = [[10.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, 0.0, 0.0]]
    assert softmax_reference(W1, B1, sure)[0].max() >= 0.9
    assert softmax_reference(W1, B1, unsure)[0].max() < 0.9

    answered = iris.infer("cheap-first", sure)
    assert answered.headers["x-mlgate-version"] == "1"
    assert answered.headers["x-mlgate-route"] == "cascade:stage1"
    _check_answer(answered, sure)

    escalated = iris.infer("cheap-first", unsure)
    assert escalated.headers["x-mlgate-version"] == "1>2"
    assert escalated.headers["x-mlgate-route"] == "cascade:stage2"
    np.testing.assert_allclose(
        output(escalated, "probabilities"), softmax_reference(W2, B2, unsure)[0], rtol=1e-5
    )
    # One unsure row escalates the whole request.
    both = iris.infer("cheap-first", sure + unsure)
    assert both.headers["x-mlgate-version"] == "1>2"


def test_epsilon_greedy_bandit_learns_from_feedback_rewards(iris: Server) -> None:
    iris.deploy(
        {
            "name": "bandit",
            "model": "iris",
            "route": {"bandit": {"arms": [1, 2], "epsilon": 0.1, "seed": 7}},
        }
    )
    pulled: dict[str, str] = {}
    for i in range(40):
        response = iris.infer("bandit", ROW, request_id=f"explore-{i}")
        pulled[f"explore-{i}"] = _check_answer(response, ROW)
    assert set(pulled.values()) == {"1", "2"}, "unrewarded arms are all played first"
    iris.predictions("bandit", len(pulled))  # rewards join the log: wait for its rows

    feedback = [
        {"request_id": request_id, "reward": 1.0 if version == "2" else 0.0}
        for request_id, version in pulled.items()
    ]
    accepted = iris.client.post("/v2/models/bandit/feedback", json={"feedback": feedback})
    assert (accepted.status_code, accepted.json()) == (200, {"accepted": len(feedback)})

    def share_of_two() -> float:
        versions = [iris.infer("bandit", ROW).headers["x-mlgate-version"] for _ in range(50)]
        return versions.count("2") / len(versions)

    wait_until(lambda: share_of_two() > 0.8, timeout=20, what="the bandit to favour arm 2")
    versions = Counter(iris.infer("bandit", ROW).headers["x-mlgate-version"] for _ in range(200))
    # epsilon 0.1 over two arms: about 95 % go to the rewarded arm; exploration still happens.
    assert versions["2"] >= 160, versions
    routes = {iris.infer("bandit", ROW).headers["x-mlgate-route"] for _ in range(60)}
    assert "bandit:exploit->2" in routes  # the header is ASCII: the log keeps "→"


def test_fallback_version_and_default_answer_when_the_primary_fails(iris: Server) -> None:
    iris.deploy({"name": "careful", "model": "iris", "route": 3, "fallback": {"targets": [1]}})
    iris.deploy(
        {
            "name": "defaulted",
            "model": "iris",
            "route": 3,
            "fallback": {
                "default": {"outputs": {"label": [0], "probabilities": [[0.5, 0.25, 0.25]]}}
            },
        }
    )
    poison = [[5.0, 0.0, 0.0, 0.0], [6.0, 1.0, 1.0, 1.0]]  # v3's Gather fails on x[0] >= 3

    healthy = iris.infer("careful", ROW, request_id="careful-ok")
    assert healthy.headers["x-mlgate-version"] == "3"
    rescued = iris.infer("careful", poison, request_id="careful-poison")
    assert rescued.headers["x-mlgate-route"] == "target:fallback"
    assert _check_answer(rescued, poison) == "1"

    default = iris.infer("defaulted", poison, request_id="defaulted-poison")
    assert default.status_code == 200, default.text
    assert default.headers["x-mlgate-version"] == "default"
    assert default.headers["x-mlgate-route"] == "target:default"
    assert output(default, "label").tolist() == [0, 0]
    assert output(default, "probabilities").tolist() == [[0.5, 0.25, 0.25]] * 2
    only_label = iris.infer("defaulted", poison, outputs=["label"])
    assert [t["name"] for t in only_label.json()["outputs"]] == ["label"]

    logged = {r["request_id"]: r for r in iris.predictions("careful", 2)}
    assert (logged["careful-ok"]["version"], logged["careful-ok"]["status"]) == ("3", "ok")
    assert (logged["careful-poison"]["version"], logged["careful-poison"]["status"]) == (
        "1",
        "fallback",
    )
    row = iris.predictions("defaulted", 1)[0]
    assert (row["version"], row["status"], row["route"]) == (
        "default",
        "fallback",
        "target:default",
    )


def test_a_failing_shadow_never_reaches_the_caller(iris: Server) -> None:
    iris.deploy({"name": "mirrored", "model": "iris", "route": 1, "shadow": [{"target": 3}]})
    poison = [[5.0, 0.0, 0.0, 0.0]]  # the shadow (v3) fails on it, the primary (v1) does not
    for i in range(3):
        response = iris.infer("mirrored", poison, request_id=f"poison-{i}")
        assert _check_answer(response, poison) == "1"
    labels = (("endpoint", "mirrored"), ("status", "error"), ("version", "3"))
    wait_until(
        lambda: iris.metrics().get(("mlgate_shadow_requests_total", labels)) == 3,
        what="three failed shadow calls",
    )
    healthy = iris.infer("mirrored", ROW, request_id="healthy")
    assert _check_answer(healthy, ROW) == "1"
    rows = iris.predictions("mirrored", 5)
    shadows = [r for r in rows if r["shadow"]]
    assert [(r["request_id"], r["version"]) for r in shadows] == [("healthy", "3")]
