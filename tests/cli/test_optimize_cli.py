"""``mlgate optimize`` end to end through the real entry point: a registered scikit-learn
model, a holdout file, variants registered with lineage and servable beside the parent."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.spec import endpoint_from_json
from mlgate.workspace import Workspace
from tests.cli._in_process import Cli
from tests.models import ACTOR

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
PROMISED = {"version", "kind", "size_bytes", "p50_us", "rows_per_s", "accuracy_delta"}


@pytest.fixture
def cli(workspace_cli: Cli) -> Cli:
    return workspace_cli


def _mlp(workspace: Workspace, tmp_path: Path) -> Path:
    import skops.io
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=400)
    x = rng.normal(size=(400, 6)) + np.where(y[:, None] == 1, 1.5, -1.5) * (np.arange(6) < 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPClassifier((32, 16), max_iter=30, random_state=0).fit(x, y)
    data = skops.io.dumps(model)
    trusted = sorted(skops.io.get_untrusted_types(data=data))
    workspace.registry.register("mlp", data, actor=ACTOR, trusted_types=trusted)
    holdout = tmp_path / "holdout.csv"
    columns = {f"f{i}": x[:200, i] for i in range(6)}
    pacsv.write_csv(pa.table({**columns, "y": y[:200]}), holdout)
    return holdout


def test_optimize_registers_checked_variants_with_lineage(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    holdout = _mlp(workspace, tmp_path)
    result = cli("optimize", "mlp:1", "--holdout", holdout, "--label-column", "y", "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    rows = report["variants"]
    assert rows[0]["kind"] == "parent" and rows[0]["version"] == 1
    assert all(PROMISED <= set(row) for row in rows)
    assert all(row["size_bytes"] > 0 and row["p50_us"] > 0 for row in rows)
    registered = [row for row in rows if row["status"] == "registered"]
    assert any(row["kind"] == "onnx" for row in registered)
    for row in registered:
        version = workspace.registry.get("mlp", row["version"])
        assert (version.flavor, version.lineage.parent_version) == ("onnx", 1)
        assert abs(row["accuracy_delta"]) <= 0.01
    # A registered variant serves beside its parent: same inputs, so a split is allowed.
    onnx_version = next(row["version"] for row in registered if row["kind"] == "onnx")
    spec = endpoint_from_json(
        {
            "name": "mlp-ab",
            "model": "mlp",
            "route": {
                "split": {
                    "variants": [
                        {"target": 1, "weight": 50},
                        {"target": onnx_version, "weight": 50},
                    ]
                }
            },
        }
    )
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor=ACTOR
    )
    table = cli("optimize", "mlp:1", "--holdout", holdout, "--label-column", "y", "--kinds", "onnx")
    assert table.code == 0, table.stderr
    assert "existing" in table.stdout and "ledgered" in table.stdout


def test_optimize_refusals_are_one_clear_line(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    holdout = _mlp(workspace, tmp_path)
    wrong = tmp_path / "wrong.csv"
    pacsv.write_csv(pa.table({"a": [1.0, 2.0]}), wrong)
    cases = [
        (("optimize", "mlp", "--holdout", holdout), "MODEL:VERSION"),
        (("optimize", "mlp:1", "--holdout", holdout), "has shape (200, 7)"),  # y is a feature
        (("optimize", "mlp:1", "--holdout", holdout, "--kinds", "onnx,turbo"), "turbo"),
        (("optimize", "mlp:1", "--holdout", tmp_path / "missing.csv"), "missing.csv"),
        (("optimize", "mlp:1", "--holdout", wrong), "column"),
        (("optimize", "nope:1", "--holdout", holdout), "nope"),
        (("optimize", "mlp:1", "--holdout", holdout, "--min-agreement", "1.5"), "1.5"),
    ]
    for args, fragment in cases:
        result = cli(*args)
        assert result.code == 1, (args, result.stdout)
        assert result.stderr.startswith("error:") and fragment in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_named_features_are_read_by_name_not_position(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    import pandas as pd
    import skops.io
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(400, 4)) * [1.0, 5.0, 0.2, 3.0], columns=list("abcd"))
    y = (frame["a"] - frame["b"] / 5 + frame["d"] / 3 > 0).astype(int)
    model = LogisticRegression().fit(frame, y)
    data = skops.io.dumps(model)
    trusted = sorted(skops.io.get_untrusted_types(data=data))
    workspace.registry.register("named", data, actor=ACTOR, trusted_types=trusted)
    # The holdout's columns come in another order, with the label in the middle and a
    # column the model never saw: read by position, it would not even have the width.
    holdout = tmp_path / "named.csv"
    columns = {name: frame[name].to_numpy()[:200] for name in "dcba"}
    table = {"d": columns["d"], "y": y.to_numpy()[:200], **columns, "extra": columns["a"]}
    pacsv.write_csv(pa.table(table), holdout)
    result = cli(
        "optimize", "named:1", "--holdout", holdout, "--label-column", "y", "--kinds", "onnx",
        "--calibration", holdout, "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    rows = {row["kind"]: row for row in result.json()["variants"]}
    assert rows["onnx"]["label_agreement"] == 1.0
    assert rows["onnx"]["accuracy_delta"] == 0.0
    # The registered variant answers like the model does on correctly named columns.
    _, loaded = workspace.registry.load("named", rows["onnx"]["version"])
    answers = loaded.predict({"input": frame.to_numpy()[:50]})
    np.testing.assert_array_equal(answers["label"], model.predict(frame.iloc[:50]))


def test_a_tolerance_from_the_command_line_rejects_a_variant(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    holdout = _mlp(workspace, tmp_path)
    result = cli(
        "optimize", "mlp:1", "--holdout", holdout, "--label-column", "y",
        "--kinds", "onnx-int8-dynamic", "--max-prob-diff", "1e-9", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (row,) = [r for r in result.json()["variants"] if r["kind"] == "onnx-int8-dynamic"]
    assert row["status"] == "rejected" and row["version"] is None
    assert any("probabilit" in reason for reason in row["reasons"])
    assert [v.version for v in workspace.registry.versions("mlp")] == [1]


def test_a_torch_parent_gets_the_torch_kinds_and_the_pruning_flags(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    import torch

    from tests.optimize.test_torch_optimize import MLPClassifier, _register

    torch.manual_seed(0)
    _register(workspace, MLPClassifier(hidden=16).eval())  # model "m", 8 features
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 8))
    holdout = tmp_path / "torch.csv"
    table = {f"f{i}": x[:, i] for i in range(8)}
    pacsv.write_csv(pa.table({**table, "y": rng.integers(0, 2, size=200)}), holdout)
    result = cli(
        "optimize", "m:1", "--holdout", holdout, "--label-column", "y",
        "--prune-ratio", "0.25", "--fine-tune-epochs", "2", "--json",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    kinds = {row["kind"] for row in result.json()["variants"]}
    assert {"parent", "onnx", "torch-pruned"} <= kinds
    bad = cli("optimize", "m:1", "--holdout", holdout, "--label-column", "y", "--prune-ratio", "1")
    assert bad.code == 1 and "prune_ratio" in bad.stderr
