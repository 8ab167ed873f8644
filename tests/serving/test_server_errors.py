"""Bad input and failing models through real HTTP: precise status, an error body, no trace.

Each case checks the status code, that the body is exactly ``{"error": message}``
with no traceback text, and the part of the message that tells the client what
to fix. After every kind of failure the server must still answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from mlgate.workspace import Workspace
from tests.models import (
    fragile_classifier,
    gate,
    gated_classifier,
    linear_classifier,
    register,
)
from tests.serving.conftest import Server, assert_error, infer_body, output

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B = [0.1, -0.2, 0.3]
ROW = [[0.5, 1.0, -1.0, 2.0]]

Serve = Callable[..., Server]


@pytest.fixture
def iris(serve: Serve, workspace: Workspace) -> Server:
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    return serve()


def _post(server: Server, body: Any, path: str = "/v2/models/iris/infer") -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return server.client.post(path, content=raw, headers={"content-type": "application/json"})


def _with_input(**changes: Any) -> dict[str, Any]:
    body = infer_body(ROW)
    body["inputs"][0].update(changes)
    return body


BAD_REQUESTS: list[tuple[str, Any, int, str]] = [
    ("truncated JSON", b'{"inputs": [{"name": "x"', 400, "not valid JSON"),
    ("not an object", b"[1, 2, 3]", 400, 'with an "inputs" list'),
    ("no inputs", {"inputs": []}, 400, '"inputs" must be a non-empty array'),
    ("unknown datatype", _with_input(datatype="FLOAT32"), 400, "expected one of"),
    ("strings for FP32", _with_input(data=["a", "b", "c", "d"]), 400, "is FP32 but data element 0"),
    (
        "BYTES for an FP32 input",
        _with_input(datatype="BYTES", data=["a", "b", "c", "d"]),
        400,
        "input 'x' must be FP32",
    ),
    (
        "FP32 fractions for an INT64 tensor",
        _with_input(datatype="INT64", data=[0.5, 1, 2, 3]),
        400,
        "integers",
    ),
    ("booleans for FP32", _with_input(data=[True, 1, 2, 3]), 400, "data element 0"),
    ("shape larger than data", _with_input(shape=[2, 4]), 400, "= 8 values but data holds 4"),
    ("shape smaller than data", _with_input(shape=[1, 3]), 400, "= 3 values but data holds 4"),
    ("wrong rank", _with_input(shape=[4]), 400, "must have shape [-1, 4]"),
    ("wrong width", _with_input(shape=[2, 2]), 400, "must have shape [-1, 4]"),
    ("negative dimension", _with_input(shape=[-1, 4]), 400, "non-negative integers"),
    ("missing input", _with_input(name="y"), 400, "missing ['x'], unexpected ['y']"),
    (
        "extra input",
        {"inputs": [*infer_body(ROW)["inputs"], *_with_input(name="extra")["inputs"]]},
        400,
        "unexpected ['extra']",
    ),
    (
        "duplicate input",
        {"inputs": infer_body(ROW)["inputs"] * 2},
        400,
        "appears more than once",
    ),
    (
        "NaN token",
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [NaN, 1, 2, 3]}]}',
        400,
        "JSON has no NaN or Infinity",
    ),
    (
        "Infinity token",
        b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], '
        b'"data": [1, Infinity, 2, 3]}]}',
        400,
        "JSON has no NaN or Infinity",
    ),
    (
        "1e400 overflows a double",
        b'{"inputs": [{"name": "x", "datatype": "FP64", '
        b'"shape": [1, 4], "data": [1, 1e400, 2, 3]}]}',
        400,
        "infinity",
    ),
    ("1e39 overflows FP32", _with_input(data=[1, 1e39, 2, 3]), 400, "beyond its largest value"),
    ("FP64 beyond FP32", _with_input(datatype="FP64", data=[1, 1e300, 2, 3]), 400, "too large"),
    ("unknown output", {**infer_body(ROW), "outputs": [{"name": "logits"}]}, 400, "['logits']"),
    ("id not a string", {**infer_body(ROW), "id": 7}, 400, '"id" must be a string'),
    ("id of 129 characters", {**infer_body(ROW), "id": "r" * 129}, 400, "129 characters"),
    (
        "id that would split the x-request-id header",
        {**infer_body(ROW), "id": "r1\r\nx-injected: yes"},
        400,
        "control character",
    ),
    ("parameters not an object", {**infer_body(ROW), "parameters": [1]}, 400, "JSON object"),
    (
        "binary tensor extension",
        _with_input(parameters={"binary_data_size": 16}),
        400,
        "binary_data=False",
    ),
]


def test_bad_requests_get_precise_errors_and_the_server_keeps_serving(iris: Server) -> None:
    for case, body, status, fragment in BAD_REQUESTS:
        response = _post(iris, body)
        try:
            assert_error(response, status, fragment)
        except AssertionError as exc:
            raise AssertionError(f"{case}: {exc}") from None
    assert_error(_post(iris, infer_body(ROW), "/v2/models/nope/infer"), 404, "'nope'")
    assert_error(
        _post(iris, infer_body(ROW), "/v2/models/iris/versions/9/infer"),
        404,
        "version 9 is not served",
    )
    assert_error(
        _post(iris, infer_body(ROW), "/v2/models/iris/versions/latest/infer"),
        404,
        "version latest is not served",
    )
    assert iris.healthy()
    exactly_128 = iris.infer("iris", ROW, request_id="r" * 128)
    assert exactly_128.status_code == 200, exactly_128.text
    assert exactly_128.json()["id"] == "r" * 128
    # Any JSON string is a valid id; one that a header cannot carry is echoed in the body.
    unicode = iris.infer("iris", ROW, request_id="請求-7")
    assert unicode.status_code == 200, unicode.text
    assert unicode.json()["id"] == "請求-7"
    assert "x-request-id" not in unicode.headers


def test_unknown_routes_and_methods_answer_in_the_oip_error_shape(iris: Server) -> None:
    assert_error(iris.client.get("/v2/nothing/here"), 404, "Not Found")
    wrong_method = iris.client.get("/v2/models/iris/infer")
    assert_error(wrong_method, 405, "Method Not Allowed")
    assert wrong_method.headers["allow"] == "POST"


def test_allow_non_finite_still_refuses_overflow(iris: Server) -> None:
    """JSON carries no NaN or infinity at all; an endpoint that allows them still must not
    let a finite value overflow into one on its way to the model's dtype."""
    iris.deploy({"name": "tolerant", "model": "iris", "allow_non_finite": True})
    answer = iris.infer("tolerant", [[1, 1e39, 2, 3]])
    assert_error(answer, 400, "beyond its largest value")
    answer = iris.infer("tolerant", [[1, 1e300, 2, 3]], datatype="FP64")
    assert_error(answer, 400, "too large for FP32")
    assert iris.infer("tolerant", ROW).status_code == 200


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    head = b'{"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": ['
    yield head
    sent = len(head)
    filler = b"1," * (size // 2)
    while sent < total:
        piece = filler[: total - sent]
        yield piece
        sent += len(piece)


HUNDRED_MB = 100 * 1024 * 1024


def test_a_100_mb_body_is_refused_with_413_with_or_without_content_length(iris: Server) -> None:
    declared = iris.client.post(
        "/v2/models/iris/infer",
        content=_chunks(HUNDRED_MB),
        headers={"content-type": "application/json", "content-length": str(HUNDRED_MB)},
    )
    assert_error(declared, 413, f"request body is {HUNDRED_MB} bytes", "at most")

    chunked = iris.client.post(
        "/v2/models/iris/infer",
        content=_chunks(HUNDRED_MB),
        headers={"content-type": "application/json"},
    )
    assert chunked.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in chunked.request.headers
    assert_error(chunked, 413, "request body exceeds")
    assert iris.healthy()
    assert iris.infer("iris", ROW).status_code == 200


def test_too_many_tensor_values_is_refused_before_decoding(
    serve: Serve, workspace: Workspace
) -> None:
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    server = serve(max_elements=8)
    assert server.infer("iris", ROW * 2).status_code == 200
    assert_error(server.infer("iris", ROW * 3), 413, "more than the limit of 8")


def test_a_model_that_raises_gets_500_and_the_server_keeps_serving(
    serve: Serve, workspace: Workspace
) -> None:
    register(workspace, "fragile", fragile_classifier(W, B), champion=True)
    server = serve()
    assert server.infer("fragile", ROW).status_code == 200
    # x[0] = 5 indexes past the model's 3-entry table: onnxruntime fails at run time.
    failed = server.infer("fragile", [[5.0, 0.0, 0.0, 0.0]])
    message = assert_error(failed, 500, "model failed", "Gather")
    assert "indices element out of data bounds" in message
    assert server.healthy()
    after = server.infer("fragile", ROW)
    assert after.status_code == 200, after.text
    assert output(after, "check").tolist() == [[1.0]]
    # The failure is counted and logged, so error rates computed from either are honest.
    metrics = server.metrics()
    assert (
        _sample(
            metrics,
            "mlgate_requests_total",
            endpoint="fragile",
            version="-",
            route="-",
            status="error",
        )
        == 1
    )
    assert (
        _sample(
            metrics,
            "mlgate_requests_total",
            endpoint="fragile",
            version="1",
            route="single",
            status="ok",
        )
        == 2
    )
    rows = server.predictions("fragile", 3)
    assert sorted(r["status"] for r in rows) == ["error", "ok", "ok"]
    bad = server.infer("fragile", [[1.0, 2.0]])  # wrong shape: counted as invalid
    assert bad.status_code == 400
    assert (
        _sample(
            server.metrics(),
            "mlgate_requests_total",
            endpoint="fragile",
            version="-",
            route="-",
            status="invalid",
        )
        == 1
    )


def test_a_model_that_hangs_gets_504_while_other_models_answer(
    serve: Serve, workspace: Workspace
) -> None:
    register(workspace, "iris", linear_classifier(W, B), champion=True)
    data, trusted = gated_classifier("hang-504")
    register(workspace, "sleepy", data, champion=True, trusted_types=trusted)
    server = serve()
    server.deploy({"name": "sleepy", "timeout_ms": 300})

    hung = server.infer("sleepy", ROW, input_name="input", datatype="FP64")
    assert_error(hung, 504, "did not answer within")
    assert gate("hang-504").calls == 1  # the model was really called, and is still running
    # The hung call holds its own version's slot, nothing else: other models answer.
    for _ in range(5):
        assert server.infer("iris", ROW).status_code == 200
    assert server.healthy()

    gate("hang-504").opened.set()
    recovered = server.infer("sleepy", ROW, input_name="input", datatype="FP64")
    assert recovered.status_code == 200, recovered.text
    assert output(recovered, "probabilities").tolist() == [[0.2, 0.3, 0.5]]


def _sample(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_repeated_timeouts_open_the_circuit_and_the_fallback_answers(
    serve: Serve, workspace: Workspace
) -> None:
    """A hung version times out twice, its breaker opens, and the declared fallback answers."""
    register(workspace, "guarded", linear_classifier(W, B, input_name="input", dtype=np.float64))
    data, trusted = gated_classifier("hang-breaker")
    register(workspace, "guarded", data, trusted_types=trusted)
    server = serve()
    server.deploy(
        {
            "name": "guarded",
            "route": {"target": 2},
            "timeout_ms": 250,
            "fallback": {"targets": [1]},
            "circuit_breaker": {"failure_threshold": 2, "reset_timeout_s": 60},
        }
    )
    for _ in range(5):
        answer = server.infer("guarded", ROW, input_name="input", datatype="FP64")
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-mlgate-version"] == "1"
        assert answer.headers["x-mlgate-route"] == "target:fallback"
    metrics = server.metrics()
    # Two deadline misses opened the breaker; the other three never reached the model.
    assert _sample(metrics, "mlgate_timeouts_total", endpoint="guarded", version="2") == 2
    assert (
        _sample(
            metrics, "mlgate_fallbacks_total", endpoint="guarded", from_version="2", to_version="1"
        )
        == 5
    )
    assert gate("hang-breaker").calls == 1
    rows = server.predictions("guarded", 5)
    assert {(r["version"], r["status"]) for r in rows} == {("1", "fallback")}

    without_fallback = server.deploy(
        {
            "name": "guarded",
            "route": {"target": 2},
            "timeout_ms": 250,
            "circuit_breaker": {"failure_threshold": 2, "reset_timeout_s": 60},
        }
    )
    assert without_fallback["revision"] == 2
    # The open breaker now answers for itself: 503 with Retry-After, at once.
    refused = server.infer("guarded", ROW, input_name="input", datatype="FP64")
    assert_error(refused, 503, "circuit is open")
    assert refused.headers["retry-after"] == "1"
    # Three refusals while the fallback answered, and this one.
    shed = _sample(server.metrics(), "mlgate_shed_total", endpoint="guarded", reason="circuit_open")
    assert shed == 4
    assert server.healthy()


def test_a_model_slower_than_its_budget_opens_the_circuit_under_sequential_traffic(
    serve: Serve, workspace: Workspace
) -> None:
    """No queue, no load: each call begins with its whole budget and misses it."""
    data, trusted = gated_classifier(delay_s=0.4)
    register(workspace, "plodding", data, trusted_types=trusted, champion=True)
    server = serve()
    server.deploy(
        {
            "name": "plodding",
            "timeout_ms": 150,
            "circuit_breaker": {"failure_threshold": 2, "reset_timeout_s": 60},
        }
    )
    for _ in range(2):
        late = server.infer("plodding", ROW, input_name="input", datatype="FP64")
        assert_error(late, 504, "deadline")
    refused = server.infer("plodding", ROW, input_name="input", datatype="FP64")
    assert_error(refused, 503, "circuit is open")
    metrics = server.metrics()
    assert _sample(metrics, "mlgate_shed_total", endpoint="plodding", reason="circuit_open") == 1


def test_circuit_breaker_settings_take_effect_on_redeploy(
    serve: Serve, workspace: Workspace
) -> None:
    """A redeploy that only changes circuit_breaker must not keep the old breaker."""
    register(workspace, "fragile", fragile_classifier(W, B), champion=True)
    server = serve()
    server.deploy({"name": "fragile", "circuit_breaker": {"failure_threshold": 50}})
    server.deploy({"name": "fragile", "circuit_breaker": {"failure_threshold": 1}})
    assert_error(server.infer("fragile", [[5.0, 0.0, 0.0, 0.0]]), 500, "model failed")
    # One failure reaches the new threshold of 1: the next call is refused without running.
    assert_error(server.infer("fragile", ROW), 503, "circuit is open")
