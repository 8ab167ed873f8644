"""OIP v2 REST conformance through real HTTP: health, metadata, inference, datatypes, clients."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import mlgate
from mlgate.workspace import Workspace
from tests.models import ACTOR, linear_classifier, register, softmax_reference
from tests.serving.conftest import Server, assert_error, infer_body, output, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
B2 = [0.0, 0.3, -0.1]
ROWS = np.array([[1.0, 2.0, 3.0, 4.0], [-1.5, 0.5, 2.0, -3.0]])

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    """Two versions of ``iris``, champion on 2, and no endpoint deployed: zero config."""
    register(workspace, "iris", linear_classifier(W1, B1))
    register(workspace, "iris", linear_classifier(W2, B2), champion=True)
    return serve()


def test_health_and_server_metadata(iris: Server) -> None:
    live = iris.client.get("/v2/health/live")
    assert (live.status_code, live.json()) == (200, {"live": True})
    ready = iris.client.get("/v2/health/ready")
    assert (ready.status_code, ready.json()) == (200, {"ready": True})
    meta = iris.client.get("/v2")
    assert meta.status_code == 200
    body = meta.json()
    assert body["name"] == "mlgate"
    assert body["version"] == mlgate.__version__
    assert isinstance(body["extensions"], list)
    assert all(isinstance(e, str) for e in body["extensions"]), body


def test_zero_config_serves_the_champion_under_the_registered_name(iris: Server) -> None:
    listed = iris.client.get("/v2/admin/endpoints", headers=iris.auth("viewer")).json()
    assert listed == {"deployed": [], "served": ["iris"]}

    meta = iris.client.get("/v2/models/iris")
    assert meta.status_code == 200, meta.text
    expected = {
        "name": "iris",
        "versions": ["2"],
        "platform": "onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ],
        # Where the model runs, checked against the session (the runtime's own word).
        "parameters": {
            "runtime": {
                "provider": "CPUExecutionProvider",
                "requested": ["CPUExecutionProvider"],
                "reason": meta.json()["parameters"]["runtime"]["reason"],
                "intra_op_threads": len(os.sched_getaffinity(0)),
            }
        },
    }
    assert meta.json() == expected
    assert "only the CPU provider" in expected["parameters"]["runtime"]["reason"]
    pinned = iris.client.get("/v2/models/iris/versions/2")
    assert (pinned.status_code, pinned.json()) == (200, expected)
    # Only the champion is served without an endpoint; version 1 exists but is not served.
    assert_error(iris.client.get("/v2/models/iris/versions/1"), 404, "version 1 is not served")

    for path in ("/v2/models/iris/ready", "/v2/models/iris/versions/2/ready"):
        answer = iris.client.get(path)
        assert (answer.status_code, answer.json()) == (200, {"name": "iris", "ready": True})
    assert_error(iris.client.get("/v2/models/iris/versions/7/ready"), 404, "version 7")
    assert_error(iris.client.get("/v2/models/nope/ready"), 404, "'nope'")
    assert_error(iris.client.get("/v2/models/nope"), 404, "'nope'")

    answer = iris.infer("iris", ROWS)
    assert answer.headers["x-mlgate-version"] == "2"
    np.testing.assert_allclose(
        output(answer, "probabilities"), softmax_reference(W2, B2, ROWS)[0], rtol=1e-5
    )


def test_moving_the_champion_moves_zero_config_traffic(iris: Server, workspace: Workspace) -> None:
    assert iris.infer("iris", ROWS).json()["model_version"] == "2"
    workspace.registry.move_alias("iris", "champion", 1, actor=ACTOR)
    wait_until(
        lambda: iris.infer("iris", ROWS).json()["model_version"] == "1",
        timeout=5,
        what="the server to follow the champion alias to version 1",
    )
    answer = iris.infer("iris", ROWS)
    np.testing.assert_allclose(
        output(answer, "probabilities"), softmax_reference(W1, B1, ROWS)[0], rtol=1e-5
    )


def test_infer_echoes_the_id_and_returns_only_requested_outputs(iris: Server) -> None:
    answer = iris.infer("iris", ROWS, request_id="req-42", outputs=["label"])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "req-42"
    assert answer.headers["x-request-id"] == "req-42"
    assert body["model_name"] == "iris"
    assert body["model_version"] == "2"
    assert [t["name"] for t in body["outputs"]] == ["label"]
    label = body["outputs"][0]
    assert label["datatype"] == "INT64"
    assert label["shape"] == [2]
    assert label["data"] == softmax_reference(W2, B2, ROWS)[1].tolist()

    only_probabilities = iris.infer("iris", ROWS, outputs=["probabilities"]).json()
    assert [t["name"] for t in only_probabilities["outputs"]] == ["probabilities"]
    assert only_probabilities["outputs"][0]["datatype"] == "FP32"
    assert only_probabilities["outputs"][0]["shape"] == [2, 3]

    generated = iris.infer("iris", ROWS)
    assert generated.status_code == 200
    request_id = generated.json()["id"]
    assert isinstance(request_id, str) and len(request_id) >= 16
    assert generated.headers["x-request-id"] == request_id
    assert iris.infer("iris", ROWS).json()["id"] != request_id


# Every OIP datatype that converts to the model's FP32 input without changing kind.
DATATYPES: list[tuple[str, Any]] = [
    ("FP32", [[1, 2, 3, 4], [0, -1, 2, -3]]),  # JSON integers are numbers too
    ("FP32", [[0.5, -1.25, 2.0, 3.5], [1e-3, -2.5, 0.0, 7.75]]),
    ("FP64", [[0.5, -1.25, 2.0, 3.5], [1e-3, -2.5, 0.0, 7.75]]),
    ("FP16", [[0.5, -1.25, 2.0, 3.5], [0.25, -2.5, 0.0, 7.75]]),
    ("INT8", [[1, -2, 3, -4], [0, 5, -6, 7]]),
    ("INT16", [[100, -2, 3, -4], [0, 5, -600, 7]]),
    ("INT32", [[1, -2, 3, -4], [0, 5, -6, 70000]]),
    ("INT64", [[1, -2, 3, -4], [0, 5, -6, 7]]),
    ("UINT8", [[1, 2, 3, 4], [0, 5, 6, 255]]),
    ("UINT16", [[1, 2, 3, 4], [0, 5, 6, 65535]]),
    ("UINT32", [[1, 2, 3, 4], [0, 5, 6, 7]]),
    ("BOOL", [[True, False, True, True], [False, False, True, False]]),
]


def test_every_datatype_that_fits_the_model_is_accepted(iris: Server) -> None:
    for datatype, rows in DATATYPES:
        answer = iris.infer("iris", rows, datatype=datatype)
        assert answer.status_code == 200, (datatype, answer.text)
        x = np.asarray(rows, dtype=np.float64)
        probabilities, label = softmax_reference(W2, B2, x)
        np.testing.assert_allclose(
            output(answer, "probabilities"), probabilities, rtol=1e-4, atol=1e-6, err_msg=datatype
        )
        assert output(answer, "label").tolist() == label.tolist(), datatype


def test_nested_data_and_parameters_are_accepted(iris: Server) -> None:
    flat = infer_body(ROWS, request_id="flat")
    nested = infer_body(ROWS, request_id="nested")
    nested["inputs"][0]["data"] = ROWS.tolist()  # [[...], [...]] as Triton and KServe send
    nested["parameters"] = {"content_type": "np", "user": "ana", "priority": 3, "flag": True}
    nested["inputs"][0]["parameters"] = {"content_type": "np"}
    nested["outputs"] = [{"name": "probabilities", "parameters": {"binary_data": False}}]
    a = iris.client.post("/v2/models/iris/infer", json=flat)
    b = iris.client.post("/v2/models/iris/infer", json=nested)
    assert b.status_code == 200, b.text
    assert output(a, "probabilities").tolist() == output(b, "probabilities").tolist()
    # A three-level nesting of a [2, 2, 2] request is flattened too, then shape-checked.
    deep = infer_body(ROWS)
    deep["inputs"][0]["shape"] = [2, 2, 2]
    deep["inputs"][0]["data"] = ROWS.reshape(2, 2, 2).tolist()
    assert_error(
        iris.client.post("/v2/models/iris/infer", json=deep), 400, "must have shape [-1, 4]"
    )


def test_pinned_version_inference(iris: Server) -> None:
    answer = iris.infer("iris", ROWS, version=2)
    assert answer.json()["model_version"] == "2"
    assert answer.headers["x-mlgate-route"] == "pinned:2"


def test_openapi_document_lists_the_inference_routes(iris: Server) -> None:
    document = iris.client.get("/openapi.json")
    assert document.status_code == 200
    paths = document.json()["paths"]
    for path in ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer"):
        assert "post" in paths[path], sorted(paths)
        schema = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["inputs"]
    assert "get" in paths["/v2/health/ready"]
    assert "put" in paths["/v2/admin/endpoints/{name}"]


def test_tritonclient_http_works_unchanged(iris: Server) -> None:
    """NVIDIA's own OIP client, JSON tensors (binary_data=False); nothing adapted for us."""
    http = pytest.importorskip(
        "tritonclient.http",
        reason="tritonclient[http] is not installed (pip install 'tritonclient[http]')",
    )
    client = http.InferenceServerClient(url=iris.url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("iris")
        assert client.is_model_ready("iris", "2")
        assert not client.is_model_ready("nope")
        assert client.get_server_metadata()["name"] == "mlgate"
        assert client.get_model_metadata("iris")["inputs"][0]["name"] == "x"

        x = ROWS.astype(np.float32)
        tensor = http.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=False)
        wanted = [
            http.InferRequestedOutput("probabilities", binary_data=False),
            http.InferRequestedOutput("label", binary_data=False),
        ]
        result = client.infer("iris", [tensor], outputs=wanted, request_id="triton-1")
        assert result.get_response()["id"] == "triton-1"
        assert result.get_response()["model_version"] == "2"
        probabilities, label = softmax_reference(W2, B2, x)
        np.testing.assert_allclose(result.as_numpy("probabilities"), probabilities, rtol=1e-5)
        assert result.as_numpy("label").tolist() == label.tolist()

        pinned = client.infer("iris", [tensor], model_version="2", outputs=wanted[:1])
        assert pinned.as_numpy("label") is None
        np.testing.assert_allclose(pinned.as_numpy("probabilities"), probabilities, rtol=1e-5)

        binary = http.InferInput("x", list(x.shape), "FP32")
        binary.set_data_from_numpy(x, binary_data=True)
        with pytest.raises(Exception, match="binary_data=False"):
            client.infer("iris", [binary], outputs=wanted)
    finally:
        client.close()
