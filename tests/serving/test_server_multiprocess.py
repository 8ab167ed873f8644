"""``mlgate serve --workers 2``, the real executable: a deploy written to the store by
another process reaches every worker within about a second."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from mlgate.config import Settings
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.feedback import read_predictions
from mlgate.serving.spec import endpoint_from_json
from mlgate.workspace import Workspace
from tests.models import ACTOR, linear_classifier, register
from tests.serving.conftest import infer_body, wait_until

pytestmark = [
    pytest.mark.parametrize(
        "store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
    pytest.mark.slow,
]

MLGATE = Path(sys.executable).parent / "mlgate"
W1 = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]
B1 = [0.1, -0.2, 0.3]
W2 = [[-1.0, 1.0, 0.0], [0.0, 0.5, -0.5], [1.0, -1.0, 0.5], [-0.25, 0.5, 0.25]]
B2 = [0.0, 0.3, -0.1]
ROW = [[0.5, 1.0, -1.0, 2.0]]
# The promise is "within a second" (the default 0.5 s poll plus a rebuild); this bound
# leaves room for a loaded 2-core CI machine and still fails if a worker never updates.
_BOUND_S = 3.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def temp_root(tmp_path: Path) -> Path:
    """TMPDIR of the server: ``mlgate serve`` makes its metrics folder in it."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


@pytest.fixture
def two_workers(
    settings: Settings, workspace: Workspace, tmp_path: Path, temp_root: Path
) -> Iterator[str]:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLGATE_", "PROMETHEUS_")) and key != "PYTHONPATH"
    }
    env.update(
        MLGATE_HOME=str(settings.home),
        MLGATE_STORE=settings.store_url,
        MLGATE_ACTOR="test:serve",
        TMPDIR=str(temp_root),
    )
    log = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [str(MLGATE), "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if process.poll() is not None:
            log.flush()
            pytest.fail(f"mlgate serve exited {process.returncode}: {_tail(tmp_path)}")
        try:
            return httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=60, interval=0.1, what="mlgate serve --workers 2")
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()
    output = _tail(tmp_path)
    assert "Traceback" not in output, output
    assert process.returncode == 0, output
    leftover = list(temp_root.glob("mlgate-metrics-*"))
    assert leftover == [], "the metrics folder it made outlived the server"


def _tail(tmp_path: Path) -> str:
    return (tmp_path / "serve.log").read_text(errors="replace")[-4000:]


def _requests_per_worker(metrics_dir: Path, scratch: Path) -> list[float]:
    """Requests each worker process answered, read from its own metrics file."""
    counts = []
    for index, path in enumerate(sorted(metrics_dir.glob("counter_*.db"))):
        alone = scratch / f"worker-{index}"
        alone.mkdir()
        shutil.copy(path, alone / path.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(alone))  # type: ignore[no-untyped-call]
        counts.append(
            sum(
                sample.value
                for family in registry.collect()
                for sample in family.samples
                if sample.name == "mlgate_requests_total"
            )
        )
    return counts


def _deploy(workspace: Workspace, target: int) -> None:
    spec = endpoint_from_json({"name": "live", "model": "iris", "route": {"target": target}})
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor=ACTOR
    )


@pytest.fixture
def iris(workspace: Workspace) -> None:
    register(workspace, "iris", linear_classifier(W1, B1), champion=True)
    register(workspace, "iris", linear_classifier(W2, B2))
    _deploy(workspace, 1)


def test_a_deploy_reaches_every_worker_within_about_a_second(
    iris: None, two_workers: str, workspace: Workspace, temp_root: Path, tmp_path: Path
) -> None:
    body = infer_body(ROW)
    # No keep-alive: every request is a new connection, accepted by whichever worker wins.
    with httpx.Client(
        base_url=two_workers, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:

        def version() -> str:
            response = client.post("/v2/models/live/infer", json=body)
            assert response.status_code == 200, response.text
            return str(response.headers["x-mlgate-version"])

        assert {version() for _ in range(60)} == {"1"}
        _deploy(workspace, 2)
        deployed = time.monotonic()
        # Watch for a while past the bound: a worker that was busy while the first new
        # answers came back must still show up with the old version, if it has it.
        seen: list[tuple[float, str]] = []
        while (elapsed := time.monotonic() - deployed) < _BOUND_S + 1.5:
            seen.append((elapsed, version()))
        last_old = max((t for t, v in seen if v == "1"), default=0.0)
        assert last_old < _BOUND_S, (
            f"a worker still answered with version 1 {last_old:.2f} s after the deploy "
            f"(promise: about 1 s)"
        )
        settled = [v for t, v in seen if t >= _BOUND_S]
        assert len(settled) >= 20 and set(settled) == {"2"}, settled
        scrape = client.get("/metrics")
        assert scrape.status_code == 200
        assert 'mlgate_requests_total{endpoint="live"' in scrape.text

    (metrics_dir,) = temp_root.glob("mlgate-metrics-*")  # PROMETHEUS_MULTIPROC_DIR
    per_worker = _requests_per_worker(metrics_dir, tmp_path)
    assert len(per_worker) == 2, per_worker
    assert all(count > 0 for count in per_worker), f"one worker answered nothing: {per_worker}"
    assert sum(per_worker) >= 180


def test_every_worker_learns_a_contextual_bandit_from_any_workers_feedback(
    iris: None, two_workers: str, workspace: Workspace
) -> None:
    """Feedback posted to whichever worker teaches both: the state is the shared log."""
    spec = endpoint_from_json(
        {
            "name": "bandit",
            "model": "iris",
            "route": {
                "bandit": {
                    "algorithm": "linucb",
                    "arms": [1, 2],
                    "alpha": 0.5,
                    "features": [{"name": "tier", "categories": ["gold", "silver"]}],
                }
            },
        }
    )
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor=ACTOR
    )
    with httpx.Client(
        base_url=two_workers, timeout=10, limits=httpx.Limits(max_keepalive_connections=0)
    ) as client:

        def served(tier: str, request_id: str | None = None) -> str:
            body = infer_body(ROW, parameters={"tier": tier}, request_id=request_id)
            response = client.post("/v2/models/bandit/infer", json=body)
            assert response.status_code == 200, response.text
            return str(response.headers["x-mlgate-version"])

        def deployed() -> bool:
            body = infer_body(ROW, parameters={"tier": "gold"})
            # Which worker accepts a connection is up to the kernel: six answers could all
            # come from the worker that already swapped its snapshot (seen in CI). Forty in a
            # row leave the other worker unasked with odds of about 1 in 10^12.
            answers = [client.post("/v2/models/bandit/infer", json=body) for _ in range(40)]
            return all(answer.status_code == 200 for answer in answers)

        wait_until(deployed, timeout=_BOUND_S, what="every worker to serve the bandit")
        pulled = {f"p{i}": ("gold" if i % 2 else "silver") for i in range(80)}
        versions = {rid: served(tier, rid) for rid, tier in pulled.items()}
        feedback = [
            {
                "request_id": rid,
                "reward": float(versions[rid] == ("2" if pulled[rid] == "gold" else "1")),
            }
            for rid in pulled
        ]

        def logged() -> bool:
            return len(read_predictions(workspace.store, "bandit", limit=1000)) >= len(pulled)

        wait_until(logged, timeout=10, what="the prediction log to hold the pulls")
        posted = client.post("/v2/models/bandit/feedback", json={"feedback": feedback})
        assert posted.status_code == 200, posted.text

        def learned() -> bool:
            gold = [served("gold") for _ in range(20)]
            silver = [served("silver") for _ in range(20)]
            return gold.count("2") >= 17 and silver.count("1") >= 17

        wait_until(learned, timeout=20, interval=0.2, what="both workers to route by tier")
