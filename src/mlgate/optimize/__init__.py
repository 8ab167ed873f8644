"""Inference optimization: cheaper variants of a registered model, with its answers held.

``optimize_version`` converts a scikit-learn version to ONNX (skl2onnx), derives int8
(dynamic, static QDQ) and float16 variants with onnxruntime, compares each with the parent
on a holdout (its labels checked against the parent first), measures size, single-row p50
and batch throughput through mlgate's runtime, registers the variants within tolerance
(:mod:`~mlgate.optimize.tolerance`) as new versions linked to the parent, and ledgers
the report. PyTorch (TorchScript) versions are exported with ``torch.onnx.export`` and
can be pruned (:mod:`~mlgate.optimize.prune`). Needs the ``optimize`` extra (``pip install
'mlgate[optimize]'``), and for PyTorch models the ``torch`` extra.
"""

from __future__ import annotations

from mlgate.optimize.compare import Comparison, compare_outputs
from mlgate.optimize.convert import dedupe_opsets, sklearn_to_onnx
from mlgate.optimize.labels import check_labels
from mlgate.optimize.measure import MeasureConfig, Measurement, measure_model
from mlgate.optimize.prune import TORCH_PRUNED, PruneConfig, prune_torchscript
from mlgate.optimize.report import OptimizeReport, SkippedKind, VariantResult
from mlgate.optimize.sample import check_sample, load_sample
from mlgate.optimize.service import (
    BUILDERS,
    DEFAULT_KINDS,
    OPTIMIZED_EVENT,
    TORCH_KINDS,
    BuildInput,
    VariantBuilder,
    optimize_version,
)
from mlgate.optimize.tolerance import EXACT, Tolerance, Tolerances
from mlgate.optimize.torch_export import torch_to_onnx

__all__ = [
    "BUILDERS",
    "DEFAULT_KINDS",
    "EXACT",
    "OPTIMIZED_EVENT",
    "TORCH_KINDS",
    "TORCH_PRUNED",
    "BuildInput",
    "Comparison",
    "MeasureConfig",
    "Measurement",
    "OptimizeReport",
    "PruneConfig",
    "SkippedKind",
    "Tolerance",
    "Tolerances",
    "VariantBuilder",
    "VariantResult",
    "check_labels",
    "check_sample",
    "compare_outputs",
    "dedupe_opsets",
    "load_sample",
    "measure_model",
    "optimize_version",
    "prune_torchscript",
    "sklearn_to_onnx",
    "torch_to_onnx",
]
