"""A real mlgate server for end-to-end tests: uvicorn on 127.0.0.1, real HTTP clients.

``serve()`` runs :func:`mlgate.serving.app.create_app` under uvicorn in a background
thread on a free port of 127.0.0.1, waits for ``/v2/health/ready`` and hands back a
:class:`Server` with an ``httpx.Client`` and bearer tokens of every role. Models are
registered in the test's workspace (the same store the server reads); the server
notices new ledger entries within ``poll_interval_s``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn

from mlgate.config import Settings
from mlgate.serving.app import ServeConfig, create_app
from mlgate.serving.auth import TokenStore
from mlgate.serving.feedback import read_predictions
from mlgate.workspace import Workspace
from tests.models import open_all_gates

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 30.0


def wait_until(
    condition: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def infer_body(
    x: Any,
    *,
    input_name: str = "x",
    datatype: str = "FP32",
    request_id: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    outputs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """An OIP v2 inference request for one 2-D input given as rows."""
    array = np.asarray(x)
    body: dict[str, Any] = {
        "inputs": [
            {
                "name": input_name,
                "datatype": datatype,
                "shape": list(array.shape),
                "data": array.reshape(-1).tolist(),
            }
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    if parameters is not None:
        body["parameters"] = dict(parameters)
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def output(response: httpx.Response, name: str) -> np.ndarray[Any, Any]:
    """One output tensor of a successful inference response, reshaped."""
    assert response.status_code == 200, response.text
    for tensor in response.json()["outputs"]:
        if tensor["name"] == name:
            return np.asarray(tensor["data"]).reshape(tensor["shape"])
    raise AssertionError(f"no output {name!r} in {response.text}")


def assert_error(response: httpx.Response, status: int, *fragments: str) -> str:
    """The response is ``status`` with exactly ``{"error": message}``, no traceback text."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert isinstance(message, str) and message, body
    for marker in ("Traceback", 'File "', "site-packages", "mlgate/serving"):
        assert marker not in response.text, response.text
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@dataclasses.dataclass
class Server:
    """A running server: its base URL, a client, the workspace it serves and role tokens."""

    url: str
    client: httpx.Client
    workspace: Workspace
    tokens: dict[str, str]
    _server: uvicorn.Server
    _thread: threading.Thread

    def auth(self, role: str) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[role]}"}

    def infer(
        self,
        name: str,
        x: Any,
        *,
        version: str | int | None = None,
        headers: Mapping[str, str] | None = None,
        **body: Any,
    ) -> httpx.Response:
        path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "")
        return self.client.post(f"{path}/infer", json=infer_body(x, **body), headers=headers)

    def deploy(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Deploy through the admin API (the server swaps its snapshot before answering)."""
        name = spec["name"]
        response = self.client.put(
            f"/v2/admin/endpoints/{name}", json=dict(spec), headers=self.auth("deployer")
        )
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def predictions(self, endpoint: str, count: int, *, timeout: float = 10.0) -> list[Any]:
        """The endpoint's prediction log once it holds at least ``count`` rows."""
        return list(
            wait_until(
                lambda: (
                    (rows := read_predictions(self.workspace.store, endpoint))
                    and len(rows) >= count
                    and rows
                ),
                timeout=timeout,
                what=f"{count} prediction log rows of {endpoint!r}",
            )
        )

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of /metrics as {(name, sorted labels): value}."""
        from prometheus_client.parser import text_string_to_metric_families

        response = self.client.get("/metrics")
        assert response.status_code == 200, response.text
        samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def healthy(self) -> bool:
        live = self.client.get("/v2/health/live")
        ready = self.client.get("/v2/health/ready")
        return bool(live.json() == {"live": True} and ready.json() == {"ready": True})

    def stop(self) -> None:
        open_all_gates()  # a model call still waiting would hold up the shutdown
        self.client.close()
        self._server.should_exit = True
        self._thread.join(_STOP_TIMEOUT_S)
        assert not self._thread.is_alive(), "the server did not stop"


def start_server(settings: Settings, workspace: Workspace, config: ServeConfig) -> Server:
    """Create role tokens, start uvicorn in a thread, and wait until the server is ready."""
    store = TokenStore(workspace.store, workspace.log, workspace.clock)
    tokens = {
        role: store.create(f"e2e-{role}-{time.monotonic_ns()}", role, actor="test:serving")
        for role in ("viewer", "deployer", "admin")
    }
    app = create_app(settings, config)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, loop="asyncio", ws="none", log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, name="mlgate-e2e-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            pytest.fail("the server thread died while starting (see the captured log)")
        if time.monotonic() > deadline:
            server.should_exit = True
            pytest.fail("the server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=url, timeout=30.0)
    running = Server(url, client, workspace, tokens, server, thread)
    try:
        wait_until(
            lambda: client.get("/v2/health/ready").status_code == 200,
            timeout=_START_TIMEOUT_S,
            what="/v2/health/ready",
        )
    except BaseException:
        running.stop()
        raise
    return running


@pytest.fixture
def serve(settings: Settings, workspace: Workspace) -> Iterator[Callable[..., Server]]:
    """``serve(**ServeConfig fields)`` starts a server on this test's workspace."""
    started: list[Server] = []

    def start(**overrides: Any) -> Server:
        options: dict[str, Any] = {"poll_interval_s": 0.1, "seed": 20240601}
        options["inference_threads"] = 8  # a hung model must not starve the others
        # A test machine's CPU is shared: its load must not make a test about queues or
        # deadlines see concurrency-limit 503s. test_server_overload turns it back on.
        options["target_latency_ms"] = 0.0
        options.update(overrides)
        running = start_server(settings, workspace, ServeConfig(**options))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()
