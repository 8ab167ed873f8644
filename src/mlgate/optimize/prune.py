"""Structured pruning of MLP-shaped TorchScript models, with an optional fine-tuning pass.

A model is MLP-shaped when a module (the root, or the root's only child with parameters,
the root holding none itself) has children that are all ``nn.Linear`` layers and
elementwise activations, with at least two Linear layers whose widths chain. Each hidden
layer keeps the ``1 - prune_ratio`` share of its neurons whose incoming weights have the
largest L2 norm (magnitude-based structured pruning, as in Li et al. 2017, "Pruning
Filters for Efficient ConvNets", applied to neurons); the layer's rows and the next
layer's columns are cut, so the saved model really has fewer parameters. The input and
output widths never change, so the module's own ``forward`` (a softmax/argmax head, say)
keeps working on the smaller layers, which are swapped into the loaded TorchScript module.

Fine-tuning (``fine_tune_epochs`` > 0) trains the pruned model on labelled rows with Adam
at a fixed seed: cross-entropy on the ``probabilities`` output for classifiers, MSE on
``prediction`` for regressors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.errors import OptimizeError
from mlgate.optimize.torch_export import load_torchscript, require_torch
from mlgate.registry.flavors.torch import named_outputs, save_torchscript
from mlgate.registry.signature import Signature, numpy_dtype

__all__ = ["TORCH_PRUNED", "PruneConfig", "mlp_layers", "prune_torchscript", "skip_reason"]

TORCH_PRUNED = "torch-pruned"
# Activations that act on each neuron alone, so dropping a neuron drops just its value.
_ELEMENTWISE = frozenset(
    {
        "ReLU",
        "ReLU6",
        "LeakyReLU",
        "ELU",
        "SELU",
        "CELU",
        "GELU",
        "SiLU",
        "Mish",
        "Sigmoid",
        "Tanh",
        "Hardtanh",
        "Hardsigmoid",
        "Hardswish",
        "Softplus",
        "Identity",
        "Dropout",
    }
)


@dataclass(frozen=True)
class PruneConfig:
    """How much to prune and whether to fine-tune afterwards."""

    prune_ratio: float = 0.3
    fine_tune_epochs: int = 0
    learning_rate: float = 1e-3
    batch_size: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.prune_ratio < 1:
            raise OptimizeError(
                f"prune_ratio is the share of each hidden layer's neurons to remove, between "
                f"0 and 1 (exclusive); got {self.prune_ratio}"
            )
        if self.fine_tune_epochs < 0 or self.batch_size < 1 or not self.learning_rate > 0:
            raise OptimizeError(
                f"fine_tune_epochs must be >= 0, batch_size >= 1 and learning_rate > 0; got "
                f"{self.fine_tune_epochs}, {self.batch_size}, {self.learning_rate}"
            )


def _kind(module: Any) -> str:
    return str(getattr(module, "original_name", type(module).__name__))


def mlp_layers(module: Any) -> list[Any] | str:
    """The Linear layers of an MLP-shaped module, in order, or why it is not one."""
    candidates = [module]
    with_params = [c for c in module.children() if any(True for _ in c.parameters())]
    own = sum(p.numel() for p in module.parameters()) - sum(
        p.numel() for c in with_params for p in c.parameters()
    )
    if len(with_params) == 1 and own == 0:
        candidates.append(with_params[0])
    reasons = []
    for candidate in candidates:
        children = list(candidate.children())
        others = sorted({_kind(c) for c in children if _kind(c) not in _ELEMENTWISE | {"Linear"}})
        linears = [c for c in children if _kind(c) == "Linear"]
        if others:
            reasons.append(f"{_kind(candidate)} holds {', '.join(others)}")
            continue
        if len(linears) < 2:
            reasons.append(f"{_kind(candidate)} has {len(linears)} Linear layer(s)")
            continue
        widths = [(c.weight.shape[1], c.weight.shape[0]) for c in linears]
        if any(a[1] != b[0] for a, b in zip(widths, widths[1:], strict=False)):
            reasons.append(f"{_kind(candidate)}'s Linear widths {widths} do not chain")
            continue
        return linears
    return (
        "not MLP-shaped (a module whose children are only Linear layers and elementwise "
        f"activations, with a hidden layer): {'; '.join(reasons)}"
    )


def skip_reason(flavor: str, data: bytes) -> str | None:
    """Why pruning does not apply to this parent, or None when it does."""
    if flavor != "torch":
        return f"structured pruning applies to PyTorch (torch flavor) models, not {flavor!r} ones"
    found = mlp_layers(load_torchscript(data))
    return found if isinstance(found, str) else None


def prune_torchscript(
    data: bytes,
    signature: Signature,
    config: PruneConfig,
    rows: np.ndarray[Any, Any] | None = None,
    labels: np.ndarray[Any, Any] | None = None,
) -> bytes:
    """Prune the archive's hidden neurons (and fine-tune on ``rows``/``labels``); new bytes."""
    torch = require_torch()
    module = load_torchscript(data)
    layers = mlp_layers(module)
    if isinstance(layers, str):
        raise OptimizeError(f"cannot prune: the model is {layers}")
    with torch.no_grad():
        for layer, following in zip(layers, layers[1:], strict=False):
            weight = layer.weight
            count = weight.shape[0]
            keep_count = max(1, count - int(count * config.prune_ratio))
            norms = weight.norm(dim=1)
            keep = torch.sort(torch.topk(norms, keep_count).indices).values
            layer.weight = torch.nn.Parameter(weight[keep].clone())
            if layer.bias is not None:
                layer.bias = torch.nn.Parameter(layer.bias[keep].clone())
            following.weight = torch.nn.Parameter(following.weight[:, keep].clone())
    if config.fine_tune_epochs:
        if rows is None or labels is None:
            raise OptimizeError(
                "fine-tuning a pruned model needs labelled holdout rows; pass labels "
                "(--label-column) or set fine_tune_epochs to 0"
            )
        rows, labels = _complete(rows, labels)
        _fine_tune(torch, module, signature, rows, labels, config)
    module.eval()
    return save_torchscript(module, signature)


def _complete(
    rows: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Rows (and labels) without missing values: one NaN makes every weight NaN."""
    ok = np.isfinite(np.asarray(rows, dtype=np.float64)).all(axis=1)
    truth = np.asarray(labels)
    if truth.dtype.kind == "f":
        ok &= np.isfinite(truth)
    if not ok.any():
        raise OptimizeError(
            "every fine-tuning row has a missing or infinite value (or label); impute them, "
            "or set fine_tune_epochs to 0"
        )
    return rows[ok], truth[ok]


def _fine_tune(
    torch: Any,
    module: Any,
    signature: Signature,
    rows: np.ndarray[Any, Any],
    labels: np.ndarray[Any, Any],
    config: PruneConfig,
) -> None:
    names = {spec.name for spec in signature.outputs}
    spec = signature.inputs[0]
    x = torch.from_numpy(np.ascontiguousarray(rows, dtype=numpy_dtype(spec.datatype)))
    if "probabilities" in names:
        width = next(s.shape[1] for s in signature.outputs if s.name == "probabilities")
        truth = np.asarray(labels)
        known = np.isin(truth, np.arange(width)) if truth.dtype.kind in "iuf" else None
        if known is None or not known.any():
            raise OptimizeError(
                "fine-tuning a classifier needs labels that are class indices 0..k-1 of its "
                "probabilities; pass those labels"
            )
        x, y = x[torch.from_numpy(known)], torch.from_numpy(truth[known].astype(np.int64))

        def loss(out: dict[str, Any], target: Any) -> Any:
            return torch.nn.functional.nll_loss(
                torch.log(out["probabilities"].clamp_min(1e-12)), target
            )

    elif "prediction" in names:
        y = torch.from_numpy(np.asarray(labels, dtype=np.float32))

        def loss(out: dict[str, Any], target: Any) -> Any:
            prediction = out["prediction"].to(torch.float32).reshape(target.shape)
            return torch.nn.functional.mse_loss(prediction, target)

    else:
        raise OptimizeError(
            f"fine-tuning needs a 'probabilities' (classifier) or 'prediction' (regressor) "
            f"output; the signature has {sorted(names)}"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        optimizer = torch.optim.Adam(module.parameters(), lr=config.learning_rate)
        module.train()
        for _ in range(config.fine_tune_epochs):
            order = torch.randperm(len(x))
            for start in range(0, len(x), config.batch_size):
                batch = order[start : start + config.batch_size]
                optimizer.zero_grad()
                value = loss(named_outputs(signature, module(x[batch])), y[batch])
                value.backward()
                optimizer.step()
