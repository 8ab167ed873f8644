"""What a model costs to serve: artifact size, single-row p50 latency, batch-256 throughput.

Every model is timed through ``LoadedModel.predict``, the call mlgate's runtime makes for
each batch (input checks and casts included), so the numbers are what serving sees rather
than a bare ``InferenceSession.run``. Warm-up calls come first (onnxruntime allocates and
sklearn validates lazily); latency is the median of many single-row calls, throughput is
rows over the total time of repeated full batches. The clock is injected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.registry.flavors import LoadedModel

__all__ = ["MeasureConfig", "Measurement", "measure_model"]


@dataclass(frozen=True)
class MeasureConfig:
    """How long to measure: defaults take about a second per fast model."""

    warmup: int = 20
    single_row_repeats: int = 500
    batch_size: int = 256
    batch_repeats: int = 30
    # Stop a slow model's repeats early (a 3 ms sklearn model would otherwise take 1.5 s).
    budget_s: float = 2.0


@dataclass(frozen=True)
class Measurement:
    size_bytes: int
    p50_us: float
    rows_per_s: float

    def to_json(self) -> dict[str, float | int]:
        return {"size_bytes": self.size_bytes, "p50_us": self.p50_us, "rows_per_s": self.rows_per_s}


def measure_model(
    model: LoadedModel,
    size_bytes: int,
    rows: np.ndarray[Any, Any],
    config: MeasureConfig = MeasureConfig(),
    clock: Callable[[], float] = time.perf_counter,
) -> Measurement:
    """Time ``model`` on ``rows`` (tiled up to a full batch when there are fewer)."""
    name = model.signature.inputs[0].name
    count = min(len(rows), config.warmup + config.single_row_repeats)
    single = [{name: rows[i : i + 1]} for i in range(count)]
    batch = {name: np.resize(rows, (config.batch_size, rows.shape[1]))}
    for i in range(config.warmup):
        model.predict(single[i % len(single)])
    model.predict(batch)
    latencies: list[float] = []
    deadline = clock() + config.budget_s / 2
    for i in range(config.single_row_repeats):
        start = clock()
        model.predict(single[i % len(single)])
        end = clock()
        latencies.append(end - start)
        if end > deadline:
            break
    started = clock()
    deadline = started + config.budget_s / 2
    batches = 0
    for _ in range(config.batch_repeats):
        model.predict(batch)
        batches += 1
        if clock() > deadline:
            break
    elapsed = max(clock() - started, 1e-9)
    return Measurement(
        size_bytes=size_bytes,
        p50_us=float(np.median(latencies)) * 1e6,
        rows_per_s=batches * config.batch_size / elapsed,
    )
