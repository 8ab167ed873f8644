"""Prometheus metrics of the serving data plane, one registry per server instance.

Names follow Prometheus conventions: the ``mlgate_`` prefix, the unit last
(``_seconds``, ``_rows``) and ``_total`` on counters. Labels hold only bounded values
(endpoint, version, route, status, reason), never request ids, so the series count
is fixed by the deployment, not by the traffic.

The hot path pays one dict lookup per observation: each metric's labelled children are
cached by label tuple, skipping prometheus_client's per-call label validation and lock.

With ``mlgate serve --workers N`` every worker writes its values to files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client decides this at import, from the
environment) and :func:`multiprocess_render` merges them for a scrape. Custom collectors
such as the queue depth do not cross processes, so they are absent from that view.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.multiprocess import MultiProcessCollector

from mlgate.errors import ConfigError

__all__ = ["ServingMetrics", "multiprocess_render"]

logger = logging.getLogger(__name__)

# A request takes from half a millisecond (a cached small model) to a second (a deadline).
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
BATCH_SIZE_BUCKETS = tuple(float(2**power) for power in range(9))  # 1, 2, 4, ..., 256

QueueDepthSource = Callable[[], Mapping[tuple[str, str], int]]

_M = TypeVar("_M", bound=MetricWrapperBase)


class _Children(Generic[_M]):
    """A labelled metric and its children, cached per label tuple."""

    __slots__ = ("_children", "_metric")

    def __init__(self, metric: _M) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], _M] = {}

    def get(self, *values: str) -> _M:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class _QueueDepthCollector:
    """Reads the batchers' queue depths when Prometheus scrapes, not when they change."""

    def __init__(self) -> None:
        self.source: QueueDepthSource | None = None

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        source = self.source
        if source is not None:
            try:
                depths = source()
            except Exception:  # a failing source must not fail the whole scrape
                logger.exception("reading queue depths for /metrics failed")
                depths = {}
            for (model, version), depth in sorted(depths.items()):
                family.add_metric([model, version], depth)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "mlgate_queue_depth_requests",
            "Requests waiting in a model version's batching queue.",
            labels=["model", "version"],
        )


class ServingMetrics:
    """Every serving metric, registered in this instance's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self._requests = _Children(
            Counter(
                "mlgate_requests",
                "Inference requests answered, by endpoint, version, route and status.",
                ["endpoint", "version", "route", "status"],
                registry=r,
            )
        )
        self._latency = _Children(
            Histogram(
                "mlgate_request_latency_seconds",
                "Time from request received to response ready.",
                ["endpoint", "version", "status"],
                buckets=LATENCY_BUCKETS_S,
                registry=r,
            )
        )
        self._batch_rows = _Children(
            Histogram(
                "mlgate_batch_size_rows",
                "Rows in each batch sent to a model.",
                ["model", "version"],
                buckets=BATCH_SIZE_BUCKETS,
                registry=r,
            )
        )
        self._batch_requests = _Children(
            Histogram(
                "mlgate_batch_size_requests",
                "Requests merged into each batch sent to a model.",
                ["model", "version"],
                buckets=BATCH_SIZE_BUCKETS,
                registry=r,
            )
        )
        self._batch_compute = _Children(
            Histogram(
                "mlgate_batch_compute_seconds",
                "Time a model spent computing one batch.",
                ["model", "version"],
                buckets=LATENCY_BUCKETS_S,
                registry=r,
            )
        )
        self._shed = _Children(
            Counter(
                "mlgate_shed",
                "Requests refused before compute (queue full, deadline unreachable).",
                ["endpoint", "reason"],
                registry=r,
            )
        )
        self._errors = _Children(
            Counter(
                "mlgate_errors",
                "Requests that failed, by kind.",
                ["endpoint", "version", "kind"],
                registry=r,
            )
        )
        self._timeouts = _Children(
            Counter(
                "mlgate_timeouts",
                "Model calls that missed their deadline.",
                ["endpoint", "version"],
                registry=r,
            )
        )
        self._fallbacks = _Children(
            Counter(
                "mlgate_fallbacks",
                "Requests answered by a fallback version instead of the one routed to.",
                ["endpoint", "from_version", "to_version"],
                registry=r,
            )
        )
        self._shadow = _Children(
            Counter(
                "mlgate_shadow_requests",
                "Shadow predictions made, by outcome; clients never see them.",
                ["endpoint", "version", "status"],
                registry=r,
            )
        )
        self._log_dropped = Counter(
            "mlgate_prediction_log_dropped",
            "Prediction log records lost: queue full or database unavailable.",
            registry=r,
        )
        self._queue_depth = _QueueDepthCollector()
        r.register(self._queue_depth)

    def observe_request(
        self, endpoint: str, version: str, route: str, status: str, latency_s: float
    ) -> None:
        self._requests.get(endpoint, version, route, status).inc()
        self._latency.get(endpoint, version, status).observe(latency_s)

    def observe_batch(
        self, model: str, version: str, rows: int, requests: int, compute_s: float
    ) -> None:
        self._batch_rows.get(model, version).observe(rows)
        self._batch_requests.get(model, version).observe(requests)
        self._batch_compute.get(model, version).observe(compute_s)

    def set_queue_depth_source(self, source: QueueDepthSource) -> None:
        """Report ``source()``'s ``{(model, version): depth}`` at every scrape."""
        self._queue_depth.source = source

    def shed(self, endpoint: str, reason: str) -> None:
        self._shed.get(endpoint, reason).inc()

    def error(self, endpoint: str, version: str, kind: str) -> None:
        self._errors.get(endpoint, version, kind).inc()

    def timeout(self, endpoint: str, version: str) -> None:
        self._timeouts.get(endpoint, version).inc()

    def fallback(self, endpoint: str, from_version: str, to: str) -> None:
        self._fallbacks.get(endpoint, from_version, to).inc()

    def shadow(self, endpoint: str, version: str, status: str) -> None:
        self._shadow.get(endpoint, version, status).inc()

    def log_dropped(self, n: int) -> None:
        """Shaped as PredictionLogWriter's ``on_drop`` hook."""
        self._log_dropped.inc(n)

    def render(self) -> tuple[bytes, str]:
        """The body and content type of a /metrics response."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def multiprocess_render(directory: str) -> tuple[bytes, str]:
    """Merge what every worker wrote under ``directory`` (PROMETHEUS_MULTIPROC_DIR)."""
    if not Path(directory).is_dir():
        raise ConfigError(
            f"PROMETHEUS_MULTIPROC_DIR {directory!r} is not a directory: create an empty "
            "folder for it before starting the workers"
        )
    registry = CollectorRegistry()
    # prometheus_client leaves this constructor unannotated; it registers itself.
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST
