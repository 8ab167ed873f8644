"""TorchScript version -> ONNX bytes that serve the parent's exact interface.

``torch.onnx.export`` with ``dynamo=False`` (the TorchScript-based exporter, which takes a
ScriptModule as it is; the dynamo exporter needs onnxscript, which mlgate does not depend
on). The graph gets the parent's input and output names, a dynamic batch axis (and every
other ``-1`` dimension of the signature), the signature's shapes, and a ``Cast`` behind
any output whose exported type differs from the declared datatype, so the ONNX variant is
a drop-in replacement an endpoint can route to.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np

from mlgate.errors import ConversionError, OptimizeError
from mlgate.registry.flavors.torch import quiet_jit_deprecation
from mlgate.registry.signature import Signature, numpy_dtype

__all__ = ["TORCH_INSTALL_HINT", "load_torchscript", "require_torch", "torch_to_onnx"]

TORCH_INSTALL_HINT = "pip install 'mlgate[torch]'"
_ONNX_TYPE = {
    "BOOL": 9,
    "UINT8": 2,
    "INT8": 3,
    "INT16": 5,
    "INT32": 6,
    "INT64": 7,
    "FP16": 10,
    "FP32": 1,
    "FP64": 11,
}


def require_torch() -> Any:
    """Import torch, or raise an OptimizeError naming the pip extra."""
    try:
        import torch
    except ImportError as exc:
        raise OptimizeError(
            f"optimising PyTorch models needs torch, which is not installed ({exc}); "
            f"install the extra: {TORCH_INSTALL_HINT}"
        ) from exc
    return torch


def load_torchscript(data: bytes) -> Any:
    """A fresh module from a registered TorchScript archive (CPU, eval mode)."""
    torch = require_torch()
    with quiet_jit_deprecation():
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    module.eval()
    return module


def torch_to_onnx(module: Any, signature: Signature) -> bytes:
    """Export a TorchScript ``module`` serving ``signature`` to ONNX; ConversionError if not."""
    import onnx

    torch = require_torch()
    if not isinstance(module, torch.jit.ScriptModule):
        raise ConversionError(
            f"expected a TorchScript module (torch flavor), found {type(module).__name__}; "
            f"register the model with save_torchscript first."
        )
    unsupported = [
        s.name for s in (*signature.inputs, *signature.outputs) if s.datatype not in _ONNX_TYPE
    ]
    if unsupported:
        raise ConversionError(
            f"tensors {unsupported} have datatypes the exporter cannot carry; use numeric "
            f"datatypes (FP32, FP64, INT64, ...) in the signature."
        )
    example = []
    for spec in signature.inputs:
        if not spec.shape or -1 in spec.shape[1:]:
            raise ConversionError(
                f"input {spec.name!r} has shape {list(spec.shape)}; export needs every "
                f"dimension but the batch fixed. Re-register with a signature that fixes them."
            )
        zeros = np.zeros((2, *spec.shape[1:]), dtype=numpy_dtype(spec.datatype))
        example.append(torch.from_numpy(zeros))
    axes = {
        spec.name: {i: "batch" if i == 0 else f"d{i}" for i, d in enumerate(spec.shape) if d == -1}
        for spec in (*signature.inputs, *signature.outputs)
    }
    buffer = io.BytesIO()
    name = str(getattr(module, "original_name", "module"))
    try:
        with warnings.catch_warnings():
            # The TorchScript-based exporter is deprecated in favour of the dynamo one,
            # which needs onnxscript (not a dependency); it also warns that a ScriptMethod
            # has no Python signature. The parent comparison is the real test of the graph.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.filterwarnings("ignore", message="no signature found", category=UserWarning)
            torch.onnx.export(
                module,
                tuple(example),
                buffer,
                input_names=[s.name for s in signature.inputs],
                output_names=[s.name for s in signature.outputs],
                dynamic_axes=axes,
                dynamo=False,
            )
    except Exception as exc:
        raise ConversionError(
            f"torch.onnx.export cannot export {name} ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}). Supported: TorchScript modules of standard "
            f"torch operators whose forward returns a tensor or a tuple of tensors in the "
            f"signature's output order. Serve this version as it is."
        ) from exc
    model = onnx.load_model_from_string(buffer.getvalue())
    _fit_interface(model, signature, name)
    model.graph.name = name
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ConversionError(
            f"the exported graph of {name} fails onnx.checker ({exc}); serve this version as it is."
        ) from exc
    return bytes(model.SerializeToString())


def _fit_interface(model: Any, signature: Signature, name: str) -> None:
    """Declare the signature's shapes and types on the graph, casting outputs that differ."""
    from onnx import helper

    graph = model.graph
    exported = {o.name: o.type.tensor_type.elem_type for o in graph.output}
    missing = [s.name for s in signature.outputs if s.name not in exported]
    if missing or len(graph.output) != len(signature.outputs):
        raise ConversionError(
            f"the exported graph of {name} has outputs {list(exported)}, the signature "
            f"{[s.name for s in signature.outputs]}; forward must return exactly the "
            f"signature's outputs, in order."
        )

    def dims(shape: tuple[int, ...]) -> list[str | int]:
        return [d if d >= 0 else ("batch" if i == 0 else f"d{i}") for i, d in enumerate(shape)]

    inputs = [
        helper.make_tensor_value_info(s.name, _ONNX_TYPE[s.datatype], dims(s.shape))
        for s in signature.inputs
    ]
    outputs = []
    for spec in signature.outputs:
        target = _ONNX_TYPE[spec.datatype]
        if exported[spec.name] != target:
            raw = f"{spec.name}_exported"
            for node in graph.node:
                for names in (node.input, node.output):
                    for i, value in enumerate(names):
                        if value == spec.name:
                            names[i] = raw
            graph.node.append(helper.make_node("Cast", [raw], [spec.name], to=target))
        outputs.append(helper.make_tensor_value_info(spec.name, target, dims(spec.shape)))
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.output[:]
    graph.output.extend(outputs)
