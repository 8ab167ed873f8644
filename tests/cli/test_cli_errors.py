"""Bad input through the real executable: one clear 'error:' line, no traceback, no change.

Each case runs against its own copy of one seeded installation (SQLite), so the
cases can run side by side and each copy can be compared, table by table and
file by file, with the untouched original afterwards.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mlgate.workspace import Workspace
from tests.cli.test_cli import (
    ACTOR,
    Cli,
    Result,
    append_events,
    assert_one_error_line,
    snapshot,
    write_forest,
    write_onnx,
)

UNREACHABLE = "postgresql+psycopg://x@127.0.0.1:1/none"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    fragments: tuple[str, ...]
    home: str = "seeded"  # or "absent": no `mlgate init` has run
    store: str | None = None  # None: the default SQLite file in HOME


CASES: dict[str, Case] = {
    "corrupt-model-file": Case(
        ("models", "register", "fraud", "{truncated}"), ("cannot parse the file as an ONNX",)
    ),
    "unknown-format": Case(
        ("models", "register", "fraud", "{text}"), ("cannot tell the model format",)
    ),
    "nonexistent-file": Case(
        ("models", "register", "fraud", "{missing}"),
        ("cannot read model file", "missing.onnx", "No such file"),
    ),
    "duplicate-registration": Case(
        ("models", "register", "fraud", "{onnx_v1}"), ("already fraud version 1",)
    ),
    "untrusted-skops": Case(
        ("models", "register", "forest", "{forest}"),
        ("not trusted", "--trust sklearn.tree._tree.Tree"),
    ),
    "signature-mismatch": Case(
        ("models", "register", "fraud", "{onnx_v2}", "--signature", "{bad_signature}"),
        ("signature",),
    ),
    "alias-to-missing-version": Case(
        ("models", "alias", "fraud", "champion", "7"), ("fraud has no version 7",)
    ),
    "unknown-model": Case(("models", "show", "ghost"), ("no model named 'ghost'",)),
    "metric-not-a-number": Case(
        ("models", "register", "fraud", "{onnx_v2}", "--metric", "auc=high"),
        ("--metric auc must be a number", "'high'"),
    ),
    "param-without-equals": Case(
        ("models", "register", "fraud", "{onnx_v2}", "--param", "x"),
        ("--param expects KEY=VALUE", "'x'"),
    ),
    "show-missing-entry": Case(("ledger", "show", "999"), ("entry 999 does not exist",)),
    "prove-beyond-tree-size": Case(
        ("ledger", "prove", "5", "--size", "2"), ("entry 5 is not in a tree of size 2",)
    ),
    "before-init": Case(("models", "list"), ("run `mlgate init`",), home="absent"),
    "unreachable-store": Case(
        ("models", "list"), ("cannot connect", "127.0.0.1"), home="absent", store=UNREACHABLE
    ),
}


@dataclass(frozen=True)
class Outcome:
    result: Result
    before: dict[str, Any]
    after: dict[str, Any]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """Seed one installation, give each case a copy, run all cases side by side."""
    base = tmp_path_factory.mktemp("cli-errors")
    files = {
        "onnx_v1": write_onnx(base / "v1.onnx", 0.1),
        "onnx_v2": write_onnx(base / "v2.onnx", 0.9),
        "forest": write_forest(base / "forest.skops"),
        "text": base / "notes.txt",
        "truncated": base / "truncated.onnx",
        "missing": base / "missing.onnx",
        "bad_signature": base / "signature.json",
    }
    files["text"].write_text("these are not the weights you are looking for\n")
    files["truncated"].write_bytes(files["onnx_v1"].read_bytes()[:150])
    files["bad_signature"].write_text(
        '{"inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],'
        ' "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}]}'
    )

    seeded = Cli(home=base / "seeded" / "home", store=None, cwd=base)
    Workspace.init(seeded.settings)
    with Workspace.open(seeded.settings) as ws:
        ws.registry.register("fraud", files["onnx_v1"].read_bytes(), actor=ACTOR)
        ws.registry.move_alias("fraud", "champion", 1, actor=ACTOR)
        assert append_events(ws, 3) == 6
    before = snapshot(seeded.home)
    assert before["tables"]["ledger_entries"] and before["home"]

    def run(case_id: str) -> Outcome:
        case = CASES[case_id]
        folder = base / case_id
        home = folder / "home"
        if case.home == "seeded":
            shutil.copytree(seeded.home, home)
        else:
            folder.mkdir()
        cli = Cli(home=home, store=case.store, cwd=folder)
        initial = snapshot(home)
        result = cli.run(*(arg.format(**files) for arg in case.args))
        return Outcome(result, initial, snapshot(home))

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(run, CASES), strict=True))


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_one_clear_line_and_changes_nothing(
    case_id: str, outcomes: dict[str, Outcome]
) -> None:
    outcome = outcomes[case_id]
    assert_one_error_line(outcome.result, *CASES[case_id].fragments)
    assert outcome.after == outcome.before


@pytest.mark.postgres
def test_before_init_on_postgres_says_run_init(postgres_url: str, tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home", store=postgres_url, cwd=tmp_path)
    assert_one_error_line(cli.run("models", "list"), "run `mlgate init`")
    schema = postgres_url.rsplit("%3D", 1)[1]
    dsn = postgres_url.split("?", 1)[0].replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(dsn) as conn:
        count = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchone()
    assert count == (0,)
    assert not cli.home.exists()
