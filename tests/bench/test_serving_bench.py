"""The serving benchmark runs end to end in its smallest mode and proves what it claims.

The smallest mode needs neither MLServer nor wrk: the real ``mlgate serve`` runs on a
fresh workspace and the benchmark's own httpx client sends a few hundred requests over
loopback. Only the report's shape and the correctness checks are asserted, never a
timing: on a shared machine a number of seconds says nothing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from bench.serving import (
    MARK_END,
    MARK_START,
    OWN_OK,
    OWN_OK_50MS,
    _summarise,
    main,
    pooled,
    summarise_profile,
    write_section,
)

SMALLEST = [
    "--client",
    "python",
    "--skip-mlserver",
    "--workers",
    "1",
    "--connections",
    "4",
    "--duration",
    "1",
    "--fixed-duration",
    "1",
    "--overload-duration",
    "1",
    "--overload-connections",
    "4",
    "--rate",
    "40",
    "--max-requests",
    "60",
    "--heavy-dims",  # small enough that no run sheds on a loaded CI machine
    "64,128,2",
]
TARGETS = {
    "mlgate.w1.zero",
    "mlgate.w1.direct",
    "mlgate.w1.router",
    "mlp.w1.batched",
    "mlp.w1.unbatched",
    "heavy.w1.direct",
    "heavy.w1.unbatched",
}
EXPECTED_ROWS = {f"target.{key}" for key in TARGETS} | {
    "router_cost.w1.vs_zero",
    "router_cost.w1.vs_direct",
    "batching",
    "batching.heavy",
    "overload.default_deadline",
    "overload.deadline_50ms",
    "overload.heavy_default_deadline",
    "overload.heavy_deadline_50ms",
}


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("httpx") is None, reason="needs httpx (dev extra)")
def test_smallest_run_reports_every_row_and_correct_answers(tmp_path: Path) -> None:
    out, markdown = tmp_path / "serving.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main([*SMALLEST, "--workdir", str(tmp_path), "--out", str(out), "--write", str(markdown)])
    results = json.loads(out.read_text(encoding="utf-8"))

    assert {row["id"] for row in results["rows"]} == EXPECTED_ROWS
    assert set(results["targets"]) == TARGETS
    # Every server answered the 3-row check request with the local models' numbers.
    assert results["checks"] == {
        "lr_same_probabilities": True,
        "router_answers_match_their_version": True,
        "mlp_same_outputs": True,
    }
    assert set(results["answers"]["lr_max_abs_diff"]) == {
        "mlgate.w1.zero",
        "mlgate.w1.direct",
        "mlgate.w1.guard",
    }
    # Under load every request was answered 200 with a body holding outputs.
    for key, entry in results["targets"].items():
        # The fixed rate ran in rounds at different times; their samples pooled, not kept.
        assert entry["fixed"]["rounds"] == 2 and "_samples" not in entry["fixed"], key
        runs = [*entry["sweep"].values(), entry["fixed"]]
        for run in runs:
            assert run["requests"] > 0, key
            assert run["statuses"] == {"200": run["requests"]}, key
            assert run["bad_bodies"] == 0, key
            assert run["socket_errors"] == 0, key
            assert run["server_cpu_s"] >= 0, key
    assert set(results["overload"]) == {
        "default_deadline",
        "deadline_50ms",
        "heavy_default_deadline",
        "heavy_deadline_50ms",
    }
    for overload in results["overload"].values():
        assert overload["requests"] > 0
        assert set(overload["statuses"]) <= {"200", "503", "504"}
        assert overload["bad_bodies"] == 0
        assert overload["rss"]["samples"] > 0
        own = overload["refusals"]  # mlgate's /metrics: every 200 it sent, counted by it too
        assert own.get(OWN_OK, 0.0) >= overload["statuses"].get("200", 0)
        assert 0.0 <= own.get(OWN_OK_50MS, 0.0) <= own.get(OWN_OK, 0.0)

    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nOther sections stay.\n")
    assert text.count(MARK_START) == text.count(MARK_END) == 1
    assert "--client python" in text
    # The temporary workspace (and every server in it) is gone.
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mlgate-serving-")] == []


def test_rewriting_the_section_keeps_the_ledger_section(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    ledger = "<!-- ledger:start -->\nledger\n<!-- ledger:end -->\n"
    path.write_text(f"# B\n\n{ledger}", encoding="utf-8")
    write_section(path, f"{MARK_START}\nfirst\n{MARK_END}\n")
    write_section(path, f"{MARK_START}\nsecond\n{MARK_END}\n")
    expected = f"# B\n\n{ledger}\n{MARK_START}\nsecond\n{MARK_END}\n"
    assert path.read_text(encoding="utf-8") == expected


def test_profile_summary_counts_the_event_loop_and_drops_idle_workers() -> None:
    raw = (
        "thread (1): MainThread;run (a.py:1);RequestResponseCycle.run_asgi (u.py:1);"
        "create_app.<locals>.infer (mlgate/serving/app.py:9) 3\n"
        "thread (1): MainThread;run (a.py:1);RequestResponseCycle.run_asgi (u.py:1) 2\n"
        "thread (1): MainThread;run (a.py:1) 1\n"
        "thread (2): pool;_worker (concurrent/futures/thread.py:81) 7\n"
        "thread (3): pool;_insert (mlgate/serving/predlog.py:2) 4\n"
    )
    summary = summarise_profile(raw)
    assert summary["samples"] == 10
    assert summary["main_thread_samples"] == 6
    assert summary["main_thread_layers"] == {
        "mlgate_infer_handler": 3,
        "http_stack": 2,
        "loop_and_other": 1,
    }
    assert dict(summary["inclusive_mlgate"]) == {
        "create_app.<locals>.infer (mlgate/serving/app.py:9)": 3
    }
    assert dict(summary["inclusive_mlgate_other_threads"]) == {
        "_insert (mlgate/serving/predlog.py:2)": 4
    }


def test_fixed_rate_rounds_pool_their_samples_and_sum_their_counts() -> None:
    def round_(latencies: list[float], cpu_s: float) -> dict[str, Any]:
        samples = [(200, lat) for lat in latencies]
        run = _summarise(samples, 10.0, {"socket_errors": 0, "latency_from": "x"}, keep=True)
        measured = {"connections": 32, "offered_rps": 250.0, "rss_bytes": 1}
        return run | measured | {"server_cpu_s": cpu_s}

    quiet = round_([0.001] * 99, 0.1)
    busy = round_([0.001] * 90 + [0.050] * 9, 0.3)
    result = pooled([quiet, busy])
    assert result["requests"] == 198 and result["rounds"] == 2
    assert result["statuses"] == {"200": 198}
    # 9 slow of 198 is 4.5 %: the pooled p99 is slow, the quiet round's alone was not.
    assert quiet["p99_s"] == 0.001 and result["p99_s"] == 0.050
    assert result["cpu_per_request_s"] == 0.4 / 198
    assert "_samples" not in result


def test_a_failed_round_is_reported_as_the_fixed_result() -> None:
    ok = _summarise([(200, 0.001)], 1.0, {"latency_from": "x"}, keep=True)
    failed = {"error": "wrk failed (1): boom"}
    assert pooled([ok, failed]) == failed
