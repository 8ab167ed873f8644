"""The prediction log, feedback and /metrics after real HTTP traffic, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.serving.feedback import labelled_predictions, read_predictions
from mlgate.store.schema import feedback
from mlgate.workspace import Workspace
from tests.models import fragile_classifier, linear_classifier, register, softmax_reference
from tests.serving.conftest import Server, assert_error, output

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
ROWS = [[0.5, 1.0, -1.0, 2.0], [1.5, -2.0, 0.25, 0.0]]

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    server = serve()
    server.deploy({"name": "logged", "model": "iris", "logging": {"sample_rate": 1.0}})
    server.deploy({"name": "quiet", "model": "iris", "logging": {"sample_rate": 0.0}})
    return server


def _feedback_rows(workspace: Workspace) -> list[dict[str, object]]:
    with workspace.store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(feedback).order_by(feedback.c.id))]


def test_requests_are_logged_with_their_payloads_unless_sampled_out(
    iris: Server, workspace: Workspace
) -> None:
    for i in range(3):  # first, so the writer's FIFO queue holds them before the others
        assert iris.infer("quiet", ROWS, request_id=f"quiet-{i}").status_code == 200
    answers = {}
    for i in range(3):
        response = iris.infer("logged", ROWS, request_id=f"logged-{i}", parameters={"tier": "a"})
        answers[f"logged-{i}"] = response
    rows = iris.predictions("logged", 3)
    assert [r["request_id"] for r in rows] == ["logged-0", "logged-1", "logged-2"]
    for row in rows:
        response = answers[row["request_id"]]
        assert row["endpoint"] == "logged"
        assert row["version"] == "1"
        assert row["route"] == "target"
        assert row["status"] == "ok"
        assert row["shadow"] is False
        assert row["latency_ms"] > 0
        assert row["created_at"]
        np.testing.assert_allclose(row["inputs"]["x"], ROWS, rtol=1e-6)
        np.testing.assert_allclose(
            row["outputs"]["probabilities"], output(response, "probabilities"), rtol=1e-6
        )
        assert row["outputs"]["label"] == output(response, "label").tolist()
    # The quiet endpoint's requests were queued before these and were never written.
    assert read_predictions(workspace.store, "quiet") == []


def test_feedback_is_stored_and_joined_to_the_log(iris: Server, workspace: Workspace) -> None:
    response = iris.infer("logged", ROWS, request_id="to-label")
    assert response.status_code == 200
    iris.predictions("logged", 1)
    single = iris.client.post(
        "/v2/models/logged/feedback", json={"request_id": "to-label", "label": [1, 0]}
    )
    assert (single.status_code, single.json()) == (200, {"accepted": 1})
    batch = iris.client.post(
        "/v2/models/logged/feedback",
        json={
            "feedback": [
                {"request_id": "to-label", "reward": 0.5},
                {"request_id": "later", "label": "cat", "reward": -1},
            ]
        },
    )
    assert (batch.status_code, batch.json()) == (200, {"accepted": 2})
    stored = _feedback_rows(workspace)
    assert [(r["endpoint"], r["request_id"], r["label"], r["reward"]) for r in stored] == [
        ("logged", "to-label", [1, 0], None),
        ("logged", "to-label", None, 0.5),
        ("logged", "later", "cat", -1.0),
    ]
    labelled = labelled_predictions(workspace.store, "logged")
    assert [(r["request_id"], r["label"]) for r in labelled] == [("to-label", [1, 0])]


REFUSED_FEEDBACK: list[tuple[object, str]] = [
    ({"request_id": "r", "label": 1, "score": 3}, "unknown feedback fields ['score']"),
    ({"feedback": [{"request_id": "r", "reward": 1}, {"id": "r"}]}, "unknown feedback fields"),
    ({"label": 1}, "request_id must be the non-empty id"),
    ({"request_id": "r"}, "give a label, a reward or both"),
    ({"request_id": "r", "reward": "high"}, "reward must be a number"),
    ({"request_id": "r", "reward": True}, "reward must be a number"),
    ({"request_id": "r" * 129, "label": 1}, "129 characters"),
    ([1, 2], "feedback must be"),
    ({"feedback": "r"}, "feedback must be"),
    (
        {"request_id": "r", "label": 1, "feedback": [{"request_id": "s", "label": 2}]},
        "unknown feedback fields ['label', 'request_id'] beside the \"feedback\" list",
    ),
]


def test_bad_feedback_is_refused_whole(iris: Server, workspace: Workspace) -> None:
    for body, fragment in REFUSED_FEEDBACK:
        response = iris.client.post("/v2/models/logged/feedback", json=body)
        assert_error(response, 400, fragment)
    mixed = {"feedback": [{"request_id": "fine", "reward": 1.0}, {"request_id": "bad"}]}
    assert_error(iris.client.post("/v2/models/logged/feedback", json=mixed), 400, "item 1")
    not_json = iris.client.post("/v2/models/logged/feedback", content=b"{reward")
    assert_error(not_json, 400, "not valid JSON")
    unknown = iris.client.post("/v2/models/nope/feedback", json={"request_id": "r", "label": 1})
    assert_error(unknown, 404, "'nope'")
    assert _feedback_rows(workspace) == [], (
        "a refused batch stores nothing, not even its good items"
    )


def test_metrics_count_traffic_with_the_right_labels(iris: Server, workspace: Workspace) -> None:
    register(workspace, "fragile", fragile_classifier(W1, B1), champion=True)
    iris.deploy({"name": "fragile", "circuit_breaker": {"failure_threshold": 50}})
    for _ in range(4):
        assert iris.infer("logged", ROWS).status_code == 200
    assert iris.infer("logged", ROWS, version=1).status_code == 200
    assert iris.infer("fragile", ROWS).status_code == 200
    assert_error(iris.infer("fragile", [[5.0, 0.0, 0.0, 0.0]]), 500, "model failed")

    response = iris.client.get("/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    samples = iris.metrics()

    def value(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    ok = {"endpoint": "logged", "version": "1", "status": "ok"}
    assert value("mlgate_requests_total", route="single", **ok) == 5
    assert value("mlgate_request_latency_seconds_count", **ok) == 5
    assert value("mlgate_request_latency_seconds_bucket", le="+Inf", **ok) == 5
    assert (
        value("mlgate_requests_total", endpoint="fragile", version="1", route="single", status="ok")
        == 1
    )
    assert value("mlgate_errors_total", endpoint="fragile", version="1", kind="model") == 1
    # Batches are counted per model version, in rows and requests.
    assert value("mlgate_batch_size_rows_sum", model="iris", version="1") == 2 * 5
    assert value("mlgate_batch_size_requests_sum", model="iris", version="1") == 5
    assert value("mlgate_queue_depth_requests", model="iris", version="1") == 0
    assert ("mlgate_prediction_log_dropped_total", ()) in samples
    np.testing.assert_allclose(
        output(iris.infer("logged", ROWS), "probabilities"),
        softmax_reference(W1, B1, ROWS)[0],
        rtol=1e-5,
    )
