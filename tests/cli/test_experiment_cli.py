"""``mlgate experiment`` and ``mlgate canary`` end to end, through the real entry point
(:func:`mlgate.cli.app.main`, in-process) on a real workspace."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mlgate.experiments.stats import sample_size_mean, sample_size_proportion
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.spec import endpoint_from_json
from mlgate.workspace import Workspace
from tests.cli._in_process import Cli
from tests.models import linear_classifier, register

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)

DOCUMENT = {
    "kind": "mean",
    "difference": "relative",
    "method": "frequentist",
    "alpha": 0.05,
    "weights": {"control": 0.5, "treatment": 0.5},
    "variants": {
        "control": {"n": 3407, "sum": 1396.87, "sum_squares": 52377.97},
        "treatment": {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
    },
}
W = [[1.0, -1.0, 0.5], [0.5, 0.0, -0.5], [-1.0, 1.0, 0.0], [0.25, 0.25, -0.25]]


@pytest.fixture
def cli(workspace_cli: Cli) -> Cli:
    return workspace_cli


def test_analyze_prints_the_promised_shape(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "ab.json"
    path.write_text(json.dumps(DOCUMENT), encoding="utf-8")
    result = cli("experiment", "analyze", path, "--json")
    assert result.code == 0, result.stderr
    treatment = result.json()["results"]["treatment"]
    assert set(treatment) >= {"lift", "ci", "p_value", "srm_p_value"}
    control_mean, treatment_mean = 1396.87 / 3407, 2422.7 / 3461
    assert treatment["lift"] == pytest.approx(treatment_mean / control_mean - 1, rel=1e-12)
    table = cli("experiment", "analyze", path)
    assert table.code == 0 and "treatment" in table.stdout and "significant" in table.stdout


def test_bad_documents_give_one_clear_line(cli: Cli, tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "broken.json": "{not json",
        "negative.json": json.dumps(
            {**DOCUMENT, "variants": {"control": {"n": -3, "sum": 1, "sum_squares": 1}}}
        ),
        "weights.json": json.dumps({**DOCUMENT, "weights": {"control": 0.7, "treatment": 0.7}}),
        "huge.json": json.dumps(
            {**DOCUMENT, "variants": {**DOCUMENT["variants"], "control": {"n": 10**400}}}
        ),
        "many.json": json.dumps(
            {
                **{k: v for k, v in DOCUMENT.items() if k != "weights"},
                "variants": {f"v{i}": {"n": 10, "sum": 1, "sum_squares": 1} for i in range(25)},
            }
        ),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        result = cli("experiment", "analyze", path, "--json")
        assert result.code == 1, (name, result.stdout)
        if name == "many.json":
            assert "at most 20" in result.stderr
        assert result.stderr.startswith("error:") and "Traceback" not in result.stderr, name


def test_power_matches_the_library(cli: Cli) -> None:
    result = cli("experiment", "power", "--baseline", 0.1, "--mde", 0.1, "--json")
    assert result.code == 0, result.stderr
    assert result.json()["n_per_arm"] == sample_size_proportion(0.1, 0.1, relative=True)
    means = cli("experiment", "power", "--baseline", 10, "--sd", 4, "--mde", 0.5, "--absolute")
    assert means.code == 0, means.stderr
    assert f"{sample_size_mean(10, 4, 0.5):,}" in means.stdout


def test_replay_estimates_a_policy_on_a_uniform_log(cli: Cli, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    rates = {"a": 0.2, "b": 0.6}
    lines = []
    for _ in range(4_000):
        arm = str(rng.choice(["a", "b"]))
        lines.append(json.dumps({"arm": arm, "reward": float(rng.random() < rates[arm])}))
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli("experiment", "replay", path, "--policy", "ucb1", "--json")
    assert result.code == 0, result.stderr
    body = result.json()
    assert body["matched"] > 500 and body["total"] == 4_000
    assert 0.4 < body["mean_reward"] <= 0.6  # learns to play b, whose rate is 0.6
    missing = cli("experiment", "replay", path, "--policy", "linucb")
    assert missing.code == 1 and "--features" in missing.stderr


def test_canary_commands_drive_a_rollout(cli: Cli, workspace: Workspace) -> None:
    register(workspace, "iris", linear_classifier(W, [0.0, 0.0, 0.0]), champion=True)
    register(workspace, "iris", linear_classifier(W, [0.0, 0.0, 0.1]))
    endpoints = EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock)
    spec = endpoint_from_json({"name": "iris-ep", "model": "iris", "route": "champion"})
    endpoints.deploy(spec, actor="test")

    none = cli("canary", "status", "iris-ep")
    assert none.code == 1 and "never had a canary" in none.stderr
    started = cli("canary", "start", "iris-ep", "2", "--steps", "10,100", "--json")
    assert started.code == 0, started.stderr
    assert (started.json()["state"], started.json()["percent"]) == ("running", 10)
    deployed = endpoints.get("iris-ep")
    assert deployed is not None and deployed.spec.route.split is not None
    again = cli("canary", "start", "iris-ep", "2")
    assert again.code == 1 and "error:" in again.stderr
    paused = cli("canary", "pause", "iris-ep", "--json")
    assert paused.code == 0, paused.stderr
    assert paused.json()["state"] == "held"
    resumed = cli("canary", "resume", "iris-ep", "--json")
    assert resumed.json()["state"] == "running"
    listed = cli("canary", "status", "--json")
    assert [c["endpoint"] for c in listed.json()["canaries"]] == ["iris-ep"]
    shown = cli("canary", "status", "iris-ep")
    assert shown.code == 0 and "running" in shown.stdout
    aborted = cli("canary", "abort", "iris-ep", "--json")
    assert aborted.json()["state"] == "aborted"
    restored = endpoints.get("iris-ep")
    assert restored is not None and restored.spec.route.target == "champion"
    bad = cli("canary", "start", "iris-ep", "2", "--steps", "50,20")
    assert bad.code == 1 and "steps" in bad.stderr

    live = cli("experiment", "live", "iris-ep", "--json")
    assert live.code == 1 and "not by an experiment" in live.stderr
