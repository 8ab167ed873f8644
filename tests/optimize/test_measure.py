"""measure_model: numbers from the runtime's call path; a fake clock pins the arithmetic."""

from __future__ import annotations

import math

import numpy as np

from mlgate.optimize import MeasureConfig, measure_model
from mlgate.registry.flavors import flavor_named
from tests.models import linear_classifier
from tests.optimize.conftest import FAST


def _model():  # type: ignore[no-untyped-def]
    data = linear_classifier([[1.0, -1.0], [0.5, 0.5]], [0.0, 0.1])
    flavor = flavor_named("onnx")
    return flavor.load(data, flavor.inspect(data)), len(data)


def test_numbers_are_positive_and_finite() -> None:
    model, size = _model()
    m = measure_model(model, size, np.ones((5, 2), dtype=np.float32), FAST)
    assert m.size_bytes == size
    assert math.isfinite(m.p50_us) and m.p50_us > 0
    assert math.isfinite(m.rows_per_s) and m.rows_per_s > 0


def test_fake_clock_gives_exact_latency_and_throughput() -> None:
    ticks = iter(np.arange(0, 1000, 0.001))  # every clock read advances 1 ms
    model, size = _model()
    config = MeasureConfig(warmup=1, single_row_repeats=5, batch_size=4, batch_repeats=3)
    m = measure_model(model, size, np.ones((2, 2), dtype=np.float32), config, lambda: next(ticks))
    assert m.p50_us == 1000.0
    # batch loop: start, then one read per batch, then the final read
    assert m.rows_per_s == 3 * 4 / 0.004
