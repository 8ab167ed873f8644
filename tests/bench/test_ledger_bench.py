"""The ledger benchmark runs end to end in its smallest mode and proves what it claims.

Only the shape of the report and the correctness checks are asserted: timings on
a shared machine say nothing, so no test here looks at a number of seconds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from bench.ledger import MARK_END, MARK_START, main, write_section

SMALLEST = ["--entries", "2000", "--backends", "sqlite", "--singles", "5", "--proofs", "20"]
EXPECTED_ROWS = {
    "sqlite.append.batch",
    "sqlite.append.batch_bytes",
    "sqlite.encode",
    "sqlite.append.single",
    "sqlite.append.single_bytes",
    "sqlite.verify",
    "sqlite.proof.generate.pass1",
    "sqlite.proof.verify.pass1",
    "sqlite.proof.generate.pass2",
    "sqlite.proof.verify.pass2",
    "sqlite.proof.first",
    "sqlite.proof.length",
}


def _run(tmp_path: Path, *extra: str) -> tuple[dict[str, object], str]:
    out, markdown = tmp_path / "ledger.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main(
        [*SMALLEST, *extra, "--workdir", str(tmp_path), "--out", str(out), "--write", str(markdown)]
    )
    results = json.loads(out.read_text(encoding="utf-8"))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("mlgate-bench-")] == []
    return results, markdown.read_text(encoding="utf-8")


def _assert_report(results: dict[str, object], markdown: str, with_pymerkle: bool) -> None:
    rows = results["rows"]
    assert isinstance(rows, list)
    assert {row["id"] for row in rows} == EXPECTED_ROWS
    checks = results["checks"]
    assert isinstance(checks, dict)
    facts = checks["sqlite"]
    assert facts["proofs_verified"] is True
    assert facts["roots_match"] is True
    assert facts["verify_ok"] is True
    assert facts["proof_length_is_ceil_log2_n"] is True  # 2,000 entries: 11 hashes
    assert ("pymerkle_sqlite_paths_identical" in facts) is with_pymerkle
    assert all(value is True for value in facts.values()), facts
    assert any(("pymerkle" in row) for row in rows) is with_pymerkle
    assert markdown.startswith("# Benchmarks\n\nOther sections stay.\n")
    assert markdown.count(MARK_START) == markdown.count(MARK_END) == 1
    assert "--entries 2000" in markdown


def test_smallest_run_reports_every_row_and_verified_proofs(tmp_path: Path) -> None:
    results, markdown = _run(tmp_path, "--no-pymerkle")
    _assert_report(results, markdown, with_pymerkle=False)


@pytest.mark.skipif(
    importlib.util.find_spec("pymerkle") is None,
    reason="pymerkle is only in the 'bench' extra: pip install -e '.[bench]'",
)
def test_smallest_run_beside_pymerkle_agrees_on_roots_and_paths(tmp_path: Path) -> None:
    results, markdown = _run(tmp_path)
    _assert_report(results, markdown, with_pymerkle=True)


def test_rewriting_the_section_keeps_the_rest_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(f"# B\n\n{MARK_START}\nold\n{MARK_END}\n\n## Other\n", encoding="utf-8")
    write_section(path, f"{MARK_START}\nnew\n{MARK_END}\n")
    assert path.read_text(encoding="utf-8") == f"# B\n\n{MARK_START}\nnew\n{MARK_END}\n\n## Other\n"
