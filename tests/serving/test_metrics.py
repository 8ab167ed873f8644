"""Serving metrics, read back the way Prometheus reads them: by parsing the exposition."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from mlgate.errors import ConfigError
from mlgate.serving.metrics import ServingMetrics, multiprocess_render

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _parse(body: bytes) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode("utf-8"))
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def _scrape(metrics: ServingMetrics) -> Samples:
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE_LATEST
    return _parse(body)


def test_requests_are_counted_and_timed() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("iris", "3", "primary", "ok", 0.0008)
    metrics.observe_request("iris", "3", "primary", "ok", 0.2)
    metrics.observe_request("iris", "3", "canary", "error", 0.004)
    samples = _scrape(metrics)
    ok = {"endpoint": "iris", "version": "3", "status": "ok"}
    assert _value(samples, "mlgate_requests_total", route="primary", **ok) == 2
    assert _value(samples, "mlgate_requests_total", route="canary", **{**ok, "status": "error"})
    assert _value(samples, "mlgate_request_latency_seconds_count", **ok) == 2
    assert _value(samples, "mlgate_request_latency_seconds_sum", **ok) == pytest.approx(0.2008)
    assert _value(samples, "mlgate_request_latency_seconds_bucket", le="0.0005", **ok) == 0
    assert _value(samples, "mlgate_request_latency_seconds_bucket", le="0.001", **ok) == 1
    assert _value(samples, "mlgate_request_latency_seconds_bucket", le="0.25", **ok) == 2
    assert _value(samples, "mlgate_request_latency_seconds_bucket", le="+Inf", **ok) == 2


def test_batches_are_measured_in_rows_requests_and_seconds() -> None:
    metrics = ServingMetrics()
    metrics.observe_batch("iris-model", "3", rows=3, requests=2, compute_s=0.01)
    metrics.observe_batch("iris-model", "3", rows=256, requests=40, compute_s=0.02)
    samples = _scrape(metrics)
    mv = {"model": "iris-model", "version": "3"}
    rows = "mlgate_batch_size_rows_bucket"
    assert _value(samples, rows, le="2.0", **mv) == 0
    assert _value(samples, rows, le="4.0", **mv) == 1
    assert _value(samples, rows, le="128.0", **mv) == 1
    assert _value(samples, rows, le="256.0", **mv) == 2
    assert _value(samples, "mlgate_batch_size_requests_sum", **mv) == 42
    assert _value(samples, "mlgate_batch_compute_seconds_count", **mv) == 2
    assert _value(samples, "mlgate_batch_compute_seconds_sum", **mv) == pytest.approx(0.03)


def test_incidents_are_counted_by_their_labels() -> None:
    metrics = ServingMetrics()
    metrics.shed("iris", "queue_full")
    metrics.shed("iris", "queue_full")
    metrics.error("iris", "3", "model_failed")
    metrics.timeout("iris", "3")
    metrics.fallback("iris", "3", "2")
    metrics.shadow("iris", "4", "ok")
    metrics.log_dropped(5)
    metrics.log_dropped(1)
    samples = _scrape(metrics)
    assert _value(samples, "mlgate_shed_total", endpoint="iris", reason="queue_full") == 2
    assert (
        _value(samples, "mlgate_errors_total", endpoint="iris", version="3", kind="model_failed")
        == 1
    )
    assert _value(samples, "mlgate_timeouts_total", endpoint="iris", version="3") == 1
    fallback = {"endpoint": "iris", "from_version": "3", "to_version": "2"}
    assert _value(samples, "mlgate_fallbacks_total", **fallback) == 1
    shadow = {"endpoint": "iris", "version": "4", "status": "ok"}
    assert _value(samples, "mlgate_shadow_requests_total", **shadow) == 1
    assert _value(samples, "mlgate_prediction_log_dropped_total") == 6


def test_every_metric_is_prefixed_and_counters_end_in_total() -> None:
    metrics = ServingMetrics()
    metrics.observe_request("iris", "3", "primary", "ok", 0.001)
    families = list(text_string_to_metric_families(metrics.render()[0].decode("utf-8")))
    assert families and all(family.name.startswith("mlgate_") for family in families)
    for family in families:
        if family.type == "counter":
            assert {s.name for s in family.samples} <= {
                family.name + "_total",
                family.name + "_created",
            }


def test_instances_do_not_share_state() -> None:
    first, second = ServingMetrics(), ServingMetrics()
    first.shed("iris", "deadline")
    first.observe_request("iris", "3", "primary", "ok", 0.001)
    samples = _scrape(second)
    assert _value(samples, "mlgate_shed_total", endpoint="iris", reason="deadline") is None
    assert not any(name == "mlgate_requests_total" for name, _ in samples)
    assert _value(_scrape(first), "mlgate_shed_total", endpoint="iris", reason="deadline") == 1


def test_a_given_registry_is_used() -> None:
    registry = CollectorRegistry()
    metrics = ServingMetrics(registry)
    assert metrics.registry is registry
    metrics.timeout("iris", "3")
    assert registry.get_sample_value("mlgate_timeouts_total", {"endpoint": "iris", "version": "3"})


def test_queue_depth_is_read_at_scrape_time() -> None:
    metrics = ServingMetrics()
    assert not any(name == "mlgate_queue_depth_requests" for name, _ in _scrape(metrics))
    depths = {("iris-model", "3"): 4}
    calls: list[int] = []

    def source() -> dict[tuple[str, str], int]:
        calls.append(1)
        return dict(depths)

    metrics.set_queue_depth_source(source)
    assert calls == []  # nothing is read until a scrape asks
    labels = {"model": "iris-model", "version": "3"}
    assert _value(_scrape(metrics), "mlgate_queue_depth_requests", **labels) == 4
    depths[("iris-model", "3")] = 9
    depths[("iris-model", "4")] = 1
    samples = _scrape(metrics)
    assert _value(samples, "mlgate_queue_depth_requests", **labels) == 9
    assert _value(samples, "mlgate_queue_depth_requests", model="iris-model", version="4") == 1
    assert len(calls) == 2


def test_a_failing_queue_depth_source_does_not_fail_the_scrape(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = ServingMetrics()
    metrics.timeout("iris", "3")

    def broken() -> dict[tuple[str, str], int]:
        raise RuntimeError("batcher gone")

    metrics.set_queue_depth_source(broken)
    with caplog.at_level(logging.ERROR, logger="mlgate.serving.metrics"):
        samples = _scrape(metrics)
    assert _value(samples, "mlgate_timeouts_total", endpoint="iris", version="3") == 1
    assert "queue depths" in caplog.text


def test_multiprocess_render_merges_what_workers_wrote(tmp_path: Path) -> None:
    # prometheus_client picks file-backed values at import, from the environment, so the
    # workers are real processes; this one only reads, as `mlgate serve` does.
    worker = textwrap.dedent(
        """
        from mlgate.serving.metrics import ServingMetrics
        metrics = ServingMetrics()
        metrics.observe_request("iris", "3", "primary", "ok", 0.002)
        metrics.shed("iris", "queue_full")
        """
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", worker], env=env, check=True, timeout=120)
    body, content_type = multiprocess_render(str(tmp_path))
    assert content_type == CONTENT_TYPE_LATEST
    samples = _parse(body)
    labels = {"endpoint": "iris", "version": "3", "route": "primary", "status": "ok"}
    assert _value(samples, "mlgate_requests_total", **labels) == 2
    assert _value(samples, "mlgate_shed_total", endpoint="iris", reason="queue_full") == 2
    latency = {"endpoint": "iris", "version": "3", "status": "ok"}
    assert _value(samples, "mlgate_request_latency_seconds_count", **latency) == 2


def test_multiprocess_render_needs_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        multiprocess_render(str(tmp_path / "missing"))
