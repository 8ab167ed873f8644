"""The inference path, independent of HTTP: decode, route, run, fall back, log, answer.

The REST adapter (:mod:`mlgate.serving.app`) only moves bytes and headers in and
out; everything a request goes through lives here, so it can be read in one
sitting and driven without a server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.errors import (
    DeadlineExceededError,
    EndpointNotFoundError,
    InvalidRequestError,
    MlgateError,
    ModelFailedError,
    OverloadedError,
    RateLimitedError,
    ServingError,
)
from mlgate.serving.combine import combine_majority, combine_mean, combine_weighted_mean, confidence
from mlgate.serving.metrics import ServingMetrics
from mlgate.serving.overload import ConcurrencyLimit, LoopLag
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.serving.protocol import (
    InferRequest,
    check_inputs,
    decode_infer_request,
    encode_infer_response,
    select_outputs,
)
from mlgate.serving.ratelimit import RateLimits
from mlgate.serving.router import RoutePlan
from mlgate.serving.runtime import EndpointView, ServingState, VersionRunner

__all__ = ["OVERLOAD_ERROR", "DataPlane", "Reply", "pinned_target"]

logger = logging.getLogger(__name__)

Arrays = dict[str, np.ndarray[Any, Any]]
# Headers a rule or sticky split may read, next to the request's OIP parameters.
_ATTRIBUTE_PREFIX = "x-mlgate-"
_MAX_REQUEST_ID = 128
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Reply:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class _Answer:
    outputs: Arrays
    version: str  # "3", "1+2" (ensemble), "1>2" (cascade escalated), "default"
    status: str  # "ok" | "fallback"
    route: str


class DataPlane:
    def __init__(
        self,
        state: ServingState,
        metrics: ServingMetrics,
        predlog: PredictionLogWriter,
        *,
        max_elements: int = 10_000_000,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        target_latency_s: float = 0.0,
        loop_lag: LoopLag | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.predlog = predlog
        self.max_elements = max_elements
        self._clock = clock
        self._rng = rng or random.Random()
        self._shadows: set[asyncio.Future[Arrays]] = set()
        self._limits = RateLimits(clock=clock)
        self._request_ids = RequestIds()
        self._target_latency_s = target_latency_s
        self._limits_by_endpoint: dict[str, ConcurrencyLimit] = {}
        self._loop_lag = loop_lag

    def limit_for(self, name: str) -> ConcurrencyLimit | None:
        """The concurrency limit of endpoint ``name``; None when limits are off or unknown.

        The caller acquires before reading the body and releases after answering; a
        refused acquire is answered with the prebuilt :data:`OVERLOAD_ERROR` reply, no
        exception on the way, since a refusal must cost far less than an answer.
        """
        limit = self._limits_by_endpoint.get(name)
        if limit is None:
            if self._target_latency_s <= 0.0 or name not in self.state.snapshot.endpoints:
                return None  # unknown names get their 404 and no state
            limit = ConcurrencyLimit(
                target_latency_s=self._target_latency_s,
                service_time=lambda: self._service_time(name),
                loop_lag=lambda: self._loop_lag.lag_s if self._loop_lag is not None else 0.0,
                deadline=lambda: self._deadline(name),
                clock=self._clock,
            )
            self._limits_by_endpoint[name] = limit
        return limit

    def refused(self, name: str) -> None:
        """Count a request the concurrency limit turned away."""
        # Shed counter only: a 0 s sample would drag the latency histogram down exactly
        # while the endpoint is overloaded.
        self.metrics.shed(name, "overload")

    def _deadline(self, name: str) -> float:
        view = self.state.snapshot.endpoints.get(name)
        return math.inf if view is None else view.spec.timeout_ms / 1000.0

    def _service_time(self, name: str) -> float:
        view = self.state.snapshot.endpoints.get(name)
        if view is None:
            return 0.0
        return max(runner.batcher.service_time_s for runner in view.runners.values())

    async def infer(
        self,
        name: str,
        version: str | None,
        body: bytes,
        headers: Mapping[str, str],
        client: str | None = None,
    ) -> Reply:
        started = self._clock()
        view = self.state.snapshot.endpoint(name)  # unknown names stay out of the metrics
        try:
            if view.spec.rate_limit is not None:
                self._limits.check(name, view.spec.rate_limit, headers, client)
            return await self._infer(view, version, body, headers, started)
        except ServingError as exc:
            status = _failure_status(exc)
            self.metrics.observe_request(name, "-", "-", status, self._clock() - started)
            raise

    async def _infer(
        self,
        view: EndpointView,
        version: str | None,
        body: bytes,
        headers: Mapping[str, str],
        started: float,
    ) -> Reply:
        name = view.spec.name
        if view.spec.auth.required:
            self.state.snapshot.tokens.require(headers.get("authorization"), "viewer")
        request = decode_infer_request(body, max_elements=self.max_elements)
        request_id = request.id or self._request_ids.next()
        if len(request_id) > _MAX_REQUEST_ID:
            raise InvalidRequestError(
                f"request id is {len(request_id)} characters; use at most {_MAX_REQUEST_ID} "
                "(it keys the prediction log and feedback)"
            )
        if _CONTROL_CHARACTERS.search(request_id):
            raise InvalidRequestError(
                "request id contains a control character (such as a line break); use "
                "printable text (it is echoed in the x-request-id header)"
            )
        deadline = started + view.timeout_s
        plan, unit = self._plan(view, version, request, headers)
        inputs = check_inputs(
            request, view.primary.signature, allow_non_finite=view.spec.allow_non_finite
        )
        try:
            answer = await self._run_plan(view, plan, inputs, deadline)
        except ServingError as exc:
            if isinstance(exc, OverloadedError):
                self.metrics.shed(name, exc.reason)
            try:
                answer = await self._fall_back(view, plan, inputs, deadline, exc)
            except ServingError as final:
                failed = _Answer({}, "-", _failure_status(final), plan.reason)
                elapsed = self._clock() - started
                self._log(view, request_id, failed, inputs, None, elapsed, plan=plan, unit=unit)
                raise
        outputs = select_outputs(answer.outputs, request.outputs)
        reply_body = encode_infer_response(
            model_name=name, model_version=answer.version, request_id=request_id, outputs=outputs
        )
        elapsed = self._clock() - started
        self.metrics.observe_request(name, answer.version, plan.mode, answer.status, elapsed)
        self._log(view, request_id, answer, inputs, outputs, elapsed, plan=plan, unit=unit)
        for target in plan.shadows:
            self._shadow(view, target, request_id, inputs)
        reply_headers = {
            "x-mlgate-version": answer.version,
            "x-mlgate-route": _header_text(answer.route),
        }
        if request_id.isascii():  # HTTP header values are ASCII; the body always has the id
            reply_headers = {"x-request-id": request_id, **reply_headers}
        return Reply(reply_body, reply_headers)

    def _plan(
        self,
        view: EndpointView,
        version: str | None,
        request: InferRequest,
        headers: Mapping[str, str],
    ) -> tuple[RoutePlan, str | None]:
        """The plan and the request's unit (its sticky key's value), logged for experiments."""
        if version is not None:
            target = pinned_target(view, version)
            return RoutePlan("single", (target,), (), (), f"pinned:{version}"), None
        attributes: dict[str, Any] = {
            key[len(_ATTRIBUTE_PREFIX) :]: value
            for key, value in headers.items()
            if key.startswith(_ATTRIBUTE_PREFIX)
        }
        attributes.update(request.parameters)
        unit = view.router.sticky_value(attributes)
        return view.router.route(attributes, unit), unit

    async def _run_plan(
        self, view: EndpointView, plan: RoutePlan, inputs: Arrays, deadline: float
    ) -> _Answer:
        if plan.mode == "single":
            runner = view.runner(plan.targets[0])
            outputs = await runner.predict(inputs, deadline, view.timeout_s)
            return _Answer(outputs, str(runner.version.version), "ok", plan.reason)
        if plan.mode == "ensemble":
            return await self._ensemble(view, plan, inputs, deadline)
        return await self._cascade(view, plan, inputs, deadline)

    async def _ensemble(
        self, view: EndpointView, plan: RoutePlan, inputs: Arrays, deadline: float
    ) -> _Answer:
        runners = [view.runner(target) for target in plan.targets]
        timeout_s = view.timeout_s
        results = await asyncio.gather(*(r.predict(inputs, deadline, timeout_s) for r in runners))
        spec = view.spec.route.ensemble
        assert spec is not None, "an ensemble plan comes from an ensemble route"
        classes = runners[0].version.flavor_metadata.get("classes")
        targets = list(plan.targets)
        if spec.combine == "majority":
            combined = combine_majority(results, targets=targets)
        elif spec.combine == "weighted_mean":
            combined = combine_weighted_mean(
                results, spec.weights or (), classes=classes, targets=targets
            )
        else:
            combined = combine_mean(results, classes=classes, targets=targets)
        version = "+".join(str(r.version.version) for r in runners)
        return _Answer(_as_declared(combined, results[0]), version, "ok", plan.reason)

    async def _cascade(
        self, view: EndpointView, plan: RoutePlan, inputs: Arrays, deadline: float
    ) -> _Answer:
        spec = view.spec.route.cascade
        assert spec is not None, "a cascade plan comes from a cascade route"
        tried: list[str] = []
        for stage, target in zip(spec.stages, plan.targets, strict=True):
            runner = view.runner(target)
            outputs = await runner.predict(inputs, deadline, view.timeout_s)
            tried.append(str(runner.version.version))
            threshold = stage.min_confidence
            if threshold is None or float(confidence(outputs, spec.output).min()) >= threshold:
                route = f"{plan.reason}:stage{len(tried)}"
                return _Answer(outputs, ">".join(tried), "ok", route)
        raise ModelFailedError("the cascade's last stage must answer unconditionally")

    async def _fall_back(
        self,
        view: EndpointView,
        plan: RoutePlan,
        inputs: Arrays,
        deadline: float,
        error: ServingError,
    ) -> _Answer:
        if not isinstance(error, DeadlineExceededError | ModelFailedError | OverloadedError):
            raise error
        name = view.spec.name
        # Version numbers, as every other metric labels them, not targets such as "champion".
        failed = ",".join(str(view.runner(t).version.version) for t in plan.targets)
        if isinstance(error, DeadlineExceededError):
            self.metrics.timeout(name, failed)
        elif isinstance(error, ModelFailedError):
            self.metrics.error(name, failed, "model")
        # A fallback gets a fresh budget: the primary already spent the request's.
        budget = view.timeout_s
        for target in plan.fallbacks:
            if target in plan.targets:
                continue
            runner = view.runner(target)
            try:
                outputs = await runner.predict(inputs, self._clock() + budget, budget)
            except (DeadlineExceededError, ModelFailedError, OverloadedError):
                continue
            version = str(runner.version.version)
            self.metrics.fallback(name, failed, version)
            return _Answer(outputs, version, "fallback", f"{plan.reason}:fallback")
        default = view.spec.fallback.default
        if default is not None:
            self.metrics.fallback(name, failed, "default")
            rows = _rows(inputs)
            outputs = {
                k: np.asarray([v[0]] * rows if len(v) == 1 else v)
                for k, v in default.outputs.items()
            }
            return _Answer(outputs, "default", "fallback", f"{plan.reason}:default")
        raise error

    def _shadow(self, view: EndpointView, target: Any, request_id: str, inputs: Arrays) -> None:
        """Mirror a request; its answer is logged, never returned, and its failure is quiet.

        A future and a callback, not a task: a shadow then costs the caller no more than
        queueing one request, which keeps "adds no latency" true under load too.
        """
        started = self._clock()
        runner: VersionRunner = view.runner(target)
        version = str(runner.version.version)
        try:
            future = runner.start(inputs, started + view.timeout_s)
        except MlgateError as exc:  # shed or circuit open: the caller's answer stands
            self._shadow_failed(view, version, exc)
            return

        def done(future: asyncio.Future[Arrays]) -> None:
            if future.cancelled():  # shutdown: no outcome, so nothing for the breaker
                runner.breaker.abandon_probe()
                self._shadow_failed(view, version, None)
                return
            error = future.exception()
            runner.record(error, view.timeout_s)
            if error is not None:
                self._shadow_failed(view, version, error)
                return
            outputs = future.result()
            self.metrics.shadow(view.spec.name, version, "ok")
            answer = _Answer(outputs, version, "ok", f"shadow:{target}")
            elapsed = self._clock() - started
            self._log(view, request_id, answer, inputs, outputs, elapsed)

        future.add_done_callback(done)
        self._shadows.add(future)
        future.add_done_callback(self._shadows.discard)

    def _shadow_failed(self, view: EndpointView, version: str, error: BaseException | None) -> None:
        self.metrics.shadow(view.spec.name, version, "error")
        if error is not None and not isinstance(error, MlgateError):
            logger.error("shadow call of %s crashed", version, exc_info=error)
        else:
            logger.debug("shadow %s of %s failed: %s", version, view.spec.name, error)

    def _log(
        self,
        view: EndpointView,
        request_id: str,
        answer: _Answer,
        inputs: Arrays,
        outputs: Arrays | None,
        elapsed_s: float,
        *,
        plan: RoutePlan | None = None,
        unit: str | None = None,
    ) -> None:
        """Log one answer; without the caller's ``plan`` it is a shadow's."""
        rate = view.spec.logging.sample_rate
        if rate <= 0.0 or (rate < 1.0 and self._rng.random() >= rate):
            return
        self.predlog.record(  # a full queue drops and counts the record itself
            PredictionRecord(
                request_id=request_id,
                endpoint=view.spec.name,
                version=answer.version,
                route=answer.route,
                status=answer.status,
                shadow=plan is None,
                inputs=inputs,  # arrays: the writer's thread encodes them
                outputs=outputs,
                latency_ms=elapsed_s * 1000.0,
                created_at=time.time(),
                unit=unit,
                context=None if plan is None else plan.context,
            )
        )

    async def drain(self) -> None:
        """Wait for shadow calls still running (shutdown)."""
        if self._shadows:
            await asyncio.gather(*self._shadows, return_exceptions=True)


OVERLOAD_ERROR = OverloadedError(
    "the server is overloaded: this endpoint has as many requests in flight as it can "
    "answer in time; retry after the Retry-After interval or send to another replica",
    retry_after_s=1.0,
    reason="overload",
)


class RequestIds:
    """Random 128-bit request ids, as unguessable as uuid4 at a fraction of its cost.

    Feedback is keyed by request id, so ids must not be predictable; uuid4 made a
    system call and a UUID object per request (4 % of the event loop in the profile),
    where slicing a pre-drawn block of ``os.urandom`` costs one slice and a hex().
    """

    _BLOCK = 16 * 1024

    def __init__(self) -> None:
        self._pool = b""
        self._offset = 0

    def next(self) -> str:
        if self._offset >= len(self._pool):
            self._pool, self._offset = os.urandom(self._BLOCK), 0
        start = self._offset
        self._offset += 16
        return self._pool[start : start + 16].hex()


def pinned_target(view: EndpointView, version: str) -> str:
    """The endpoint's target serving registry ``version``, for /versions/{v} routes."""
    for target, runner in view.runners.items():
        if str(runner.version.version) == version:
            return target
    served = sorted({str(r.version.version) for r in view.runners.values()}, key=int)
    raise EndpointNotFoundError(
        f"version {version} is not served under {view.spec.name!r} (served versions: "
        f"{', '.join(served)}); call without /versions/ to follow the endpoint's policy"
    )


def _as_declared(combined: Arrays, sample: Arrays) -> Arrays:
    """Combined numbers in the dtype the models answered with (and their metadata declares).

    Averaging happens in float64; sending that back as FP64 for a model whose signature
    says FP32 would contradict ``GET /v2/models/{name}`` and break typed clients.
    """
    cast: Arrays = {}
    for name, array in combined.items():
        model_dtype = sample[name].dtype if name in sample else None
        if model_dtype is not None and array.dtype.kind in "biuf" and model_dtype.kind in "biuf":
            array = array.astype(model_dtype, copy=False)
        cast[name] = array
    return cast


def _header_text(route: str) -> str:
    """A route reason as header text: ASCII only, with the router's arrow kept readable."""
    return route.replace("\u2192", "->").encode("ascii", "replace").decode("ascii")


def _failure_status(error: ServingError) -> str:
    """The status a failed request is counted and logged under.

    An open circuit is the version's own failure, not load: it gets its own status so
    that canary judgements count it against the version instead of leaving it out.
    """
    if isinstance(error, OverloadedError):
        return "circuit_open" if error.reason == "circuit_open" else "shed"
    if isinstance(error, RateLimitedError):
        return "limited"
    if isinstance(error, InvalidRequestError | EndpointNotFoundError):
        return "invalid"
    return "error"


def _rows(inputs: Arrays) -> int:
    first = next(iter(inputs.values()))
    return int(first.shape[0]) if first.ndim else 1
