"""``mlgate lineage``: the chain as a tree and as JSON, errors as one line, tampering shown."""

from __future__ import annotations

import pytest

from mlgate.loop.frame import frame_to_bytes
from mlgate.loop.lineage import lineage_of_request, lineage_of_version
from mlgate.serving.feedback import FeedbackItem, record_feedback
from mlgate.workspace import Workspace
from tests.cli._in_process import Cli
from tests.loop.test_lineage import (
    LOOP,
    MODEL,
    RUN_KINDS,
    Chain,
    build_chain,
    log_predictions,
    overwrite,
    prediction,
    training_frame,
)


@pytest.fixture
def chain(workspace: Workspace) -> Chain:
    return build_chain(workspace)


def test_a_version_prints_the_chain_as_a_tree(workspace_cli: Cli, chain: Chain) -> None:
    run = workspace_cli("lineage", f"{MODEL}:champion")
    assert run.code == 0, run.stderr
    out = run.stdout
    assert f"{MODEL} v2 (champion)" in out
    assert f"training run {chain.run.id} of loop {LOOP}: promoted" in out
    assert "trigger: drift: feature f0 drifted (psi 0.31)" in out
    assert f"fingerprint {chain.frame.fingerprint()}" in out
    assert "code: builtin:sklearn" in out
    assert "commit 0123456789abcdef0123456789abcdef01234567 (dirty)" in out
    assert "params: C=0.5" in out and "metrics: accuracy=0.9" in out
    assert (
        "gate: gate passed: 1 of 1 checks passed" in out
        and "✓ gate.all_of[0]: accuracy 0.9 >= 0.8" in out
    )
    for kind in RUN_KINDS:
        assert kind in out
    assert "alias champion: v1 → v2" in out
    assert f"canary {chain.canary_id} on {MODEL}: v1 → v2" in out
    assert f"replaced {MODEL} v1" in out
    assert "registered by hand (no training run recorded)" in out
    assert "verification" not in out


def test_json_is_the_library_document(
    workspace_cli: Cli, workspace: Workspace, chain: Chain
) -> None:
    run = workspace_cli("lineage", f"{MODEL}:2", "--json")
    assert run.code == 0, run.stderr
    assert run.json() == lineage_of_version(workspace, MODEL, 2).to_json()


def test_a_request_walks_back_from_the_endpoint(
    workspace_cli: Cli, workspace: Workspace, chain: Chain
) -> None:
    log_predictions(workspace, [prediction("req-1", "2"), prediction("req-2", "-", status="error")])
    items = [FeedbackItem("req-1", label=1, reward=0.5)]
    record_feedback(workspace.store, MODEL, items, workspace.clock)
    run = workspace_cli("lineage", MODEL, "--request", "req-1", "--json")
    assert run.code == 0, run.stderr
    assert run.json() == lineage_of_request(workspace, MODEL, "req-1").to_json()
    tree = workspace_cli("lineage", MODEL, "--request", "req-1")
    assert tree.code == 0, tree.stderr
    assert f"request req-1 on endpoint {MODEL} (model {MODEL})" in tree.stdout
    assert "answered" in tree.stdout and f"training run {chain.run.id}" in tree.stdout
    assert ": label 1, reward 0.5" in tree.stdout
    failed = workspace_cli("lineage", MODEL, "--request", "req-2")
    assert failed.code == 0, failed.stderr
    assert "request error: no model answered" in failed.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((f"{MODEL}:9",), "no lineage for churn:9: churn has no version 9"),
        ((MODEL,), "TARGET must be MODEL:VERSION"),
        ((f"{MODEL}:",), "TARGET must be MODEL:VERSION"),
        ((f"{MODEL}:2", "--request", "req-1"), "with --request, TARGET is the endpoint"),
        ((MODEL, "--request", "nope"), "no prediction with request id 'nope' on endpoint"),
    ],
)
def test_errors_are_one_line(
    workspace_cli: Cli, chain: Chain, args: tuple[str, ...], message: str
) -> None:
    run = workspace_cli("lineage", *args)
    assert run.code == 1
    assert run.stderr.startswith("error: ") and message in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_verify_is_ok_on_an_honest_store(workspace_cli: Cli, chain: Chain) -> None:
    run = workspace_cli("lineage", f"{MODEL}:2", "--verify")
    assert run.code == 0, run.stderr
    assert run.stdout.count("verification: ok") == 2  # the version and the one it replaced
    assert "MISMATCH" not in run.stdout


def test_verify_shows_tampering_and_exits_1(
    workspace_cli: Cli, workspace: Workspace, chain: Chain
) -> None:
    overwrite(workspace.artifacts.path_for(chain.frame_sha256), frame_to_bytes(training_frame(7)))
    run = workspace_cli("lineage", f"{MODEL}:2", "--verify")
    assert run.code == 1
    assert "verification: 1 MISMATCH" in run.stdout
    assert "✗ dataset fingerprint: mismatch" in run.stdout
    assert "was altered" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr and run.stderr == ""
    as_json = workspace_cli("lineage", f"{MODEL}:2", "--verify", "--json")
    assert as_json.code == 1
    results = {c["check"]: c["result"] for c in as_json.json()["verification"]}
    assert results["dataset fingerprint"] == "mismatch" and results["artifact"] == "ok"
