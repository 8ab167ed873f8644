"""The optimisation benchmark runs end to end in its quick mode and reports every row.

Only the report's shape and the sanity of its numbers are asserted: timings on a shared
machine say nothing, so no test here compares speeds.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.optimize import MARK_END, MARK_START, main


def test_quick_run_reports_parent_and_variants(tmp_path: Path) -> None:
    out, markdown = tmp_path / "optimize.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main(["--quick", "--out", str(out), "--write", str(markdown)])
    results = json.loads(out.read_text(encoding="utf-8"))
    assert set(results) == {"MLP (128, 64)", "HistGradientBoosting", "PyTorch MLP 50-256-256-2"}
    for report in results.values():
        kinds = [row["kind"] for row in report["variants"]]
        assert kinds[0] == "parent" and "onnx" in kinds
        for row in report["variants"]:
            assert row["size_bytes"] > 0
            assert math.isfinite(row["p50_us"]) and row["p50_us"] > 0
            assert math.isfinite(row["rows_per_s"]) and row["rows_per_s"] > 0
            assert row["status"] in {"parent", "registered", "rejected"}
    mlp_kinds = {row["kind"] for row in results["MLP (128, 64)"]["variants"]}
    assert {"onnx-int8-dynamic", "onnx-fp16"} <= mlp_kinds  # matrix products: they apply
    skipped = {s["kind"] for s in results["HistGradientBoosting"]["skipped"]}
    assert "onnx-int8-dynamic" in skipped  # trees: int8 does not apply, and says so
    torch_kinds = {row["kind"]: row for row in results["PyTorch MLP 50-256-256-2"]["variants"]}
    assert {"onnx", "onnx-int8-dynamic", "torch-pruned"} <= set(torch_kinds)
    assert torch_kinds["torch-pruned"]["size_bytes"] < torch_kinds["parent"]["size_bytes"]
    text = markdown.read_text(encoding="utf-8")
    assert "Other sections stay." in text and MARK_START in text and MARK_END in text
