"""The admin API through real HTTP: bearer roles, YAML and JSON deploys, history, removal,
refusals that deploy nothing, and a ledger entry for every change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from mlgate.workspace import Workspace
from tests.models import gated_classifier, linear_classifier, register
from tests.serving.conftest import Server, assert_error

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
B2 = [0.0, 0.3, -0.1]
ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]

CANARY_YAML = """\
name: canary
model: iris
route:
  split:
    variants:
      - {target: 1, weight: 100}
      - {target: 2, weight: 0}
shadow:
  - target: 2
    fraction: 0.5
timeout_ms: 800
"""


def _ledger_size(workspace: Workspace) -> int:
    with workspace.store.read() as conn:
        return workspace.log.size(conn)


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    register(workspace, "iris", linear_classifier(W2, B2))
    return serve()


def _put(server: Server, name: str, body: str | bytes, content_type: str, role: str | None) -> Any:
    headers = {"content-type": content_type}
    if role is not None:
        headers.update(server.auth(role))
    raw = body.encode() if isinstance(body, str) else body
    return server.client.put(f"/v2/admin/endpoints/{name}", content=raw, headers=headers)


def test_deploying_needs_a_deployer_token(iris: Server, workspace: Workspace) -> None:
    size = _ledger_size(workspace)
    missing = _put(iris, "canary", CANARY_YAML, "application/yaml", None)
    assert_error(missing, 401, "no Authorization header")
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = iris.client.put(
        "/v2/admin/endpoints/canary",
        content=CANARY_YAML,
        headers={"authorization": "Bearer mlg_not-a-real-token"},
    )
    assert_error(wrong, 401, "unknown or revoked")
    assert_error(
        iris.client.put(
            "/v2/admin/endpoints/canary", content=CANARY_YAML, headers={"authorization": "Basic x"}
        ),
        401,
        "not a bearer token",
    )
    viewer = _put(iris, "canary", CANARY_YAML, "application/yaml", "viewer")
    assert_error(viewer, 403, "has role viewer; this needs deployer or admin")
    assert_error(iris.client.delete("/v2/admin/endpoints/canary"), 401)
    assert_error(iris.client.delete("/v2/admin/endpoints/canary", headers=iris.auth("viewer")), 403)
    assert_error(iris.client.get("/v2/admin/endpoints"), 401)
    assert _ledger_size(workspace) == size, "a refused request must change nothing"
    assert_error(iris.infer("canary", ROW), 404, "'canary'")
    admin = _put(iris, "canary", CANARY_YAML, "application/yaml", "admin")
    assert admin.status_code == 200, admin.text


def test_yaml_and_json_deploys_list_history_and_delete(iris: Server, workspace: Workspace) -> None:
    sizes = [_ledger_size(workspace)]
    first = _put(iris, "canary", CANARY_YAML, "application/yaml", "deployer")
    assert first.status_code == 200, first.text
    deployed = first.json()
    assert deployed["revision"] == 1
    assert deployed["updated_by"].startswith("token:e2e-deployer-")  # its name, not the token
    assert deployed["spec"]["route"]["split"]["variants"][0] == {"target": 1, "weight": 100.0}
    assert deployed["spec"]["shadow"] == [{"target": 2, "fraction": 0.5}]
    sizes.append(_ledger_size(workspace))
    assert deployed["ledger_seq"] == sizes[0]
    assert iris.infer("canary", ROW).headers["x-mlgate-version"] == "1"

    as_json: dict[str, Any] = {
        "model": "iris",
        "route": {
            "split": {"variants": [{"target": 1, "weight": 0}, {"target": 2, "weight": 100}]}
        },
    }
    second = iris.client.put(
        "/v2/admin/endpoints/canary", json=as_json, headers=iris.auth("deployer")
    )
    assert second.status_code == 200, second.text
    assert second.json()["revision"] == 2
    assert second.json()["spec"]["name"] == "canary"  # the URL names a JSON body's endpoint
    sizes.append(_ledger_size(workspace))
    assert iris.infer("canary", ROW).headers["x-mlgate-version"] == "2"

    listed = iris.client.get("/v2/admin/endpoints", headers=iris.auth("viewer"))
    assert listed.status_code == 200
    assert [d["name"] for d in listed.json()["deployed"]] == ["canary"]
    assert listed.json()["served"] == ["canary", "iris"]
    one = iris.client.get("/v2/admin/endpoints/canary", headers=iris.auth("viewer")).json()
    assert one["revision"] == 2
    assert one["spec"]["route"] == as_json["route"]
    assert one["spec"]["shadow"] == []  # a deploy replaces the spec, it does not merge
    zero_config = iris.client.get("/v2/admin/endpoints/iris", headers=iris.auth("viewer"))
    assert zero_config.json() == {"name": "iris", "zero_config": True}
    assert_error(
        iris.client.get("/v2/admin/endpoints/nope", headers=iris.auth("viewer")), 404, "'nope'"
    )

    removed = iris.client.delete("/v2/admin/endpoints/canary", headers=iris.auth("deployer"))
    assert (removed.status_code, removed.json()) == (200, {"removed": "canary"})
    sizes.append(_ledger_size(workspace))
    assert_error(iris.infer("canary", ROW), 404, "'canary'")
    assert iris.infer("iris", ROW).status_code == 200  # the zero-config model stays served
    again = iris.client.delete("/v2/admin/endpoints/canary", headers=iris.auth("deployer"))
    assert_error(again, 400, "no deployed endpoint 'canary'")

    history = iris.client.get("/v2/admin/endpoints/canary/history", headers=iris.auth("viewer"))
    assert history.status_code == 200
    entries = history.json()
    assert [(e["revision"], e["removed"]) for e in entries] == [(1, False), (2, False), (3, True)]
    assert [e["ledger_seq"] for e in entries] == sizes[:3]
    assert entries[-1]["spec"] is None

    # Every change appended exactly one ledger entry, and the whole ledger verifies.
    assert [b - a for a, b in zip(sizes, sizes[1:], strict=False)] == [1, 1, 1]
    report = workspace.verify()
    assert report.size == sizes[-1]


INVALID: list[tuple[str, str, str, tuple[str, ...]]] = [
    (
        "weights not summing to 100",
        "application/yaml",
        "name: canary\nmodel: iris\nroute:\n  split:\n    variants:\n"
        "      - {target: 1, weight: 60}\n      - {target: 2, weight: 30}\n",
        ("route.split.variants: weights must sum to 100, found 90",),
    ),
    (
        "a version that does not exist",
        "application/json",
        '{"model": "iris", "route": {"split": {"variants": '
        '[{"target": 1, "weight": 50}, {"target": 9, "weight": 50}]}}}',
        ("endpoint 'canary' routes to 9", "version 9"),
    ),
    (
        "an alias that does not exist",
        "application/json",
        '{"model": "iris", "route": "staging"}',
        ("routes to 'staging'",),
    ),
    (
        "an unknown field",
        "application/yaml",
        "name: canary\nmodel: iris\nroute: 1\ntimeout: 5\n",
        ("timeout: unknown field",),
    ),
    (
        "two policies at once",
        "application/yaml",
        "name: canary\nmodel: iris\nroute:\n  target: 1\n  ensemble: {targets: [1, 2]}\n",
        ("choose exactly one of", "found ensemble, target"),
    ),
    (
        "a rule that does not parse",
        "application/yaml",
        "name: canary\nmodel: iris\nroute:\n  rules:\n    - {when: 'tier = gold', target: 2}\n"
        "    - {default: 1}\n",
        ("route.rules[0]", "column"),
    ),
    (
        "a repeated key",
        "application/yaml",
        "name: canary\nmodel: iris\nroute: 1\nroute: 2\n",
        ("repeats the key 'route' at line 4",),
    ),
    ("YAML that does not parse", "application/yaml", "name: [canary\n", ("does not parse",)),
    ("JSON that does not parse", "application/json", '{"route": ', ("not valid JSON",)),
    ("a JSON list", "application/json", "[1, 2]", ("must be a JSON object",)),
    (
        "another name than the URL",
        "application/yaml",
        "name: other\nmodel: iris\n",
        ("names endpoint 'other' but the URL says 'canary'",),
    ),
    (
        "a model that does not exist",
        "application/yaml",
        "name: canary\nmodel: nothing\n",
        ("routes to 'champion'",),
    ),
]


def test_invalid_policies_are_refused_precisely_and_deploy_nothing(
    iris: Server, workspace: Workspace
) -> None:
    size = _ledger_size(workspace)
    for case, content_type, body, fragments in INVALID:
        response = _put(iris, "canary", body, content_type, "deployer")
        try:
            assert_error(response, 400, *fragments)
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from None
    assert _ledger_size(workspace) == size
    listed = iris.client.get("/v2/admin/endpoints", headers=iris.auth("viewer")).json()
    assert listed["deployed"] == []
    history = iris.client.get("/v2/admin/endpoints/canary/history", headers=iris.auth("viewer"))
    assert history.json() == []
    assert_error(iris.infer("canary", ROW), 404)


def test_versions_with_different_inputs_cannot_share_an_endpoint(
    iris: Server, workspace: Workspace
) -> None:
    data, trusted = gated_classifier()  # input "input" FP64, not "x" FP32
    register(workspace, "iris", data, trusted_types=trusted)
    response = iris.client.put(
        "/v2/admin/endpoints/mixed",
        json={"model": "iris", "route": {"ensemble": {"targets": [1, 3]}}},
        headers=iris.auth("deployer"),
    )
    assert_error(response, 400, "mixes versions with different inputs")


def test_an_endpoint_with_auth_required_needs_a_viewer_token(iris: Server) -> None:
    iris.deploy({"name": "private", "model": "iris", "auth": {"required": True}})
    assert_error(iris.infer("private", ROW), 401, "no Authorization header")
    allowed = iris.infer("private", ROW, headers=iris.auth("viewer"))
    assert allowed.status_code == 200, allowed.text
    assert np.asarray(allowed.json()["outputs"][0]["data"]).shape == (3,)
    feedback = {"request_id": allowed.json()["id"], "label": 1}
    assert_error(iris.client.post("/v2/models/private/feedback", json=feedback), 401)
    accepted = iris.client.post(
        "/v2/models/private/feedback", json=feedback, headers=iris.auth("viewer")
    )
    assert (accepted.status_code, accepted.json()) == (200, {"accepted": 1})
    # The zero-config model is still open to anyone.
    assert iris.infer("iris", ROW).status_code == 200
