"""Reduced-precision variants of an ONNX model: dynamic int8, static QDQ int8, float16.

All three take and return serialized models; onnxruntime's quantizers want file paths,
so each call works in its own temporary directory, removed afterwards. They also log
advice ("Please consider pre-processing before quantization") on the root logger; a
filter on the root logger drops their records below ERROR for the length of the call
only, since the comparison with the parent, not a pre-processing step, decides whether
the result is good.

* Dynamic int8 (``quantize_dynamic``) stores MatMul/Gemm weights as int8 and quantizes
  activations per call. It pays off only for matrix-heavy graphs, and mostly on batches.
* Static int8 (``quantize_static``, QDQ format) also fixes the activations' ranges, from a
  calibration sample the user gives (MinMax over its rows), as in Jacob et al. 2018,
  "Quantization and Training of Neural Networks for Efficient Integer-Arithmetic-Only
  Inference". QDQ keeps float ops around QuantizeLinear/DequantizeLinear pairs, so any
  runtime can load it and fuse what it supports.
* Float16 halves the weights (``convert_float_to_float16`` with ``keep_io_types``: inputs
  and outputs keep their types, so the serving interface is unchanged).

A kind that cannot change the graph (int8 with no MatMul/Gemm, as in tree ensembles;
float16 when every float op is on onnxruntime's block list, as ONNX-ML operators are) is
reported by :func:`skip_reason` instead of producing a copy that only looks optimised.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mlgate.optimize.convert import dedupe_opsets, require_extra
from mlgate.optimize.sample import check_sample
from mlgate.registry.signature import Signature, numpy_dtype

__all__ = [
    "INT8_DYNAMIC",
    "INT8_STATIC",
    "FLOAT16",
    "quantize_dynamic_int8",
    "quantize_static_int8",
    "skip_reason",
    "to_float16",
]

INT8_DYNAMIC = "onnx-int8-dynamic"
INT8_STATIC = "onnx-int8-static"
FLOAT16 = "onnx-fp16"
_MATRIX_OPS = frozenset({"MatMul", "Gemm", "Conv"})
_CALIBRATION_BATCH = 64


def skip_reason(data: bytes, kind: str) -> str | None:
    """Why ``kind`` would not change this model, or None when it applies."""
    import onnx

    model = onnx.load_model_from_string(data)
    ops = {node.op_type for node in model.graph.node}
    if kind in (INT8_DYNAMIC, INT8_STATIC) and not ops & _MATRIX_OPS:
        return (
            f"no MatMul, Gemm or Conv to quantize (the graph has {', '.join(sorted(ops))}); "
            "int8 speeds up matrix products, not tree or ONNX-ML operators"
        )
    if kind == FLOAT16:
        float16 = require_extra("onnxruntime.transformers.float16")
        blocked = set(float16.DEFAULT_OP_BLOCK_LIST)
        if not ops - blocked - {"Cast", "Identity", "Reshape", "ArgMax"}:
            return (
                "every float operator here is one onnxruntime keeps in float32 "
                f"({', '.join(sorted(ops & blocked))}); a float16 copy would change nothing"
            )
    return None


def quantize_dynamic_int8(data: bytes) -> bytes:
    """int8 weights, activations quantized on the fly."""
    quantization = require_extra("onnxruntime.quantization")
    with _workdir(data) as (source, target):
        quantization.quantize_dynamic(
            source, target, weight_type=quantization.QuantType.QInt8, extra_options={}
        )
        return target.read_bytes()


def quantize_static_int8(data: bytes, signature: Signature, sample: np.ndarray[Any, Any]) -> bytes:
    """QDQ int8 with activation ranges calibrated (MinMax) on ``sample``'s rows."""
    quantization = require_extra("onnxruntime.quantization")
    # The graph's own input type: FP64 for converted scikit-learn, often FP32 for PyTorch.
    spec = signature.inputs[0]
    rows = check_sample(sample, signature, purpose="calibration sample")
    rows, name = rows.astype(numpy_dtype(spec.datatype), copy=False), spec.name

    base: Any = quantization.CalibrationDataReader

    class _Reader(base):  # type: ignore[misc]
        def __init__(self) -> None:
            self._batches = iter(
                [
                    {name: rows[start : start + _CALIBRATION_BATCH]}
                    for start in range(0, len(rows), _CALIBRATION_BATCH)
                ]
            )

        def get_next(self) -> dict[str, np.ndarray[Any, Any]] | None:
            return next(self._batches, None)

    with _workdir(data) as (source, target):
        quantization.quantize_static(
            source,
            target,
            _Reader(),
            quant_format=quantization.QuantFormat.QDQ,
            activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8,
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
        return target.read_bytes()


def to_float16(data: bytes) -> bytes:
    """float16 weights and compute; the graph's inputs and outputs keep their types."""
    import onnx

    float16 = require_extra("onnxruntime.transformers.float16")
    model = onnx.load_model_from_string(data)
    with warnings.catch_warnings():
        # It warns for every weight clipped to float16's range; the comparison with
        # the parent is what decides whether that clipping mattered.
        warnings.simplefilter("ignore")
        converted = float16.convert_float_to_float16(model, keep_io_types=True)
    _sort_nodes(converted.graph)
    return bytes(converted.SerializeToString())


def _sort_nodes(graph: Any) -> None:
    """Put nodes in topological order (Kahn), keeping the original order among ready ones.

    With ``keep_io_types`` the converter appends the Cast of an FP32 graph input after the
    nodes that read it (exported PyTorch graphs start on the input directly, unlike
    converted scikit-learn ones, which start with a Cast); the checker refuses that order.
    """
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):  # a cycle or a dangling input: leave it to the checker
            ordered.extend(rest)
            break
        pending = rest
    copies = [type(node)() for node in ordered]
    for copy, node in zip(copies, ordered, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


@contextlib.contextmanager
def _workdir(data: bytes) -> Iterator[tuple[str, Path]]:
    """A temp dir holding the opset-deduplicated model; yields (source, target) paths."""
    import onnx

    model = dedupe_opsets(onnx.load_model_from_string(data))
    with tempfile.TemporaryDirectory(prefix="mlgate-optimize-") as name:
        root = Path(name)
        (root / "model.onnx").write_bytes(model.SerializeToString())
        root_logger = logging.getLogger()
        advice = _QuantizerAdvice()
        root_logger.addFilter(advice)
        try:
            with warnings.catch_warnings():
                # The quantizers warn with advice (pre-process first, use QDQ on GPUs...);
                # the comparison with the parent decides whether the result is good.
                warnings.simplefilter("ignore")
                yield str(root / "model.onnx"), root / "quantized.onnx"
        finally:
            root_logger.removeFilter(advice)


class _QuantizerAdvice(logging.Filter):
    """Drops what onnxruntime's quantization package logs on the root logger below ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = Path(record.pathname).as_posix()
        return record.levelno >= logging.ERROR or "onnxruntime/quantization/" not in path
