"""``mlgate loop``: runs, show, trigger and bad loop files through the real entry point
(in-process), and the real ``mlgate loop run`` process killed with SIGKILL mid-run and
started again, then approved and denied (subprocesses, as an operator runs them).
"""

from __future__ import annotations

import copy
import csv
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from mlgate.config import Settings
from mlgate.experiments.canary import CanaryController
from mlgate.loop.config import load_loop_config
from mlgate.loop.runner import LoopRunner
from mlgate.loop.runs import LoopRun, RunState, RunStore
from mlgate.loop.synthetic import SyntheticWorld
from mlgate.store.schema import model_versions
from mlgate.workspace import Workspace
from tests.cli._in_process import Cli, Run
from tests.cli.conftest import workspace_cli  # noqa: F401  (the in-process CLI fixture)
from tests.cli.test_cli import MLGATE
from tests.cli.test_cli import Cli as Installed
from tests.loop.conftest import BASE_LOOP, ENDPOINT, records
from tests.loop.test_runner import step_until
from tests.loop.test_runner_failures import run_kinds


def write_loop(path: Path, **overrides: Any) -> Path:
    data = copy.deepcopy(BASE_LOOP)
    data.update(overrides)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def assert_one_error_line(run: Run, *fragments: str) -> None:
    assert run.code == 1, run
    assert "Traceback" not in run.stdout + run.stderr, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], run


# -- 7. runs, show, trigger -----------------------------------------------------------


def test_trigger_then_runs_and_show(
    workspace: Workspace,
    workspace_cli: Cli,  # noqa: F811
    tmp_path: Path,
) -> None:
    loop_file = write_loop(tmp_path / "loop.yaml")

    fired = workspace_cli("loop", "trigger", loop_file, "--reason", "new labels are in")
    assert fired.code == 0, fired
    assert fired.stdout.strip() == "fired: manual trigger"
    suppressed = workspace_cli("loop", "trigger", loop_file)
    assert suppressed.code == 1, suppressed
    assert "suppressed: run 1 is still active: one run at a time" in suppressed.stdout

    runs = RunStore(workspace.store, workspace.log, workspace.clock)
    runs.advance(runs.get(1), RunState.FAILED, actor="test", changes={"error": "labels late"})
    assert workspace_cli("loop", "trigger", loop_file).code == 0  # not stuck

    listed = workspace_cli("loop", "runs", "--json")
    assert listed.code == 0, listed
    assert [(r["id"], r["state"], r["trigger"]["kind"]) for r in listed.json()] == [
        (2, "triggered", "manual"),
        (1, "failed", "manual"),
    ]
    table = workspace_cli("loop", "runs", "risk-loop", "--limit", "1")
    assert table.code == 0, table
    assert "risk-loop" in table.stdout and "triggered" in table.stdout
    assert "failed" not in table.stdout  # --limit 1: the newest only
    assert workspace_cli("loop", "runs", "another-loop", "--json").json() == []
    old = workspace_cli("loop", "runs", "risk-loop")
    assert "labels late" in old.stdout and "failed" in old.stdout

    shown = workspace_cli("loop", "show", "1")
    assert shown.code == 0, shown
    document = shown.json()
    assert document["state"] == "failed" and document["error"] == "labels late"
    assert document["trigger"]["reason"] == "new labels are in"
    assert document == listed.json()[1]
    assert_one_error_line(workspace_cli("loop", "show", "99"), "there is no loop run 99")
    assert run_kinds(workspace, runs.get(1)) == ["loop.triggered", "loop.failed"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: risk-loop\nendpoint: [unclosed\n", "is not valid YAML"),
        ("- a\n- list\n", "the loop file must be a mapping, got list"),
        ("{name: l, endpoint: risk, features: [x0], frobnicate: 1}", "unknown keys ['frobnicate']"),
        ("{name: l, endpoint: risk, features: []}", "features must name at least one column"),
        (
            "{name: l, endpoint: risk, features: [x0], training: {trainer: 'builtin:sklearn'}}",
            "training.estimator: the built-in trainer needs one of",
        ),
        (
            "{name: l, endpoint: risk, features: [x0], task: ranking}",
            "task must be classification or regression",
        ),
    ],
    ids=["yaml", "not_a_mapping", "unknown_key", "no_features", "no_estimator", "task"],
)
@pytest.mark.parametrize("command", ["trigger", "run"])
def test_a_bad_loop_file_is_one_error_line(
    workspace: Workspace,
    workspace_cli: Cli,  # noqa: F811
    tmp_path: Path,
    text: str,
    fragment: str,
    command: str,
) -> None:
    loop_file = tmp_path / "loop.yaml"
    loop_file.write_text(text, encoding="utf-8")
    assert_one_error_line(workspace_cli("loop", command, loop_file), fragment)
    assert RunStore(workspace.store, workspace.log, workspace.clock).list() == []


# -- 5. the real process, killed and started again ------------------------------------


def _wait_for(
    what: str, done: Callable[[], LoopRun | None], process: subprocess.Popen[bytes], log: Path
) -> LoopRun:
    deadline = time.monotonic() + 300  # generous: two shared cores; not a timing assertion
    while time.monotonic() < deadline:
        found = done()
        if found is not None:
            return found
        if process.poll() is not None:
            raise AssertionError(
                f"the loop exited ({process.returncode}) before {what}:\n"
                + log.read_text(encoding="utf-8")
            )
        time.sleep(0.05)
    raise AssertionError(f"no {what} within 300 s:\n" + log.read_text(encoding="utf-8"))


@pytest.mark.slow
def test_a_killed_loop_process_resumes_its_run_then_approve_and_deny(
    workspace: Workspace, champion: int, settings: Settings, tmp_path: Path
) -> None:
    world = SyntheticWorld(seed=31)
    rows = records(world, 400, "before", start=0) + records(world, 800, "after", start=400)
    with (tmp_path / "records.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    loop_file = write_loop(
        tmp_path / "loop.yaml",
        # 500 a step: the drift is seen in the second, when the newest 600 rows (the
        # training window) are all from after it.
        source={"kind": "file", "path": "records.csv", "batch_size": 500},
        promotion={**BASE_LOOP["promotion"], "approval": True},
        # The file is read whole in a few steps: train on the window, not only on what
        # arrives after the trigger (there is nothing after it).
        training={**BASE_LOOP["training"], "since_trigger": False},
    )
    cli = Installed(home=settings.home, store=settings.store_url, cwd=tmp_path)
    runs = RunStore(workspace.store, workspace.log, workspace.clock)

    def newest(*states: RunState) -> LoopRun | None:
        found = runs.list("risk-loop", limit=1)
        if found and not found[0].active:
            raise AssertionError(f"run {found[0].id} ended {found[0].state}: {found[0].to_json()}")
        return found[0] if found and found[0].state in states else None

    def start(log: Path) -> subprocess.Popen[bytes]:
        command = [str(MLGATE), "loop", "run", str(loop_file), "--poll-interval", "0.1"]
        with log.open("wb") as out:
            return subprocess.Popen(
                command, cwd=tmp_path, env=cli.env(), stdout=out, stderr=subprocess.STDOUT
            )

    first = start(tmp_path / "first.log")
    try:
        seen = _wait_for(
            "training",
            lambda: newest(RunState.TRAINING, RunState.GATING),
            first,
            tmp_path / "first.log",
        )
    finally:
        first.kill()  # SIGKILL: no handler runs, no transaction is finished
        first.wait(60)
    second = start(tmp_path / "second.log")
    try:
        run = _wait_for(
            "approval", lambda: newest(RunState.AWAITING_APPROVAL), second, tmp_path / "second.log"
        )
    finally:
        second.terminate()  # SIGTERM: the loop stops after its step
        second.wait(60)

    assert run.id == seen.id and run.data is not None
    assert run.data["fingerprint"] == (seen.data or {})["fingerprint"]
    with workspace.store.read() as conn:
        registered = conn.execute(
            sa.select(sa.func.count()).where(model_versions.c.sha256 == run.artifact_sha256)
        ).scalar_one()
    assert registered == 1
    kinds = Counter(run_kinds(workspace, run))
    assert kinds == Counter(
        [
            "loop.triggered",
            "loop.data_checked",
            "loop.trained",
            "loop.gated",
            "loop.registered",
            "loop.approval_wanted",
        ]
    ), kinds
    assert workspace.verify().size > 0

    approved = cli.run("loop", "approve", loop_file, str(run.id))
    assert approved.code == 0, approved
    after = runs.get(run.id)
    assert after.state == RunState.CANARY and f"canary {after.canary_id} started" in approved.out

    # Another run waits for approval: the canary is aborted, the next run is denied.
    CanaryController.from_workspace(workspace).abort(ENDPOINT, actor="test:operator")
    runner = LoopRunner(workspace, load_loop_config(loop_file))
    step_until(runner, lambda: runs.get(run.id).state == RunState.ROLLED_BACK)
    assert runner.trigger("again").fire
    step_until(runner, lambda: newest(RunState.AWAITING_APPROVAL) is not None)
    waiting = runs.list("risk-loop", limit=1)[0]
    denied = cli.run("loop", "deny", loop_file, str(waiting.id), "--reason", "not this week")
    assert denied.code == 0, denied
    assert runs.get(waiting.id).state == RunState.REJECTED
    assert runs.get(waiting.id).error == "denied: not this week"
    assert workspace.verify().size > 0
