"""Smoke test of bench/stream.py: a tiny run produces every number and a marked section."""

from __future__ import annotations

from pathlib import Path

from bench.stream import MARK_END, MARK_START, main


def test_stream_bench_runs_and_writes_its_section(tmp_path: Path) -> None:
    target = tmp_path / "BENCHMARKS.md"
    target.write_text("# Benchmarks\n\n<!-- other:start -->\nkept\n<!-- other:end -->\n")
    out = tmp_path / "stream.json"
    assert (
        main(
            [
                "--records",
                "20000",
                "--timing-batches",
                "3",
                "--write",
                str(target),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = target.read_text()
    assert "kept" in text and MARK_START in text and MARK_END in text
    assert "update, per record and feature" in text and "monitor state" in text
    assert out.stat().st_size > 0
