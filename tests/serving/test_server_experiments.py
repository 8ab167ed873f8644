"""Live A/B analysis through the admin API: the server reads its own prediction log and
feedback, builds the analysis document, and answers with the same analysis the CLI gives."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import pytest
from scipy.stats import chisquare

from mlgate.experiments.analysis import analyze_document
from mlgate.workspace import Workspace
from tests.models import linear_classifier, register
from tests.serving.conftest import Server, assert_error

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


def test_a_live_split_is_analysed_from_its_log_and_feedback(iris: Server) -> None:
    # Traffic before the split, and pinned calls during it, were not randomised.
    iris.deploy({"name": "ab", "model": "iris", "route": 1})
    for i in range(20):
        assert iris.infer("ab", ROW, request_id=f"before-{i}").status_code == 200
    iris.predictions("ab", 20)
    time.sleep(0.01)  # the split's revision is deployed strictly after those rows
    iris.deploy(
        {
            "name": "ab",
            "model": "iris",
            "route": {
                "split": {
                    "sticky_key": "user_id",
                    "variants": [{"target": 1, "weight": 50}, {"target": 2, "weight": 50}],
                }
            },
        }
    )
    served: dict[str, str] = {}
    users: Counter[str] = Counter()
    for i in range(240):
        user = f"user-{i % 80}"  # 80 users, 3 requests each: units are not requests
        rid = f"ab-{i}"
        response = iris.infer("ab", ROW, request_id=rid, parameters={"user_id": user})
        assert response.status_code == 200, response.text
        served[rid] = response.headers["x-mlgate-version"]
        users[f"{user}:{served[rid]}"] += 1
    for i in range(10):
        pinned = iris.infer("ab", ROW, version=2, request_id=f"pinned-{i}")
        assert pinned.status_code == 200
    iris.predictions("ab", 20 + len(served) + 10)
    # Version 2 converts every second request, version 1 every fifth.
    feedback = [
        {"request_id": rid, "reward": float(int(rid[3:]) % (2 if v == "2" else 5) == 0)}
        for rid, v in served.items()
    ]
    posted = iris.client.post("/v2/models/ab/feedback", json={"feedback": feedback})
    assert posted.status_code == 200, posted.text

    response = iris.client.get(
        "/v2/admin/experiments/ab",
        params={"method": "frequentist", "kind": "proportion"},
        headers=iris.auth("viewer"),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    document, analysis = body["document"], body["analysis"]
    # The window starts at the split's deploy; even without it, only routed rows count.
    everything = iris.client.get(
        "/v2/admin/experiments/ab",
        params={"since": "2000-01-01T00:00:00Z", "kind": "proportion"},
        headers=iris.auth("viewer"),
    ).json()["document"]
    assert everything["variants"] == document["variants"]
    assert body["versions"] == {"1": "1", "2": "2"}
    requests = Counter(served.values())
    assert {k: v["n"] for k, v in document["variants"].items()} == dict(requests)
    conversions = Counter(v for rid, v in served.items() if feedback_reward(feedback, rid))
    assert {k: v["sum"] for k, v in document["variants"].items()} == dict(conversions)
    unit_counts = Counter(key.split(":")[1] for key in users)
    assert document["units"] == dict(unit_counts)
    assert document["weights"] == {"1": 0.5, "2": 0.5}
    # The sample-ratio check counts users, as the sticky split assigned users.
    expected = chisquare([unit_counts["1"], unit_counts["2"]]).pvalue
    result = analysis["results"]["2"]
    assert result["srm_p_value"] == pytest.approx(expected, rel=1e-9)
    assert result["lift"] > 0 and result["ci"][0] <= result["lift"] <= result["ci"][1]
    assert 0.0 <= result["p_value"] <= 1.0
    assert analysis == analyze_document(document), "one analysis path, whatever the face"


def feedback_reward(feedback: list[dict[str, object]], rid: str) -> bool:
    return any(item["request_id"] == rid and item["reward"] == 1.0 for item in feedback)


def test_a_bandit_is_analysed_without_a_sample_ratio_verdict(iris: Server) -> None:
    iris.deploy({"name": "arms", "model": "iris", "route": {"bandit": {"arms": [1, 2], "seed": 1}}})
    for i in range(30):
        assert iris.infer("arms", ROW, request_id=f"a{i}").status_code == 200
    iris.predictions("arms", 30)
    response = iris.client.get("/v2/admin/experiments/arms", headers=iris.auth("viewer"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["document"]["allocation"] == "adaptive"
    assert any("adaptive" in note for note in body["analysis"]["notes"])
    assert body["analysis"]["results"]["2"]["verdict"] != "blocked_srm"


def test_analysis_refusals_are_clear(iris: Server) -> None:
    iris.deploy({"name": "single", "model": "iris", "route": "champion"})
    viewer = iris.auth("viewer")
    assert_error(
        iris.client.get("/v2/admin/experiments/single", headers=viewer), 400, "not by an experiment"
    )
    assert_error(
        iris.client.get("/v2/admin/experiments/nope", headers=viewer), 404, "no endpoint named"
    )
    assert_error(
        iris.client.get("/v2/admin/experiments/single?method=peeking", headers=viewer),
        400,
        "method must be one of",
    )
    assert_error(
        iris.client.get("/v2/admin/experiments/single?since=yesterday", headers=viewer),
        400,
        "ISO 8601",
    )
    assert iris.client.get("/v2/admin/experiments/single").status_code == 401
    posted = iris.client.post(
        "/v2/admin/experiments/analyze",
        json={
            "kind": "mean",
            "difference": "relative",
            "method": "frequentist",
            "alpha": 0.05,
            "weights": {"control": 0.5, "treatment": 0.5},
            "variants": {
                "control": {"n": 3407, "sum": 1396.87, "sum_squares": 52377.97},
                "treatment": {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
            },
        },
        headers=viewer,
    )
    assert posted.status_code == 200, posted.text
    assert set(posted.json()["results"]["treatment"]) >= {"lift", "ci", "p_value", "srm_p_value"}
    bad = iris.client.post(
        "/v2/admin/experiments/analyze",
        json={"kind": "mean", "variants": {"control": {"n": -1, "sum": 0, "sum_squares": 0}}},
        headers=viewer,
    )
    assert bad.status_code == 400, bad.text
