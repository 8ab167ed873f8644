"""The loop benchmark runs end to end on a few scenarios and writes every table.

Two scenarios per table (one on the live server: each starts a server and runs a canary),
and a short record budget. Only the report's shape and the sanity of its numbers are
asserted: how long anything took on a shared machine says nothing, so no test here
compares times, and outcomes (which a seed decides) are checked only to be one of the
possible ones.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench._loop_candidates import WORSE_KINDS
from bench.loop import MARK_END, MARK_START, main

SMALL = ["--drift", "2", "--live", "1", "--worse", "2", "--better", "2", "--budget", "600"]
STOPPED = {"quarantined", "rejected by gates", "failed", "passed gates"}


def _table(text: str, heading: str) -> list[str]:
    """The Markdown table rows (header and separator included) under ``heading``."""
    after = text[text.index(heading) :]
    lines = after[after.index("\n|") + 1 :].splitlines()
    return lines[: next(i for i, x in enumerate(lines) if not x)]


def test_small_run_reports_every_table_and_goal(tmp_path: Path) -> None:
    out, markdown = tmp_path / "loop.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main([*SMALL, "--out", str(out), "--write", str(markdown)])
    results = json.loads(out.read_text(encoding="utf-8"))

    assert [len(results[part]) for part in ("drift", "live", "worse", "better")] == [2, 1, 2, 2]
    for scenario in results["drift"]:
        assert 600 <= scenario["onset"] < 800
        assert set(scenario["events"]) <= {"alarm", "triggered", "gate_passed", "registered"}
        for event in scenario["events"].values():
            assert 0 < event["records"] <= 600 + 50 and event["seconds"] >= 0
        assert 0.0 <= scenario["champion_accuracy_after"] <= 1.0
        for run in scenario["runs"]:
            assert isinstance(run["state"], str) and isinstance(run["after_onset"], bool)
    live = results["live"][0]
    assert live["outcome"] in {"promoted", "rolled back", "time limit"}
    assert live["requests"] > 0
    assert set(live["events"]) <= {
        "alarm",
        "triggered",
        "gate_passed",
        "canary_started",
        "promoted",
    }
    assert [s["kind"] for s in results["worse"]] == list(WORSE_KINDS[:2])
    for scenario in [*results["worse"], *results["better"]]:
        assert scenario["stopped"] in STOPPED
        assert scenario["trigger"] in {"drift", "performance", "quality", "manual"}
    assert all(isinstance(s["promoted"], bool) for s in results["better"])

    text = markdown.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks\n\nOther sections stay.\n")
    assert text.count(MARK_START) == text.count(MARK_END) == 1
    assert "--drift 2" in text
    assert len(_table(text, "### Drift")) == 2 + 3
    assert len(_table(text, "### Live traffic")) == 2 + 5
    assert len(_table(text, "### Worse candidates")) == 2 + 2 + 1  # two kinds and the total
    assert len(_table(text, "### Better candidates")) == 2 + 1
    assert text.count("- Goal (issue 6)") == 2
