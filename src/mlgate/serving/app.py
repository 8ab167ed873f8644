"""The HTTP face of the data plane: Open Inference Protocol v2 REST plus admin routes.

Handlers only move bytes: the body is read with a size cap, handed to
:class:`~mlgate.serving.dataplane.DataPlane` or the endpoint store, and every
error becomes a response through :mod:`mlgate.serving.http`, so no traceback
ever reaches a client. FastAPI is used for routing and the OpenAPI document;
the inference route takes the raw request so no validation layer runs twice on
the hot path.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlgate import __version__
from mlgate.config import Settings
from mlgate.errors import InvalidRequestError, OverloadedError
from mlgate.serving.admin_experiments import install_experiment_routes
from mlgate.serving.dataplane import DataPlane, pinned_target
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.fastpath import InferenceFastPath, read_body
from mlgate.serving.feedback import FeedbackItem, record_feedback
from mlgate.serving.http import error_body, error_headers, status_for
from mlgate.serving.loop_ingest import install_loop_ingest_routes
from mlgate.serving.metrics import ServingMetrics, multiprocess_render
from mlgate.serving.openapi import DEPLOY_OPENAPI, FEEDBACK_OPENAPI, INFER_OPENAPI
from mlgate.serving.overload import LoopLag
from mlgate.serving.predlog import PredictionLogWriter
from mlgate.serving.protocol import (
    encode_error,
    encode_model_metadata,
    encode_server_metadata,
)
from mlgate.serving.runtime import ServingState
from mlgate.serving.spec import endpoint_from_json, parse_endpoint_yaml
from mlgate.workspace import Workspace

__all__ = ["ServeConfig", "app_from_env", "create_app"]

logger = logging.getLogger(__name__)

JSON = "application/json"
_EXTENSIONS = ("model_repository_readonly", "mlgate_admin", "mlgate_feedback")


@dataclass(frozen=True)
class ServeConfig:
    """Process-level serving settings; per-endpoint ones live in the endpoint spec."""

    max_body_bytes: int = 16 * 1024 * 1024
    max_elements: int = 4_000_000
    poll_interval_s: float = 0.5
    inference_threads: int = 0  # 0: one per CPU
    seed: int | None = None
    # Latency each endpoint's concurrency limit steers towards (plus twice the model's
    # own call time); requests over the limit get a 503 at once. 0: no limit.
    target_latency_ms: float = 10.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServeConfig:
        env = os.environ if environ is None else environ
        return cls(
            max_body_bytes=int(env.get("MLGATE_MAX_BODY_BYTES", cls.max_body_bytes)),
            max_elements=int(env.get("MLGATE_MAX_ELEMENTS", cls.max_elements)),
            poll_interval_s=float(env.get("MLGATE_POLL_INTERVAL_S", cls.poll_interval_s)),
            inference_threads=int(env.get("MLGATE_INFERENCE_THREADS", cls.inference_threads)),
            target_latency_ms=float(env.get("MLGATE_TARGET_LATENCY_MS", cls.target_latency_ms)),
        )


def _json(value: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(value), status_code=status, media_type=JSON)


def _error(exc: BaseException) -> Response:
    return Response(
        error_body(exc), status_code=status_for(exc), headers=error_headers(exc), media_type=JSON
    )


async def _guard(work: Callable[[], Awaitable[Response]]) -> Response:
    try:
        return await work()
    except Exception as exc:  # every failure becomes an OIP error body, never a trace
        return _error(exc)


async def _read_body(request: Request, limit: int) -> bytes:
    return await read_body(request.receive, request.headers.get("content-length"), limit)


def create_app(settings: Settings, config: ServeConfig | None = None) -> InferenceFastPath:
    """Build the ASGI app; the workspace, threads and poller start with its lifespan.

    Inference requests take a plain-ASGI path (:mod:`mlgate.serving.fastpath`);
    everything else, including the OpenAPI document, is served by FastAPI.
    """
    cfg = config or ServeConfig()
    holder: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        workspace = await asyncio.to_thread(Workspace.open, settings)
        threads = cfg.inference_threads or (os.cpu_count() or 1)
        executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlgate-infer")
        metrics = ServingMetrics()

        def on_batch(model: str, version: int, stats: Any) -> None:
            metrics.observe_batch(model, str(version), stats.rows, stats.requests, stats.compute_s)

        state = ServingState(
            workspace,
            executor,
            poll_interval_s=cfg.poll_interval_s,
            on_batch=on_batch,
            seed=cfg.seed,
        )
        metrics.set_queue_depth_source(state.queue_depths)
        predlog = PredictionLogWriter(workspace.store, on_drop=metrics.log_dropped)
        await state.start()
        await predlog.start()
        # Everything loaded so far (modules, models, the snapshot) lives as long as the
        # process: freezing it keeps full garbage collections from rescanning it, which
        # showed as 100 ms p99 spikes once the prediction log kept records alive.
        gc.freeze()
        loop_lag = LoopLag()
        await loop_lag.start()
        plane = DataPlane(
            state,
            metrics,
            predlog,
            max_elements=cfg.max_elements,
            target_latency_s=cfg.target_latency_ms / 1000.0,
            loop_lag=loop_lag,
        )
        holder.update(
            workspace=workspace, state=state, plane=plane, metrics=metrics, predlog=predlog
        )
        try:
            yield
        finally:
            await loop_lag.close()
            await plane.drain()
            await predlog.close()
            await state.close()
            executor.shutdown(wait=False, cancel_futures=True)
            workspace.close()

    app = FastAPI(
        title="mlgate",
        version=__version__,
        summary="Open Inference Protocol v2 server with traffic policies and a ledger",
        lifespan=lifespan,
    )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        # Routing refusals (no such path, wrong method) in the OIP shape, not FastAPI's.
        return Response(
            encode_error(str(exc.detail)),
            status_code=exc.status_code,
            headers=exc.headers,
            media_type=JSON,
        )

    def plane() -> DataPlane:
        value: DataPlane | None = holder.get("plane")
        if value is None:
            raise OverloadedError("the server is still starting", reason="loading")
        return value

    def state() -> ServingState:
        value: ServingState = holder["state"]
        return value

    # -- health and metadata ---------------------------------------------------

    @app.get("/v2/health/live", tags=["health"])
    async def live() -> Response:
        return _json({"live": True})

    @app.get("/v2/health/ready", tags=["health"])
    async def ready() -> Response:
        is_ready = "state" in holder and state().ready
        return _json({"ready": is_ready}, 200 if is_ready else 503)

    @app.get("/v2", tags=["metadata"])
    async def server_metadata() -> Response:
        body = encode_server_metadata("mlgate", __version__, _EXTENSIONS)
        return Response(body, media_type=JSON)

    @app.get("/v2/models/{name}", tags=["metadata"])
    @app.get("/v2/models/{name}/versions/{version}", tags=["metadata"])
    async def model_metadata(name: str, version: str | None = None) -> Response:
        async def work() -> Response:
            view = state().snapshot.endpoint(name)
            primary = view.primary if version is None else view.runner(pinned_target(view, version))
            served = sorted({str(r.version.version) for r in view.runners.values()}, key=int)
            body = encode_model_metadata(
                name=name,
                versions=served,
                platform=primary.version.flavor,
                signature=primary.signature,
                runtime=primary.runtime,
            )
            return Response(body, media_type=JSON)

        return await _guard(work)

    @app.get("/v2/models/{name}/ready", tags=["health"])
    @app.get("/v2/models/{name}/versions/{version}/ready", tags=["health"])
    async def model_ready(name: str, version: str | None = None) -> Response:
        async def work() -> Response:
            view = state().snapshot.endpoint(name)
            if version is not None:
                pinned_target(view, version)
            return _json({"name": name, "ready": True})

        return await _guard(work)

    # -- inference and feedback -------------------------------------------------
    # InferenceFastPath answers these two paths before FastAPI sees them; the routes
    # stay here so the OpenAPI document describes them (and as the reference path).

    @app.post(
        "/v2/models/{name}/infer",
        tags=["inference"],
        openapi_extra=INFER_OPENAPI,
        summary="Open Inference Protocol v2 inference, routed by the endpoint's policy",
    )
    @app.post(
        "/v2/models/{name}/versions/{version}/infer",
        tags=["inference"],
        openapi_extra=INFER_OPENAPI,
        summary="Inference pinned to one version",
    )
    async def infer(request: Request, name: str, version: str | None = None) -> Response:
        async def work() -> Response:
            body = await _read_body(request, cfg.max_body_bytes)
            peer = request.client.host if request.client is not None else None
            reply = await plane().infer(name, version, body, request.headers, peer)
            return Response(reply.body, media_type=JSON, headers=reply.headers)

        return await _guard(work)

    @app.post("/v2/models/{name}/feedback", tags=["inference"], openapi_extra=FEEDBACK_OPENAPI)
    async def feedback(request: Request, name: str) -> Response:
        async def work() -> Response:
            view = state().snapshot.endpoint(name)
            if view.spec.auth.required:
                state().snapshot.tokens.require(request.headers.get("authorization"), "viewer")
            items = _feedback_items(await _read_body(request, cfg.max_body_bytes))
            ws: Workspace = holder["workspace"]
            count = await asyncio.to_thread(record_feedback, ws.store, name, items, ws.clock)
            return _json({"accepted": count})

        return await _guard(work)

    @app.get("/metrics", tags=["metrics"])
    async def metrics() -> Response:
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        body, content_type = (
            multiprocess_render(directory) if directory else holder["metrics"].render()
        )
        return Response(body, media_type=content_type)

    # -- admin ------------------------------------------------------------------

    def endpoints() -> EndpointStore:
        ws: Workspace = holder["workspace"]
        return EndpointStore(ws.store, ws.registry, ws.log, ws.clock)

    def require(request: Request, role: str) -> str:
        principal = state().snapshot.tokens.require(request.headers.get("authorization"), role)
        return f"token:{principal.name}"

    @app.get("/v2/admin/endpoints", tags=["admin"])
    async def list_endpoints(request: Request) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            deployed = await asyncio.to_thread(endpoints().deployed)
            served = sorted(state().snapshot.endpoints)
            return _json({"deployed": [d.to_json() for d in deployed], "served": served})

        return await _guard(work)

    @app.get("/v2/admin/endpoints/{name}", tags=["admin"])
    async def get_endpoint(request: Request, name: str) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            found = await asyncio.to_thread(endpoints().get, name)
            if found is None:
                state().snapshot.endpoint(name)  # 404 wording for unknown names
                return _json({"name": name, "zero_config": True})
            return _json(found.to_json())

        return await _guard(work)

    @app.put("/v2/admin/endpoints/{name}", tags=["admin"], openapi_extra=DEPLOY_OPENAPI)
    async def deploy_endpoint(request: Request, name: str) -> Response:
        async def work() -> Response:
            actor = require(request, "deployer")
            body = await _read_body(request, cfg.max_body_bytes)
            spec = _spec_from_body(body, request.headers.get("content-type", ""), name)
            deployed = await asyncio.to_thread(endpoints().deploy, spec, actor=actor)
            await state().refresh()
            return _json(deployed.to_json())

        return await _guard(work)

    @app.delete("/v2/admin/endpoints/{name}", tags=["admin"])
    async def delete_endpoint(request: Request, name: str) -> Response:
        async def work() -> Response:
            actor = require(request, "deployer")
            await asyncio.to_thread(endpoints().remove, name, actor=actor)
            await state().refresh()
            return _json({"removed": name})

        return await _guard(work)

    @app.get("/v2/admin/endpoints/{name}/history", tags=["admin"])
    async def endpoint_history(request: Request, name: str) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            return _json(await asyncio.to_thread(endpoints().history, name))

        return await _guard(work)

    def workspace() -> Workspace:
        value: Workspace = holder["workspace"]
        return value

    async def read_admin_body(request: Request) -> bytes:
        return await _read_body(request, cfg.max_body_bytes)

    install_experiment_routes(
        app,
        workspace=workspace,
        require=require,
        refresh=lambda: state().refresh(),
        read_body=read_admin_body,
        guard=_guard,
        respond=_json,
    )
    install_loop_ingest_routes(
        app,
        workspace=workspace,
        require=require,
        read_body=read_admin_body,
        guard=_guard,
        respond=_json,
    )
    return InferenceFastPath(app, plane, max_body_bytes=cfg.max_body_bytes)


def _spec_from_body(body: bytes, content_type: str, name: str) -> Any:
    text = body.decode("utf-8", errors="replace")
    if "json" in content_type:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequestError(f"endpoint body is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise InvalidRequestError("endpoint body must be a JSON object")
        data.setdefault("name", name)
        spec = endpoint_from_json(data)
    else:
        spec = parse_endpoint_yaml(text)
    if spec.name != name:
        raise InvalidRequestError(
            f"the body names endpoint {spec.name!r} but the URL says {name!r}; make them agree"
        )
    return spec


def _feedback_items(body: bytes) -> list[FeedbackItem]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"feedback body is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and "feedback" in data and len(data) > 1:
        # Fields beside the batch would be dropped silently: say so instead.
        raise InvalidRequestError(
            f"unknown feedback fields {sorted(set(data) - {'feedback'})} beside the "
            '"feedback" list; send one object or {"feedback": [objects]}, not both'
        )
    raw = data.get("feedback", [data]) if isinstance(data, dict) else None
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise InvalidRequestError(
            'feedback must be {"request_id": ..., "label": ... and/or "reward": ...} or '
            '{"feedback": [such objects]}'
        )
    unknown = {key for item in raw for key in item} - {"request_id", "label", "reward"}
    if unknown:
        raise InvalidRequestError(f"unknown feedback fields {sorted(unknown)}")
    return [
        FeedbackItem(
            request_id=item.get("request_id"),  # validated by record_feedback
            label=item.get("label"),
            reward=item.get("reward"),
        )
        for item in raw
    ]


def app_from_env() -> InferenceFastPath:
    """Factory for ``uvicorn --factory`` and ``mlgate serve --workers N``: settings from env."""
    return create_app(Settings.resolve(), ServeConfig.from_env())
