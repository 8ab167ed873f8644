"""Admin routes for experiments: live A/B analysis and canary rollouts.

Thin faces of :mod:`mlgate.experiments` (the CLI is the other face): each route checks
the caller's role, runs the library call in a thread (they read the store), and answers
JSON. Canary changes refresh this process's snapshot before answering, as a deploy does,
so the caller's next request already sees the new split.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from mlgate.errors import CanaryError, EndpointNotFoundError, ExperimentInputError
from mlgate.experiments.analysis import analyze_document
from mlgate.experiments.canary import CanaryConfig, CanaryController
from mlgate.experiments.live import analyze_endpoint, parse_since
from mlgate.workspace import Workspace

__all__ = ["install_experiment_routes"]

Guard = Callable[[Callable[[], Awaitable[Response]]], Awaitable[Response]]
_KINDS = ("mean", "proportion")
_DIFFERENCES = ("relative", "absolute")
_METHODS = ("frequentist", "sequential", "bayesian")
_START_FIELDS = {"candidate", "baseline"}


def install_experiment_routes(
    app: FastAPI,
    *,
    workspace: Callable[[], Workspace],
    require: Callable[[Request, str], str],
    refresh: Callable[[], Awaitable[None]],
    read_body: Callable[[Request], Awaitable[bytes]],
    guard: Guard,
    respond: Callable[[Any], Response],
) -> None:
    """Add ``/v2/admin/experiments/...`` and ``/v2/admin/canaries/...`` to ``app``."""

    def canaries() -> CanaryController:
        return CanaryController.from_workspace(workspace())

    @app.get("/v2/admin/experiments/{name}", tags=["experiments"])
    async def analyze_live(request: Request, name: str) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            options = _analysis_options(request.query_params)
            result = await asyncio.to_thread(analyze_endpoint, workspace(), name, **options)
            return respond(result)

        return await guard(work)

    @app.post("/v2/admin/experiments/analyze", tags=["experiments"])
    async def analyze_posted(request: Request) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            document = _json_object(await read_body(request), "the analysis document")
            # CPU-bound (Bayesian draws): off the event loop, so inference keeps flowing.
            return respond(await asyncio.to_thread(analyze_document, document))

        return await guard(work)

    @app.get("/v2/admin/canaries", tags=["canaries"])
    async def list_canaries(request: Request) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            found = await asyncio.to_thread(canaries().list)
            return respond({"canaries": [status.to_json() for status in found]})

        return await guard(work)

    @app.get("/v2/admin/canaries/{name}", tags=["canaries"])
    async def canary_status(request: Request, name: str) -> Response:
        async def work() -> Response:
            require(request, "viewer")
            found = await asyncio.to_thread(canaries().status, name)
            if found is None:
                raise EndpointNotFoundError(
                    f"endpoint {name!r} has never had a canary; start one with "
                    f"POST /v2/admin/canaries/{name}"
                )
            return respond(found.to_json())

        return await guard(work)

    @app.post("/v2/admin/canaries/{name}", tags=["canaries"])
    async def start_canary(request: Request, name: str) -> Response:
        async def work() -> Response:
            actor = require(request, "deployer")
            body = _json_object(await read_body(request), "the canary request")
            if "candidate" not in body:
                raise ExperimentInputError(
                    'say which version to roll out: {"candidate": 3, "steps": [5, 25, 50, 100], '
                    '"interval_s": 300, ...}'
                )
            for key in _START_FIELDS & set(body):
                _check_target(key, body[key], optional=key == "baseline")
            try:
                config = CanaryConfig.from_json(
                    {k: v for k, v in body.items() if k not in _START_FIELDS}
                )
            except CanaryError as exc:  # settings the client sent: a 400, not a conflict
                raise ExperimentInputError(str(exc)) from exc
            started = await asyncio.to_thread(
                canaries().start,
                name,
                body["candidate"],
                baseline=body.get("baseline"),
                config=config,
                actor=actor,
            )
            await refresh()
            return respond(started.to_json())

        return await guard(work)

    for action in ("abort", "pause", "resume"):
        _install_action(app, action, canaries, require, refresh, guard, respond)


def _install_action(
    app: FastAPI,
    action: str,
    canaries: Callable[[], CanaryController],
    require: Callable[[Request, str], str],
    refresh: Callable[[], Awaitable[None]],
    guard: Guard,
    respond: Callable[[Any], Response],
) -> None:
    async def act(request: Request, name: str) -> Response:
        async def work() -> Response:
            actor = require(request, "deployer")
            method = getattr(canaries(), action)
            changed = await asyncio.to_thread(lambda: method(name, actor=actor))
            await refresh()
            return respond(changed.to_json())

        return await guard(work)

    app.post(f"/v2/admin/canaries/{{name}}/{action}", tags=["canaries"], name=f"{action}_canary")(
        act
    )


def _check_target(key: str, value: Any, *, optional: bool) -> None:
    if value is None and optional:
        return
    valid = (isinstance(value, int) and not isinstance(value, bool) and value >= 1) or (
        isinstance(value, str) and 0 < len(value) <= 64
    )
    if not valid:
        raise ExperimentInputError(
            f"{key} must be a version number (1, 2, ...) or an alias name, got {value!r:.80}"
        )


def _analysis_options(query: Mapping[str, str]) -> dict[str, Any]:
    unknown = set(query) - {"kind", "difference", "method", "alpha", "since"}
    if unknown:
        raise ExperimentInputError(
            f"unknown query parameters {sorted(unknown)}; use kind, difference, method, "
            "alpha and since"
        )
    options: dict[str, Any] = {}
    for key, allowed in (("kind", _KINDS), ("difference", _DIFFERENCES), ("method", _METHODS)):
        if key in query:
            if query[key] not in allowed:
                raise ExperimentInputError(f"{key} must be one of {list(allowed)}")
            options[key] = query[key]
    if "alpha" in query:
        try:
            alpha = float(query["alpha"])
        except ValueError:
            alpha = float("nan")
        if not 0.0 < alpha < 1.0:
            raise ExperimentInputError(f"alpha must be a number in (0, 1), got {query['alpha']!r}")
        options["alpha"] = alpha
    if "since" in query:
        options["since"] = parse_since(query["since"])
    return options


def _json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ExperimentInputError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ExperimentInputError(f"{what} must be a JSON object")
    return data
