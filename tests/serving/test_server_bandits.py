"""Bandit routing through real HTTP: every algorithm learns from feedback rewards posted to
the server, contextual ones route by request attributes, shares stay inside their bounds,
and what the bandit saw is in the prediction log for every process to learn from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from mlgate.store.schema import prediction_log
from mlgate.workspace import Workspace
from tests.models import linear_classifier, register
from tests.serving.conftest import Server, assert_error, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    register(workspace, "iris", linear_classifier(W1, [0.0, 0.0, 0.0]), champion=True)
    register(workspace, "iris", linear_classifier(W2, [0.0, 0.0, 0.0]))
    return serve()


def _reward_all(server: Server, endpoint: str, pulled: dict[str, str], good: Any) -> None:
    """Post a reward for every pulled request: 1 where ``good(request_id, version)``."""
    server.predictions(endpoint, len(pulled))  # rewards join the log: wait for its rows
    feedback = [
        {"request_id": rid, "reward": 1.0 if good(rid, version) else 0.0}
        for rid, version in pulled.items()
    ]
    accepted = server.client.post(f"/v2/models/{endpoint}/feedback", json={"feedback": feedback})
    assert (accepted.status_code, accepted.json()) == (200, {"accepted": len(feedback)})


@pytest.mark.parametrize(
    "bandit",
    [
        {"algorithm": "ucb1"},
        {"algorithm": "thompson", "likelihood": "bernoulli"},
        {"algorithm": "thompson", "likelihood": "gaussian"},
        {"algorithm": "epsilon_greedy", "epsilon": 0.1},
    ],
    ids=["ucb1", "thompson-bernoulli", "thompson-gaussian", "epsilon-greedy"],
)
def test_each_bandit_learns_the_rewarded_arm_from_feedback(
    iris: Server, bandit: dict[str, Any]
) -> None:
    iris.deploy(
        {
            "name": "bandit",
            "model": "iris",
            "route": {"bandit": {"arms": [1, 2], "seed": 3, **bandit}},
        }
    )
    pulled = {
        f"r{i}": iris.infer("bandit", ROW, request_id=f"r{i}").headers["x-mlgate-version"]
        for i in range(60)
    }
    assert set(pulled.values()) == {"1", "2"}, "every arm is tried before any is preferred"
    _reward_all(iris, "bandit", pulled, lambda _rid, version: version == "2")

    def share_of_two() -> float:
        versions = [iris.infer("bandit", ROW).headers["x-mlgate-version"] for _ in range(40)]
        return versions.count("2") / len(versions)

    wait_until(lambda: share_of_two() > 0.8, timeout=25, what="the bandit to favour arm 2")
    routes = Counter(iris.infer("bandit", ROW).headers["x-mlgate-route"] for _ in range(40))
    assert all(route.startswith("bandit:") for route in routes), routes


def test_share_bounds_hold_against_a_clear_winner(iris: Server) -> None:
    iris.deploy(
        {
            "name": "bounded",
            "model": "iris",
            "route": {"bandit": {"algorithm": "ucb1", "arms": [1, 2], "max_share": 0.7, "seed": 1}},
        }
    )
    served: list[str] = []  # every answer this (single-process) server gave, in order

    def pull(request_id: str | None = None) -> str:
        version = iris.infer("bounded", ROW, request_id=request_id).headers["x-mlgate-version"]
        served.append(version)
        return version

    pulled = {f"b{i}": pull(f"b{i}") for i in range(40)}
    _reward_all(iris, "bounded", pulled, lambda _rid, version: version == "2")
    # Learned: arm 2 takes everything it may, up to its cap of the process's pulls.
    wait_until(
        lambda: [pull() for _ in range(20)].count("2") >= 19,
        timeout=25,
        interval=0.5,  # few pulls before learning: fewer to catch up on after it
        what="the bandit to favour arm 2",
    )
    # Arm 2 gets every pull while its share of all pulls catches up to the cap...
    wait_until(
        lambda: [pull() for _ in range(100)] and served.count("2") / len(served) >= 0.69,
        timeout=60,
        what="arm 2's share of all pulls to reach its cap",
    )
    # ...and then the cap binds: about 70 % of the pulls, never more of the total.
    phase = [pull() for _ in range(300)]
    assert 0.6 <= phase.count("2") / len(phase) <= 0.8, Counter(phase)
    assert served.count("2") / len(served) <= 0.71, Counter(served)


def test_linucb_routes_by_a_request_attribute(iris: Server, workspace: Workspace) -> None:
    iris.deploy(
        {
            "name": "contextual",
            "model": "iris",
            "route": {
                "bandit": {
                    "algorithm": "linucb",
                    "arms": [1, 2],
                    "alpha": 0.5,
                    "features": [{"name": "tier", "categories": ["gold", "silver"]}],
                    "seed": 5,
                }
            },
        }
    )
    tiers: dict[str, str] = {}
    pulled: dict[str, str] = {}
    for i in range(120):
        tier = "gold" if i % 2 else "silver"
        rid = f"c{i}"
        response = iris.infer("contextual", ROW, request_id=rid, parameters={"tier": tier})
        assert response.status_code == 200, response.text
        tiers[rid], pulled[rid] = tier, response.headers["x-mlgate-version"]
    # Gold users are rewarded by version 2, silver users by version 1.
    _reward_all(
        iris,
        "contextual",
        pulled,
        lambda rid, version: version == ("2" if tiers[rid] == "gold" else "1"),
    )

    def routed(tier: str) -> Counter[str]:
        return Counter(
            iris.infer("contextual", ROW, parameters={"tier": tier}).headers["x-mlgate-version"]
            for _ in range(30)
        )

    wait_until(
        lambda: routed("gold")["2"] >= 24 and routed("silver")["1"] >= 24,
        timeout=25,
        what="LinUCB to route gold to 2 and silver to 1",
    )
    with workspace.store.read() as conn:
        contexts = conn.execute(
            sa.select(prediction_log.c.context).where(
                prediction_log.c.endpoint == "contextual", prediction_log.c.request_id == "c1"
            )
        ).scalar_one()
    assert isinstance(contexts, list) and len(contexts) >= 2, "the encoded context is logged"

    missing = iris.infer("contextual", ROW)
    assert_error(missing, 400, "tier")


def test_sticky_splits_log_the_unit(iris: Server, workspace: Workspace) -> None:
    iris.deploy(
        {
            "name": "sticky",
            "model": "iris",
            "route": {
                "split": {
                    "sticky_key": "user_id",
                    "variants": [{"target": 1, "weight": 50}, {"target": 2, "weight": 50}],
                }
            },
        }
    )
    for user in ("ann", "bob", "cy"):
        response = iris.infer("sticky", ROW, request_id=f"u-{user}", parameters={"user_id": user})
        assert response.status_code == 200, response.text
    rows = iris.predictions("sticky", 3)
    del rows
    with workspace.store.read() as conn:
        units = dict(
            conn.execute(
                sa.select(prediction_log.c.request_id, prediction_log.c.unit).where(
                    prediction_log.c.endpoint == "sticky"
                )
            ).all()
        )
    assert units == {"u-ann": "ann", "u-bob": "bob", "u-cy": "cy"}
