"""The loop's HTML report: the story derived from runs and events, plots, escaping, writing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import LoopError
from mlgate.loop.gates.report import CheckResult, GateReport
from mlgate.loop.report import (
    LoopReport,
    ReportAnswer,
    ReportEvent,
    outcome_line,
    render_loop_report,
    rolling_accuracy,
    story_markers,
    write_loop_report,
)

START = 1_700_000_000.0
STEP_S = 0.05  # one request every 50 ms
DRIFT_AT = 800


def at(index: int) -> float:
    return START + index * STEP_S


def serving_version(index: int, rng: np.random.Generator) -> str:
    """Version 1 until the canary; 10%, 50%, 100% to version 2 from 1300; all of it from 1600."""
    share = 0.0 if index < 1300 else 0.1 if index < 1400 else 0.5 if index < 1500 else 1.0
    return "2" if rng.random() < share else "1"


def scenario_answers() -> list[ReportAnswer]:
    rng = np.random.default_rng(7)
    answers = []
    for i in range(2000):
        version = serving_version(i, rng)
        world = "before" if i < DRIFT_AT else "after"
        p = 0.93 if world == "before" else 0.55 if version == "1" else 0.9
        answers.append(ReportAnswer(i, at(i), version, bool(rng.random() < p), world))
    return answers


def scenario_events() -> list[ReportEvent]:
    steps: list[tuple[int, str, str]] = [
        (i, "monitor.window", f"window {k} closed") for k, i in enumerate(range(200, 1000, 200))
    ]
    steps += [(860 + k, "monitor.alarm", f"psi on x{k}: 0.4 (threshold 0.2)") for k in range(4)]
    steps += [
        (900, "loop.triggered", "run 1 triggered by drift: 6 features drifted"),
        (905, "loop.quarantined", "run 1 quarantined (31% of labels disagree)"),
        (1000, "loop.triggered", "run 2 triggered by drift: 6 features drifted"),
        (1005, "loop.data_checked", "run 2 data checked"),
        (1100, "loop.trained", "run 2 trained"),
        (1150, "loop.gated", "run 2 gated (passed)"),
        (1200, "model.registered", "churn version 2 registered"),
        (1201, "loop.registered", "run 2 registered"),
        (1300, "loop.canary_started", "run 2 canary started"),
        (1300, "canary.started", "canary 1 started"),
        (1300, "canary.step", "canary 1 step 10"),
        (1350, "canary.judged", "canary 1 judged"),
        (1400, "canary.step", "canary 1 step 50"),
        (1450, "canary.judged", "canary 1 judged"),
        (1500, "canary.step", "canary 1 step 100"),
        (1550, "canary.judged", "canary 1 judged"),
        (1600, "canary.promoted", "canary 1 promoted"),
        (1600, "model.alias_moved", "churn alias champion → version 2"),
        (1601, "loop.promoted", "run 2 promoted"),
        (1700, "loop.triggered", "run 3 triggered by manual: <script>alert(1)</script>"),
        (1750, "loop.trained", "run 3 trained"),
        (1800, "loop.rejected", "run 3 rejected"),
    ]
    return [ReportEvent(at(i), kind, line, seq) for seq, (i, kind, line) in enumerate(steps)]


def promoted_gate() -> dict[str, Any]:
    checks = (
        CheckResult("all_of[0]", "metric", True, "accuracy 0.91 ≥ 0.85", 0.91, 0.85),
        CheckResult("all_of[1]", "champion", True, "better than version 1 by 0.3", 0.3, 0.0),
        CheckResult("all_of[2]", "latency", True, "p99 2.1 ms ≤ 20 ms", 2.1, 20.0),
    )
    tree = CheckResult("all_of", "all_of", True, "all passed", children=checks)
    return GateReport(passed=True, tree=tree).to_json()


def scenario_runs() -> list[dict[str, Any]]:
    return [
        {
            "id": 1,
            "state": "quarantined",
            "trigger": {"kind": "drift", "reason": "6 features drifted"},
            "data": {"rows": 600, "fingerprint": "sha256:aa"},
            "candidate_version": None,
            "gate_report": None,
            "gate_digest": None,
            "error": "data check failed: 31% of labels disagree with the champion",
        },
        {
            "id": 2,
            "state": "promoted",
            "trigger": {"kind": "drift", "reason": "6 features drifted"},
            "data": {"rows": 1200, "fingerprint": "sha256:bb"},
            "candidate_version": 2,
            "gate_report": promoted_gate(),
            "gate_digest": "sha256:cc",
            "error": None,
        },
        {
            "id": 3,
            "state": "rejected",
            "trigger": {"kind": "manual", "reason": "<script>alert(1)</script>"},
            "data": {"rows": 1500, "fingerprint": "sha256:dd"},
            "candidate_version": 3,
            "gate_report": {
                "passed": False,
                "checks": [
                    {
                        "path": "slices[<b>region</b>]",
                        "kind": "slices",
                        "passed": False,
                        "value": float("nan"),
                        "threshold": 0.05,
                        "message": "segment <eu> dropped",
                    }
                ],
            },
            "gate_digest": "sha256:ee",
            "error": None,
        },
    ]


def scenario(**changes: Any) -> LoopReport:
    values: dict[str, Any] = {
        "title": "churn loop: drift & recovery",
        "endpoint": "churn",
        "started_at": START,
        "answers": scenario_answers(),
        "events": scenario_events(),
        "runs": scenario_runs(),
        "drift_at": DRIFT_AT,
        "ledger": {"size": 512, "root": "ab" * 32, "verified": True, "checkpoints": 3},
        "notes": ("labels arrive 2 s late",),
    }
    values.update(changes)
    return LoopReport(**values)


def svgs(page: str) -> list[ET.Element]:
    """Each inline SVG, parsed as XML: a malformed plot fails here."""
    return [ET.fromstring(m) for m in re.findall(r"<svg.*?</svg>", page, flags=re.S)]


def test_the_page_tells_the_story_with_plots_markers_and_runs() -> None:
    page = render_loop_report(scenario())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert len(svgs(page)) == 2  # accuracy and traffic
    for label in ("drift injected", "triggered", "quarantined", "canary start", "promoted"):
        assert f">{label}</text>" in page
    for run_id, state in ((1, "quarantined"), (2, "promoted"), (3, "rejected")):
        assert f"<tr><td>{run_id}</td>" in page
        assert f">{state}</span>" in page
    assert "data check failed: 31% of labels disagree" in page
    for path in ("all_of[0]", "all_of[1]", "all_of[2]"):
        assert f"<td>{path}</td>" in page  # the promoted run's checks, from the stored tree
    assert "ab" * 32 in page and "verifier/verify.py" in page
    assert "labels arrive 2 s late" in page
    assert "<script" not in page.lower() and "javascript" not in page.lower()
    assert re.search(r"\bnan\b", page, flags=re.I) is None


def test_the_outcome_is_derived_from_runs_and_events() -> None:
    assert outcome_line(scenario()) == (
        "drift at request 800 → detected after 100 requests → run 1's data quarantined → "
        "version 2 promoted after 3 canary steps → version 3 rejected"
    )


def test_an_outcome_without_promotion_says_so() -> None:
    runs = [scenario_runs()[0]]
    events = [e for e in scenario_events() if e.at < at(1000)]
    line = outcome_line(scenario(runs=runs, events=events))
    assert line.endswith("run 1's data quarantined → no version promoted")
    assert outcome_line(scenario(runs=[], events=[], drift_at=None)) == "no version promoted"
    late = outcome_line(scenario(runs=[], events=events[:-2], drift_at=950))
    assert "no run triggered after it" in late
    running = {**scenario_runs()[1], "state": "canary"}
    assert outcome_line(scenario(runs=[running])).endswith(
        "version 2 still in canary → no version promoted"
    )


def test_repeated_moments_get_one_marker_at_the_nearest_request() -> None:
    markers = story_markers(scenario())
    labels = [(m.label, m.index) for m in markers]
    assert labels.count(("promoted", 1600)) == 1  # canary.promoted and loop.promoted merged
    assert ("canary start", 1300) in labels and ("drift injected", DRIFT_AT) in labels
    assert [m.index for m in markers if m.label == "triggered"] == [900, 1000, 1700]
    promoted = next(m for m in markers if m.label == "promoted")
    assert "canary 1 promoted" in promoted.detail and "run 2 promoted" in promoted.detail


def test_user_values_are_escaped_everywhere() -> None:
    evil = "<script>alert(1)</script>"
    answers = [ReportAnswer(i, at(i), evil if i % 2 else "1", True, "w<b>") for i in range(120)]
    report = scenario(title=evil, endpoint=evil, answers=answers, notes=(evil,))
    page = render_loop_report(report)
    assert "<script" not in page and "<b>" not in page and "<eu>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "slices[&lt;b&gt;region&lt;/b&gt;]" in page
    svgs(page)  # the escaped version names leave the SVG well formed


def test_empty_inputs_still_render() -> None:
    report = LoopReport(
        title="empty",
        endpoint="e",
        started_at=START,
        answers=(),
        events=(),
        runs=(),
        drift_at=None,
        ledger={},
    )
    page = render_loop_report(report)
    assert "nothing to plot" in page and "No events were recorded." in page
    assert "No retraining run was started." in page and "not verified" in page
    assert len(svgs(page)) == 1
    assert re.search(r"\bnan\b", page, flags=re.I) is None


def test_missing_and_non_finite_numbers_read_as_a_dash() -> None:
    answers = scenario_answers()[:300]
    events = [ReportEvent(float("nan"), "loop.triggered", "when?", None)]
    runs = [{"id": 9, "state": "failed", "trigger": None, "data": None, "gate_report": None}]
    report = scenario(
        answers=answers,
        events=events,
        runs=runs,
        started_at=float("nan"),
        ledger={"size": float("nan"), "root": None},
    )
    page = render_loop_report(report)
    assert re.search(r"\bnan\b", page, flags=re.I) is None and "None" not in page
    assert '<td class="n">—</td>' in page


def test_the_timeline_shows_seconds_since_start_and_ledger_seq() -> None:
    page = render_loop_report(scenario())
    assert '<td class="n">45.0</td>' in page  # request 900 at 50 ms each
    assert '<td class="n">87.5</td>' in page  # run 3 trained, request 1750
    row = re.search(r"<tr><td class=\"n\">45\.0</td>.*?</tr>", page)
    assert row is not None and "loop.triggered" in row.group(0) and ">8</td>" in row.group(0)


def test_rolling_accuracy_matches_a_known_value() -> None:
    correct = [a.correct for a in scenario_answers()]
    rolling = rolling_accuracy(correct, 100)
    assert rolling[999] == pytest.approx(np.mean(correct[900:1000]))
    assert rolling[0] == float(correct[0])
    assert rolling[9] == pytest.approx(np.mean(correct[:10]))  # fewer than a window: all so far


@given(st.lists(st.booleans(), min_size=1, max_size=300), st.integers(min_value=1, max_value=120))
def test_rolling_accuracy_agrees_with_numpy_convolve(correct: Sequence[bool], window: int) -> None:
    values = np.asarray(correct, dtype=np.float64)
    sums = np.convolve(values, np.ones(window))[: values.size]  # trailing sums
    counts = np.minimum(np.arange(1, values.size + 1), window)
    np.testing.assert_allclose(rolling_accuracy(correct, window), sums / counts, atol=1e-12)


def test_no_answers_give_an_empty_rolling_accuracy() -> None:
    assert rolling_accuracy([], 100).size == 0


def test_a_window_below_one_is_refused() -> None:
    with pytest.raises(LoopError, match="at least 1"):
        rolling_accuracy([True], 0)


def test_write_is_atomic_and_leaves_only_the_page(tmp_path: Path) -> None:
    report = scenario()
    target = tmp_path / "out" / "report.html"
    written = write_loop_report(target, report)
    assert written == target and target.read_text(encoding="utf-8") == render_loop_report(report)
    write_loop_report(target, scenario(title="second"))  # replaces in place
    assert "second" in target.read_text(encoding="utf-8")
    assert [p.name for p in target.parent.iterdir()] == ["report.html"]
