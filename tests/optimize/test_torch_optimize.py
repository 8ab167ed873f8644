"""optimize_version on TorchScript parents: ONNX export, int8 on top, structured pruning."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mlgate.errors import ConversionError, OptimizeError
from mlgate.optimize import (
    TORCH_KINDS,
    PruneConfig,
    prune_torchscript,
)
from mlgate.registry.flavors import flavor_named
from mlgate.registry.flavors.torch import TRUST, save_torchscript
from mlgate.registry.signature import Signature, TensorSpec
from mlgate.workspace import Workspace
from tests.models import ACTOR
from tests.optimize.conftest import (
    WIDTH,
    Trained,
    _data,
    register_sklearn,
)
from tests.optimize.conftest import (
    rows_by_kind as _rows,
)
from tests.optimize.conftest import (
    run_optimize as _optimize,
)

SIGNATURE = Signature(
    inputs=(TensorSpec("input", "FP32", (-1, WIDTH)),),
    outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 2))),
)


class MLPClassifier(nn.Module):
    def __init__(self, hidden: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(WIDTH, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, 2),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.net(x), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities


class Normed(nn.Module):
    """Not MLP-shaped: a LayerNorm between the layers."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(WIDTH, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 2)
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.net(x), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities


class Unexportable(nn.Module):
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(torch.special.erfcx(x[:, :2]), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities


@pytest.fixture(scope="session")
def torch_mlp() -> Trained:
    x, y = _data(0)
    torch.manual_seed(0)
    model = MLPClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    features, targets = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(100):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model.net(features), targets).backward()
        optimizer.step()
    return Trained(model.eval(), x, y)


def _register(workspace: Workspace, module: nn.Module) -> bytes:
    data = save_torchscript(module, SIGNATURE)
    workspace.registry.register("m", data, actor=ACTOR, trusted_types=[TRUST])
    return data


def _labels(data: bytes, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    flavor = flavor_named("torch")
    inspection = flavor.inspect(data, trusted_types=[TRUST])
    return flavor.load(data, inspection).predict({"input": x})["label"]


def test_mlp_exported_quantized_and_pruned_all_servable(
    workspace: Workspace, torch_mlp: Trained
) -> None:
    parent_data = _register(workspace, torch_mlp.estimator)
    report = _optimize(workspace, torch_mlp)
    rows = _rows(report)
    assert set(rows) == {"parent", *TORCH_KINDS}
    onnx_row = rows["onnx"]
    assert onnx_row["status"] == "registered" and onnx_row["max_probability_diff"] <= 1e-4
    assert onnx_row["label_agreement"] == 1.0
    for kind in ("onnx-int8-dynamic", "onnx-int8-static"):
        assert rows[kind]["status"] in {"registered", "rejected"}
        assert rows[kind]["label_agreement"] is not None  # checked like any other variant
    pruned = rows["torch-pruned"]
    assert pruned["size_bytes"] < len(parent_data)
    assert pruned["status"] in {"registered", "rejected"}
    if pruned["status"] == "rejected":
        assert pruned["reasons"]
    parent = workspace.registry.get("m", 1)
    for row in rows.values():
        if row["status"] != "registered":
            continue
        version, loaded = workspace.registry.load("m", row["version"])
        assert version.signature == parent.signature  # an endpoint can route between them
        assert version.lineage.parent_version == 1
        assert version.tags == {"optimized_from": "1", "optimization": row["kind"]}
        assert loaded.predict({"input": torch_mlp.x[:5]})["label"].shape == (5,)
        if row["kind"] == "torch-pruned":
            assert version.flavor == "torch"
            assert version.flavor_metadata["parameters"] < parent.flavor_metadata["parameters"]
        else:
            assert version.flavor == "onnx"


def test_pruning_shrinks_layers_and_fine_tuning_recovers_agreement(torch_mlp: Trained) -> None:
    data = save_torchscript(torch_mlp.estimator, SIGNATURE)
    tune, judge = slice(0, 150), slice(150, None)
    parent = _labels(data, torch_mlp.x[judge])
    config = PruneConfig(prune_ratio=0.8)
    plain = prune_torchscript(data, SIGNATURE, config)
    tuned = prune_torchscript(
        data,
        SIGNATURE,
        PruneConfig(prune_ratio=0.8, fine_tune_epochs=20),
        torch_mlp.x[tune],
        torch_mlp.y[tune],
    )
    flavor = flavor_named("torch")
    counts = [
        flavor.inspect(d, trusted_types=[TRUST]).metadata["parameters"]
        for d in (data, plain, tuned)
    ]
    # 64 -> 13 neurons in both hidden layers: 8*13+13 + 13*13+13 + 13*2+2
    assert counts == [8 * 64 + 64 + 64 * 64 + 64 + 64 * 2 + 2, 327, 327]
    assert len(plain) < len(data)
    agree_plain = np.mean(_labels(plain, torch_mlp.x[judge]) == parent)
    agree_tuned = np.mean(_labels(tuned, torch_mlp.x[judge]) == parent)
    assert agree_tuned > agree_plain
    assert prune_torchscript(data, SIGNATURE, config) == plain  # deterministic


def test_fine_tuning_through_optimize_uses_the_holdout_split(
    workspace: Workspace, torch_mlp: Trained
) -> None:
    _register(workspace, torch_mlp.estimator)
    report = _optimize(
        workspace,
        torch_mlp,
        kinds=["torch-pruned"],
        prune_config=PruneConfig(prune_ratio=0.8, fine_tune_epochs=20),
    )
    assert report.holdout_rows == 450  # the first quarter tuned, the rest judged
    assert _rows(report)["torch-pruned"]["label_agreement"] >= 0.99
    with pytest.raises(OptimizeError, match="fine-tuning"):
        _optimize(
            workspace,
            torch_mlp,
            labels=None,
            kinds=["torch-pruned"],
            prune_config=PruneConfig(fine_tune_epochs=1),
        )


def test_non_mlp_module_skips_pruning_with_the_reason(workspace: Workspace) -> None:
    torch.manual_seed(0)
    _register(workspace, Normed().eval())
    x, y = _data(0)
    report = _optimize(workspace, Trained(None, x, y), kinds=["onnx", "torch-pruned"])
    skipped = {s.kind: s for s in report.skipped}
    assert skipped["torch-pruned"].status == "skipped"
    assert "not MLP-shaped" in skipped["torch-pruned"].reason
    assert "LayerNorm" in skipped["torch-pruned"].reason
    assert _rows(report)["onnx"]["status"] == "registered"


def test_sklearn_parent_skips_pruning(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    report = _optimize(workspace, mlp, kinds=["torch-pruned"])
    assert [(s.kind, s.status) for s in report.skipped] == [("torch-pruned", "skipped")]
    assert "PyTorch" in report.skipped[0].reason


def test_failed_export_is_a_conversion_error(workspace: Workspace) -> None:
    _register(workspace, Unexportable())
    x, y = _data(0)
    with pytest.raises(ConversionError, match="torch.onnx.export cannot export Unexportable"):
        _optimize(workspace, Trained(None, x, y))
    assert [v.version for v in workspace.registry.versions("m")] == [1]


def test_prune_ratio_is_checked() -> None:
    with pytest.raises(OptimizeError, match="between 0 and 1"):
        PruneConfig(prune_ratio=1.0)


def test_fine_tuning_skips_rows_with_missing_values(torch_mlp: Trained) -> None:
    data = save_torchscript(torch_mlp.estimator, SIGNATURE)
    rows = torch_mlp.x[:200].copy()
    rows[::7, 0] = np.nan  # one NaN row would turn every weight into NaN
    config = PruneConfig(prune_ratio=0.3, fine_tune_epochs=3)
    tuned = prune_torchscript(data, SIGNATURE, config, rows, torch_mlp.y[:200])
    flavor = flavor_named("torch")
    model = flavor.load(tuned, flavor.inspect(tuned, trusted_types=[TRUST]))
    probabilities = model.predict({"input": torch_mlp.x[:50]})["probabilities"]
    assert np.isfinite(probabilities).all()
    with pytest.raises(OptimizeError, match="every fine-tuning row"):
        prune_torchscript(data, SIGNATURE, config, np.full((10, WIDTH), np.nan), np.zeros(10))
