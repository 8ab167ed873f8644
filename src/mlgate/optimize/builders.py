"""The variant kinds ``optimize`` can build: a table of builders keyed by kind name.

This is the registry that every kind joins: the ONNX kinds (the plain conversion, int8
dynamic and static, float16) for scikit-learn and PyTorch parents alike, PyTorch pruning
(``torch-pruned``), and whatever kinds come next. A kind is a :class:`VariantBuilder`:
how to build its bytes from a :class:`BuildInput`, why it would not apply to a given
parent, whether it needs calibration or tuning rows, and the flavor its bytes are served
as. :mod:`~mlgate.optimize.service` only orchestrates (build, compare, measure, register,
ledger) over whichever table it is passed, so a new kind is a row here, not a change there.
The table is fixed at import, like the registry's flavors, and passed in (``builders=``).

What the builders share lives here too: the parent's plain ONNX form (skl2onnx, or
``torch.onnx.export`` for a TorchScript parent), the check that the parent's outputs can
be compared, and the rows set aside for static int8's calibration and pruning's
fine-tuning. Without a calibration sample, static int8 calibrates on the holdout's rows
without missing values; judged on the rows it was calibrated (or tuned) on, a variant would
look better than it is, so a holdout of :data:`SPLIT_HOLDOUT_ROWS` rows or more is split:
calibration and fine-tuning on its first quarter, every comparison (the parent's metrics
included) on the rest. A smaller holdout is used for both, and that judgement is optimistic.
Calibration uses at most :data:`MAX_CALIBRATION_ROWS` rows, checked only when a calibrated
kind is built.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mlgate.errors import OptimizeError
from mlgate.optimize import prune, quantize
from mlgate.optimize.convert import sklearn_to_onnx
from mlgate.optimize.prune import PruneConfig
from mlgate.optimize.report import SkippedKind
from mlgate.optimize.sample import check_sample
from mlgate.optimize.torch_export import load_torchscript, torch_to_onnx
from mlgate.registry.flavors import LoadedModel
from mlgate.registry.records import ModelVersion

__all__ = [
    "BUILDERS",
    "DEFAULT_KINDS",
    "FLAVORS_OPTIMIZED",
    "MAX_CALIBRATION_ROWS",
    "ONNX",
    "SPLIT_HOLDOUT_ROWS",
    "TORCH_KINDS",
    "BuildInput",
    "VariantBuilder",
    "calibration_sample",
    "check_comparable",
    "held_rows",
    "parent_onnx",
    "plan_kinds",
]

logger = logging.getLogger(__name__)

ONNX = "onnx"
MAX_CALIBRATION_ROWS = 1_000
SPLIT_HOLDOUT_ROWS = 400
FLAVORS_OPTIMIZED = ("sklearn", "torch")


@dataclass(frozen=True)
class BuildInput:
    """What a builder may use: the parent (and its bytes), its plain ONNX form, the
    calibration rows, and the labelled rows and settings for pruning and fine-tuning."""

    parent: ModelVersion
    onnx: bytes
    calibration: np.ndarray[Any, Any] | None
    parent_data: bytes = b""
    tuning_rows: np.ndarray[Any, Any] | None = None
    tuning_labels: np.ndarray[Any, Any] | None = None
    prune: PruneConfig = PruneConfig()


@dataclass(frozen=True)
class VariantBuilder:
    kind: str
    build: Callable[[BuildInput], bytes]
    # Why the kind would not change this model (None: it applies).
    skip: Callable[[BuildInput], str | None] = lambda _: None
    # Whether ``build`` needs ``BuildInput.calibration``.
    calibrated: bool = False
    # Whether ``build`` trains on ``BuildInput.tuning_rows`` when fine-tuning is asked for.
    tuned: bool = False
    # The flavor the built bytes are registered and served as.
    flavor: str = "onnx"


def _static(source: BuildInput) -> bytes:
    if source.calibration is None:
        raise OptimizeError("static int8 needs calibration rows; none were prepared")
    return quantize.quantize_static_int8(source.onnx, source.parent.signature, source.calibration)


BUILDERS: Mapping[str, VariantBuilder] = MappingProxyType(
    {
        ONNX: VariantBuilder(ONNX, lambda s: s.onnx),
        quantize.INT8_DYNAMIC: VariantBuilder(
            quantize.INT8_DYNAMIC,
            lambda s: quantize.quantize_dynamic_int8(s.onnx),
            lambda s: quantize.skip_reason(s.onnx, quantize.INT8_DYNAMIC),
        ),
        quantize.INT8_STATIC: VariantBuilder(
            quantize.INT8_STATIC,
            _static,
            lambda s: quantize.skip_reason(s.onnx, quantize.INT8_STATIC),
            calibrated=True,
        ),
        quantize.FLOAT16: VariantBuilder(
            quantize.FLOAT16,
            lambda s: quantize.to_float16(s.onnx),
            lambda s: quantize.skip_reason(s.onnx, quantize.FLOAT16),
        ),
        prune.TORCH_PRUNED: VariantBuilder(
            prune.TORCH_PRUNED,
            lambda s: prune.prune_torchscript(
                s.parent_data, s.parent.signature, s.prune, s.tuning_rows, s.tuning_labels
            ),
            lambda s: prune.skip_reason(s.parent.flavor, s.parent_data),
            tuned=True,
            flavor="torch",
        ),
    }
)
# What runs when no kinds are named: the ONNX kinds for every parent, pruning for torch ones.
DEFAULT_KINDS: tuple[str, ...] = (
    ONNX,
    quantize.INT8_DYNAMIC,
    quantize.INT8_STATIC,
    quantize.FLOAT16,
)
TORCH_KINDS: tuple[str, ...] = (*DEFAULT_KINDS, prune.TORCH_PRUNED)


def parent_onnx(parent: ModelVersion, model: LoadedModel, parent_data: bytes) -> bytes:
    """The parent's plain ONNX form, which the ``onnx`` kind is and the others build on."""
    if parent.flavor == "torch":
        return torch_to_onnx(load_torchscript(parent_data), parent.signature)
    return sklearn_to_onnx(getattr(model, "estimator", None), parent.signature)


def check_comparable(parent: ModelVersion) -> None:
    """Comparison reads ``label``/``probabilities`` or ``prediction``: insist on them."""
    names = {spec.name for spec in parent.signature.outputs}
    inputs = parent.signature.inputs
    if len(inputs) != 1 or len(inputs[0].shape) != 2:
        raise OptimizeError(
            f"optimize compares models with one [batch, features] input; {parent.name} "
            f"version {parent.version} has inputs {[s.to_json() for s in inputs]}"
        )
    if "label" not in names and "prediction" not in names:
        raise OptimizeError(
            f"optimize compares classifiers by their 'label' (and 'probabilities') output and "
            f"regressors by 'prediction'; {parent.name} version {parent.version} has outputs "
            f"{sorted(names)}. Register the model with a signature naming its outputs so."
        )


def held_rows(holdout_rows: int, *, split: bool) -> int:
    """How many leading holdout rows calibrate or tune and are not judged on (0: none held,
    the whole holdout serves both)."""
    return holdout_rows // 4 if split and holdout_rows >= SPLIT_HOLDOUT_ROWS else 0


def calibration_sample(
    rows: np.ndarray[Any, Any], calibration: Any, parent: ModelVersion, start: int
) -> np.ndarray[Any, Any]:
    """Calibration rows: the user's sample, else the holdout's rows before ``start``."""
    if calibration is not None:
        sample = check_sample(calibration, parent.signature, purpose="calibration sample")
        return sample[:MAX_CALIBRATION_ROWS]
    part = rows[:start] if start else rows
    sample = check_sample(
        part[~np.isnan(part).any(axis=1)],
        parent.signature,
        purpose=(
            "holdout's first quarter without missing values (calibration)"
            if start
            else "holdout's rows without missing values (calibration)"
        ),
    )
    return sample[:MAX_CALIBRATION_ROWS]


def plan_kinds(
    kinds: Sequence[str],
    builders: Mapping[str, VariantBuilder],
    probe: BuildInput,
    say: Callable[[str], None],
) -> tuple[list[str], list[SkippedKind]]:
    """The kinds to build, and those that do not apply (or whose check raised)."""
    planned: list[str] = []
    skipped: list[SkippedKind] = []
    for kind in dict.fromkeys(kinds):
        try:
            reason = builders[kind].skip(probe)
        except Exception as exc:
            logger.exception("deciding whether %s applies failed", kind)
            skipped.append(SkippedKind(kind, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        if reason is None:
            planned.append(kind)
        else:
            say(f"{kind}: skipped, {reason}")
            skipped.append(SkippedKind(kind, "skipped", reason))
    return planned, skipped
