"""The detectors benchmark runs end to end in a tiny mode and reports every row.

Only the report's shape and the sanity of its numbers are asserted: timings on a
shared machine say nothing, so no test here looks at a speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.detectors import MARK_END, MARK_START, STREAMS, main

TINY = ["--seeds", "2", "--pre", "1500", "--speed-records", "30000", "--single-records", "3000"]
OURS = {"mlgate ADWIN", "mlgate BernoulliCusum", "mlgate HDDMA", "mlgate PageHinkley"}
RIVER = {"river ADWIN", "river HDDM_A", "river PageHinkley"}


def test_tiny_run_reports_every_stream_and_detector(tmp_path: Path) -> None:
    out, markdown = tmp_path / "detectors.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main([*TINY, "--out", str(out), "--write", str(markdown)])
    results = json.loads(out.read_text(encoding="utf-8"))

    assert set(results["quality"]) == {stream.name for stream in STREAMS}
    for stream in results["quality"].values():
        assert set(stream["detectors"]) == OURS | RIVER
        assert 0.0 <= stream["error_rate_before"] < stream["error_rate_after"] <= 1.0
        for row in stream["detectors"].values():
            assert row["detected"] + row["missed"] == 2
            assert row["false_alarms"] >= 0
            assert math.isfinite(row["false_alarms_per_10k"])
            assert row["detected"] == 0 or 0.0 <= row["mean_delay"] <= stream["horizon"]
        # Our ADWIN, Page-Hinkley and HDDM_A alarm where river's do.
        pairs = {"ADWIN": "ADWIN", "PageHinkley": "PageHinkley", "HDDMA": "HDDM_A"}
        for ours, theirs in pairs.items():
            mine = stream["detectors"][f"mlgate {ours}"]
            peer = stream["detectors"][f"river {theirs}"]
            assert json.dumps(mine) == json.dumps(peer)  # NaN delays compare equal as text

    speed = results["speed"]
    assert set(speed) == OURS | RIVER
    for name, row in speed.items():
        assert math.isfinite(row["single_per_s"]) and row["single_per_s"] > 0
        if name in OURS:
            assert math.isfinite(row["us_per_record"]) and row["us_per_record"] > 0
            assert row["records"] == 30_000

    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nOther sections stay.\n")
    assert text.count(MARK_START) == text.count(MARK_END) == 1
    assert "--seeds 2" in text
    assert "| mlgate BernoulliCusum |" in text
