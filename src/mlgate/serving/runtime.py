"""What a server process has loaded: endpoints, their routers, and one runner per version.

The server answers from an immutable :class:`Snapshot`. A poller watches the
ledger's size (every deploy, alias move and registration appends to it, so one
cheap query notices any change from any process), builds a new snapshot off the
event loop, and swaps it in with one assignment. Requests already running keep
the snapshot and runners they started with, so a policy change drops nothing.
Runners (model + batcher + circuit breaker) are reused across snapshots while
their version, batching and circuit-breaker settings stay the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import sqlalchemy as sa

from mlgate.errors import (
    DeadlineExceededError,
    EndpointNotFoundError,
    MlgateError,
    ModelFailedError,
    OverloadedError,
)
from mlgate.experiments.bandits import Policy
from mlgate.experiments.canary import CanaryController
from mlgate.registry.records import ModelVersion
from mlgate.registry.signature import Signature
from mlgate.serving._inline import thread_usage
from mlgate.serving.auth import TokenCache, TokenStore
from mlgate.serving.bandit_feed import BanditFeed
from mlgate.serving.batcher import AdaptiveBatcher, BatchingConfig, BatchStats
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.resilience import CircuitBreaker
from mlgate.serving.router import Router, Target, build_bandit
from mlgate.serving.spec import BanditRoute, EndpointSpec, default_endpoint, targets_of
from mlgate.store.schema import aliases
from mlgate.workspace import Workspace

__all__ = ["EndpointView", "ServingState", "Snapshot", "VersionRunner"]

logger = logging.getLogger(__name__)

BatchObserver = Callable[[str, int, BatchStats], None]
T = TypeVar("T")
_CALLS_REMEMBERED = 16
# A runner is shared by every endpoint that serves its version with the same settings.
RunnerKey = tuple[str, int, BatchingConfig, tuple[int, float]]


@dataclass(eq=False)
class VersionRunner:
    """One loaded model version behind its batcher and circuit breaker."""

    version: ModelVersion
    batcher: AdaptiveBatcher
    breaker: CircuitBreaker
    # Where the model runs (an ONNX model's execution provider and why); None for others.
    runtime: dict[str, Any] | None = None
    # Model calls whose deadline misses the breaker has already counted (recent ones).
    _counted_calls: deque[int] = field(
        default_factory=lambda: deque(maxlen=_CALLS_REMEMBERED), init=False, repr=False
    )

    @property
    def signature(self) -> Signature:
        return self.version.signature

    async def predict(
        self, inputs: dict[str, np.ndarray[Any, Any]], deadline: float, timeout_s: float
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Outputs for ``inputs`` by ``deadline``; ``timeout_s`` is the endpoint's whole budget."""
        future = self.start(inputs, deadline)
        try:
            outputs = await future
        except MlgateError as exc:
            self.record(exc, timeout_s)
            raise
        self.breaker.record_success()
        return outputs

    def start(
        self, inputs: dict[str, np.ndarray[Any, Any]], deadline: float
    ) -> asyncio.Future[dict[str, np.ndarray[Any, Any]]]:
        """Queue a call without a task (shadows); pass its outcome to :meth:`record`."""
        if not self.breaker.allow():
            raise OverloadedError(
                f"{self.version.name} version {self.version.version} failed repeatedly and "
                "its circuit is open; retry shortly",
                retry_after_s=1.0,
                reason="circuit_open",
            )
        try:
            return self.batcher.enqueue(inputs, deadline)
        except BaseException:
            self.breaker.abandon_probe()  # never reached the model: proves nothing
            raise

    def record(self, error: BaseException | None, timeout_s: float) -> None:
        """Feed one call's outcome to the circuit breaker.

        A deadline miss says the model is sick only when its own call began with at
        least half the endpoint's budget left and still missed after running more than
        twice the model's usual call time, or when some call has now run the whole budget
        (a hang that requests queue behind). Without the usual-time test, a 50 ms endpoint
        whose batches take 30 ms under load opened its circuit at twice capacity and
        refused 56,000 requests as circuit_open while the model was fine. A request whose
        time ran out in the queue, or whose call began late because the server was busy,
        says nothing about the model (one that expired in the queue on a busy server is
        shed with OverloadedError); opening the circuit then would turn load into an
        outage (measured: 174,000 requests refused as circuit_open at twice capacity
        when the remaining budget was the yardstick). A slow call counts once however
        many requests rode in it: counted per request, one 64-row batch that ran long
        was up to 64 consecutive failures, past any threshold (bench/serving's overload
        run at twice capacity saw a healthy model's breaker refuse 42,000 requests).
        Outcomes that prove nothing give a half-open breaker's probe back.
        """
        if error is None:
            self.breaker.record_success()
        elif isinstance(error, ModelFailedError):
            self.breaker.record_failure()
        elif isinstance(error, DeadlineExceededError) and (
            self._ran_unusually_long(error, timeout_s)
            or self.batcher.longest_running_s >= timeout_s
        ):
            call = error.model_call
            if call is None or call not in self._counted_calls:
                self.breaker.record_failure()
                if call is not None:
                    self._counted_calls.append(call)
            else:  # another request of a slow call already counted: one call, one failure
                self.breaker.abandon_probe()
        else:
            self.breaker.abandon_probe()

    def _ran_unusually_long(self, error: DeadlineExceededError, timeout_s: float) -> bool:
        if error.model_had_s is None or error.model_had_s < timeout_s / 2:
            return False
        usual_s = self.batcher.service_time_s  # 0 before the first call has finished
        return error.model_ran_s is None or error.model_ran_s > 2.0 * usual_s


@dataclass(frozen=True)
class EndpointView:
    """One endpoint as this snapshot serves it."""

    spec: EndpointSpec
    router: Router
    runners: Mapping[str, VersionRunner]  # str(target) -> runner, aliases already resolved
    revision: int  # 0 for a zero-config endpoint
    feed: BanditFeed | None = None  # teaches a bandit route from every process's feedback

    def runner(self, target: Target) -> VersionRunner:
        return self.runners[str(target)]

    @property
    def timeout_s(self) -> float:
        """The deadline of one call to this endpoint, from the request's arrival."""
        return self.spec.timeout_ms / 1000.0

    @property
    def primary(self) -> VersionRunner:
        """The runner whose signature requests are checked against (all share inputs)."""
        return next(iter(self.runners.values()))


@dataclass(frozen=True)
class Snapshot:
    ledger_size: int
    endpoints: Mapping[str, EndpointView]
    tokens: TokenCache

    def endpoint(self, name: str) -> EndpointView:
        view = self.endpoints.get(name)
        if view is None:
            known = ", ".join(sorted(self.endpoints)) or "none yet"
            raise EndpointNotFoundError(
                f"no model or endpoint named {name!r} is served here (served: {known}); "
                "register a model and set its champion alias, or deploy an endpoint"
            )
        return view


@dataclass
class ServingState:
    """Owns the snapshot, the runners and the poller of one server process."""

    workspace: Workspace
    executor: Executor
    poll_interval_s: float = 0.5
    on_batch: BatchObserver | None = None
    seed: int | None = None
    _snapshot: Snapshot | None = None
    _runners: dict[RunnerKey, VersionRunner] = field(default_factory=dict)
    _poller: asyncio.Task[None] | None = None
    _rng: random.Random = field(default_factory=random.Random)
    # Runners no snapshot routes to any more, kept until requests that started
    # on an older snapshot have finished (``retire_after_s``), then closed.
    retire_after_s: float = 60.0
    _retired: dict[int, tuple[float, VersionRunner]] = field(default_factory=dict)
    _pending: set[asyncio.Future[Any]] = field(default_factory=set)
    # Every process drives canaries; the controller's optimistic updates make one win.
    canary_tick_s: float = 1.0
    _canaries: CanaryController | None = None
    _canary_driver: asyncio.Task[None] | None = None
    # Bandit routes by endpoint: (route, live policy, feed), kept across snapshots.
    _bandits: dict[str, tuple[BanditRoute, Policy, BanditFeed]] = field(default_factory=dict)
    _bandits_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def snapshot(self) -> Snapshot:
        if self._snapshot is None:
            raise OverloadedError(
                "the server is still loading its models", retry_after_s=1.0, reason="loading"
            )
        return self._snapshot

    @property
    def ready(self) -> bool:
        return self._snapshot is not None

    async def start(self) -> None:
        if self.seed is not None:
            self._rng.seed(self.seed)
        self._install(await self._in_thread(self.build_snapshot))
        self._poller = asyncio.create_task(self._poll(), name="mlgate-snapshot-poller")
        if self.canary_tick_s > 0:
            self._canary_driver = asyncio.create_task(
                self._drive_canaries(), name="mlgate-canary-driver"
            )

    async def _in_thread(self, function: Callable[..., T], *args: Any) -> T:
        """Run blocking store work in a thread that ``close`` waits for.

        A cancelled ``asyncio.to_thread`` leaves its thread running: closing the
        store under it would strand its database connection (found by a
        ResourceWarning in the tests). Shielded and tracked, it finishes first.
        """
        future = asyncio.get_running_loop().run_in_executor(None, function, *args)
        self._pending.add(future)
        future.add_done_callback(self._pending.discard)
        return await asyncio.shield(future)

    async def close(self) -> None:
        for task in (self._poller, self._canary_driver):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for runner in self._runners.values():
            await runner.batcher.close()
        for _, runner in self._retired.values():
            await runner.batcher.close()

    async def refresh(self) -> None:
        """Rebuild now (after a deploy through this process) instead of at the next poll."""
        self._install(await self._in_thread(self.build_snapshot))

    def _install(self, snapshot: Snapshot) -> bool:
        """Swap ``snapshot`` in unless a newer one is already served.

        The poller and a deploy's refresh build in parallel threads: a poll that read
        the store before the deploy may finish after the deploy's own refresh, and must
        not put the old policy back. A build reads the ledger size before anything
        else, so a larger size means a build that saw at least as much.
        """
        current = self._snapshot
        if current is not None and snapshot.ledger_size < current.ledger_size:
            return False
        self._snapshot = snapshot
        self._retire_unused(snapshot)
        return True

    def _retire_unused(self, snapshot: Snapshot) -> None:
        """Stop caching runners the new snapshot does not use, so old models can be freed."""
        used = {id(r) for view in snapshot.endpoints.values() for r in view.runners.values()}
        now = time.monotonic()
        for key, runner in list(self._runners.items()):
            if id(runner) not in used:
                del self._runners[key]
                self._retired[id(runner)] = (now, runner)

    async def _close_retired(self) -> None:
        now = time.monotonic()
        for ident, (since, runner) in list(self._retired.items()):
            if now - since >= self.retire_after_s and runner.batcher.in_flight == 0:
                del self._retired[ident]
                await runner.batcher.close()

    def queue_depths(self) -> dict[tuple[str, str], int]:
        return {
            (runner.version.name, str(runner.version.version)): runner.batcher.queue_depth
            for runner in list(self._runners.values())
        }

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            try:
                await self._close_retired()
                size = await self._in_thread(self._ledger_size)
                current = self._snapshot
                if current is None or size != current.ledger_size:
                    if self._install(await self._in_thread(self.build_snapshot)):
                        logger.info("serving snapshot refreshed at ledger size %d", size)
                elif any(view.router.bandit is not None for view in current.endpoints.values()):
                    await self._in_thread(self._refresh_bandits, current)
            except Exception:  # a database hiccup must not stop serving the last snapshot
                logger.exception("refreshing the serving snapshot failed; keeping the last one")

    async def _drive_canaries(self) -> None:
        """Its own task, so a slow judgement never delays snapshots or bandit folds."""
        while True:
            await asyncio.sleep(self.canary_tick_s)
            try:
                await self._in_thread(self._tick_canaries)
            except Exception:  # a canary's trouble must not stop serving
                logger.exception("driving canaries failed; will retry at the next tick")

    def _tick_canaries(self) -> None:
        """Judge, step, promote or roll back every canary that is due (blocking)."""
        if self._canaries is None:
            self._canaries = CanaryController.from_workspace(self.workspace)
        for decision in self._canaries.tick():
            logger.info("canary decision: %s", decision.to_json())

    def _ledger_size(self) -> int:
        with self.workspace.store.read() as conn:
            return self.workspace.log.size(conn)

    def build_snapshot(self) -> Snapshot:
        """Read endpoints and aliases, load what they route to (blocking: run in a thread)."""
        ws = self.workspace
        size = self._ledger_size()
        deployed = EndpointStore(ws.store, ws.registry, ws.log, ws.clock).deployed()
        specs = {d.spec.name: (d.spec, d.revision) for d in deployed}
        with ws.store.read() as conn:
            champions = conn.execute(
                sa.select(aliases.c.name).where(aliases.c.alias == "champion")
            ).scalars()
            for model in champions:
                specs.setdefault(model, (default_endpoint(model), 0))
        views: dict[str, EndpointView] = {}
        for name, (spec, revision) in sorted(specs.items()):
            try:
                views[name] = self._view(spec, revision)
            except MlgateError:
                logger.exception("endpoint %r cannot be served; skipping it", name)
        snapshot = Snapshot(size, views, TokenStore(ws.store, ws.log, ws.clock).load())
        self._refresh_bandits(snapshot)
        return snapshot

    def _view(self, spec: EndpointSpec, revision: int) -> EndpointView:
        batching = BatchingConfig(
            max_batch_size=spec.batching.max_batch_size,
            max_wait_s=spec.batching.max_wait_ms / 1000.0,
            max_queue=spec.batching.max_queue,
            inline_budget_s=spec.batching.inline_budget_ms / 1000.0,
        )
        runners: dict[str, VersionRunner] = {}
        primary_targets = [str(t) for t in spec.route.targets()]
        for target in sorted(
            targets_of(spec), key=lambda t: (str(t) not in primary_targets, str(t))
        ):
            version = self.workspace.registry.get(spec.model, target)
            runners[str(target)] = self._runner(version, batching, spec)
        policy, feed = self._bandit(spec)
        router = Router(spec, rng=random.Random(self._rng.random()), bandit=policy)
        return EndpointView(spec=spec, router=router, runners=runners, revision=revision, feed=feed)

    def _runner(
        self, version: ModelVersion, batching: BatchingConfig, spec: EndpointSpec
    ) -> VersionRunner:
        breaker = spec.circuit_breaker
        # The breaker's settings are part of the key: a redeploy that changes only them
        # must get a breaker with the new settings, not keep the old one.
        key = (
            version.name,
            version.version,
            batching,
            (breaker.failure_threshold, breaker.reset_timeout_s),
        )
        runner = self._runners.get(key)
        if runner is not None:
            return runner
        _, model = self.workspace.registry.load(version.name, version.version)
        observer = self.on_batch
        name, number = version.name, version.version

        def on_batch(stats: BatchStats) -> None:
            if observer is not None:
                observer(name, number, stats)

        choice = getattr(model, "runtime", None)
        runner = VersionRunner(
            runtime=None if choice is None else choice.to_json(),
            version=version,
            batcher=AdaptiveBatcher(
                model.predict,
                batching,
                self.executor,
                clock=time.monotonic,
                on_batch=on_batch,
                thread_usage=thread_usage,
            ),
            breaker=CircuitBreaker(
                failure_threshold=breaker.failure_threshold,
                reset_timeout_s=breaker.reset_timeout_s,
            ),
        )
        self._runners[key] = runner
        return runner

    def _refresh_bandits(self, snapshot: Snapshot) -> None:
        """Fold new feedback into each bandit (blocking): see :mod:`.bandit_feed`.

        One endpoint's trouble (a database error, a state its policy refuses) is logged
        and leaves its bandit as it was; it never stops the others or the snapshot.
        """
        for name, view in snapshot.endpoints.items():
            bandit, feed = view.router.bandit, view.feed
            if bandit is None or feed is None:
                continue
            try:
                learned = feed.fold()
                if learned is not None:
                    bandit.load_state(learned)  # one reference swap: safe beside the pulls
            except Exception:
                logger.exception("teaching the bandit of %r failed; it keeps its state", name)

    def _bandit(self, spec: EndpointSpec) -> tuple[Policy | None, BanditFeed | None]:
        """The live policy and feed of a bandit route, kept while the route is unchanged.

        Every ledger change rebuilds the snapshot; re-folding all feedback ever recorded
        each time would make deploys and start-up grow with history, so a route that did
        not change keeps its policy, its learner and its watermarks.
        """
        route = spec.route.bandit
        if route is None:
            return None, None
        with self._bandits_lock:
            kept = self._bandits.get(spec.name)
            if kept is not None and kept[0] == route:
                return kept[1], kept[2]
            seed = route.seed if route.seed is not None else self._rng.getrandbits(63)
            policy = build_bandit(route, seed=seed)
            learner = build_bandit(route, seed=0)  # never pulls: only learns
            encoder = getattr(learner, "encoder", None)
            feed = BanditFeed(
                self.workspace.store,
                spec.name,
                learner,
                route.arms,
                dimension=None if encoder is None else encoder.dim,
                clock=self.workspace.clock,
            )
            self._bandits[spec.name] = (route, policy, feed)
            return policy, feed
