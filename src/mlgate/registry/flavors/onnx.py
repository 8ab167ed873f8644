"""The ONNX flavor: a serialized ``onnx.ModelProto``, served with onnxruntime.

ONNX is the preferred format because the file describes its own typed inputs
and outputs, so the signature is read rather than guessed, and loading it runs
no Python code from the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.errors import ArtifactError, SignatureError
from mlgate.registry.flavors.base import Inspection, check_flavor, prepare_inputs
from mlgate.registry.flavors.onnx_runtime import (
    RuntimeChoice,
    choose_providers,
    session_options,
    verify_choice,
)
from mlgate.registry.signature import Signature, TensorSpec

if TYPE_CHECKING:
    import onnx

__all__ = ["OnnxFlavor"]

# ONNX TensorProto.DataType numbers -> OIP datatypes. Numbers rather than
# onnx.TensorProto attributes so this module imports without onnx loaded.
_DATATYPES: dict[int, str] = {
    1: "FP32",
    2: "UINT8",
    3: "INT8",
    4: "UINT16",
    5: "INT16",
    6: "INT32",
    7: "INT64",
    8: "BYTES",  # STRING
    9: "BOOL",
    10: "FP16",
    11: "FP64",
    12: "UINT32",
    13: "UINT64",
}

# ModelProto field number -> protobuf wire type (0 varint, 2 length-delimited).
_MODEL_FIELDS: dict[int, int] = {
    1: 0,  # ir_version
    2: 2,  # producer_name
    3: 2,  # producer_version
    4: 2,  # domain
    5: 0,  # model_version
    6: 2,  # doc_string
    7: 2,  # graph
    8: 2,  # opset_import
    14: 2,  # metadata_props
    20: 2,  # training_info
    21: 2,  # functions
    25: 2,  # configuration
}


def _varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """Decode a protobuf varint at ``pos``; None when the data ends inside it."""
    value = shift = 0
    while pos < len(data) and shift < 64:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None


def _looks_like_model(data: bytes) -> bool:
    """Walk the top-level protobuf fields without descending into the graph.

    Protobuf writers emit fields in ascending number, so a ModelProto opens with
    ``ir_version`` and continues with known fields in order. Checking that is
    cheap (a handful of fields, the graph bytes are skipped) and rejects other
    formats almost surely. Data that ends mid-field still counts: a truncated
    ONNX file should reach :meth:`OnnxFlavor.inspect` and be reported as a
    damaged ONNX file rather than as an unknown format.
    """
    pos, last, fields = 0, 0, 0
    while pos < len(data) and fields < 32:
        tag = _varint(data, pos)
        if tag is None:
            return fields >= 1
        key, pos = tag
        number, wire = key >> 3, key & 7
        if _MODEL_FIELDS.get(number) != wire or number < last or (fields == 0 and number != 1):
            return False
        value = _varint(data, pos)
        if value is None:
            return fields >= 1
        length, pos = value
        if number == 1 and not 1 <= length <= 100:
            return False
        if wire == 2:
            pos += length
        last, fields = number, fields + 1
    return fields >= 2


class OnnxFlavor:
    """ONNX models, inspected with onnx and run with onnxruntime on CPU."""

    name = "onnx"

    def sniff(self, data: bytes) -> bool:
        return _looks_like_model(data)

    def inspect(self, data: bytes, *, trusted_types: Sequence[str] = ()) -> Inspection:
        """Parse, run ``onnx.checker`` and read the signature from the graph.

        ``trusted_types`` is ignored: ONNX files carry no code to trust.
        """
        import onnx

        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:
            raise ArtifactError(
                f"cannot parse the file as an ONNX model ({type(exc).__name__}: {exc}); "
                f"expected a ModelProto as written by onnx.save_model. The file may be "
                f"truncated or another format: re-export it, or pass the right --flavor."
            ) from exc
        external = [t.name for t in model.graph.initializer if t.data_location == 1]
        if external:
            raise ArtifactError(
                f"the ONNX model keeps weights {external[:5]} in external data files, "
                f"expected them inside the file. Save it with "
                f"onnx.save_model(model, path, save_as_external_data=False)."
            )
        try:
            onnx.checker.check_model(model)
        except Exception as exc:
            raise ArtifactError(
                f"the ONNX model fails onnx.checker ({exc}); expected a valid model. "
                f"Re-export it with a current exporter."
            ) from exc
        initializers = {t.name for t in model.graph.initializer}
        try:
            signature = Signature(
                inputs=tuple(
                    _spec(vi, "input") for vi in model.graph.input if vi.name not in initializers
                ),
                outputs=tuple(_spec(vi, "output") for vi in model.graph.output),
            )
        except SignatureError as exc:
            raise ArtifactError(f"the ONNX model's graph has an unusable signature: {exc}") from exc
        metadata: dict[str, object] = {
            "ir_version": model.ir_version,
            "producer_name": model.producer_name,
            "producer_version": model.producer_version,
            "opset_imports": {op.domain or "ai.onnx": op.version for op in model.opset_import},
            "metadata_props": {prop.key: prop.value for prop in model.metadata_props},
        }
        return Inspection(flavor=self.name, signature=signature, metadata=metadata)

    def load(self, data: bytes, inspection: Inspection) -> OnnxModel:
        """Open an onnxruntime session on the best provider (see :mod:`.onnx_runtime`)."""
        import onnxruntime

        check_flavor(inspection, self.name)
        requested, reason = choose_providers(onnxruntime.get_available_providers())
        options = session_options(onnxruntime)
        try:
            session = onnxruntime.InferenceSession(
                data, sess_options=options, providers=list(requested)
            )
        except Exception as exc:
            raise ArtifactError(
                f"onnxruntime {onnxruntime.__version__} cannot load the ONNX model ({exc}). "
                f"It probably uses an operator or opset this runtime lacks: re-export with an "
                f"older opset or upgrade onnxruntime."
            ) from exc
        _check_names(inspection.signature, session)
        runtime = verify_choice(
            session, requested, reason, options.intra_op_num_threads, "ONNX model"
        )
        return OnnxModel(signature=inspection.signature, session=session, runtime=runtime)


def _spec(vi: onnx.ValueInfoProto, side: str) -> TensorSpec:
    kind = vi.type.WhichOneof("value")
    if kind != "tensor_type":
        raise ArtifactError(
            f"ONNX {side} {vi.name!r} is a {kind}, expected a tensor: the Open Inference "
            f"Protocol only carries tensors. Re-export without ZipMap (skl2onnx: "
            f"options={{'zipmap': False}}) or end the graph with a tensor output."
        )
    tensor = vi.type.tensor_type
    datatype = _DATATYPES.get(tensor.elem_type)
    if datatype is None:
        raise ArtifactError(
            f"ONNX {side} {vi.name!r} has element type {tensor.elem_type} "
            f"(onnx.TensorProto.DataType), which has no Open Inference Protocol datatype; "
            f"cast it to a float, int, bool or string type in the graph."
        )
    if not tensor.HasField("shape"):
        raise ArtifactError(
            f"ONNX {side} {vi.name!r} declares no shape, expected at least its rank; "
            f"give it a shape (use a named dimension like 'batch' for dynamic sizes)."
        )
    # dim_param (symbolic) and unset dims are dynamic; dim_value is fixed.
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSpec(name=vi.name, datatype=datatype, shape=shape)


def _check_names(signature: Signature, session: Any) -> None:
    """Refuse a signature whose tensor names the session does not have."""
    have_in = [i.name for i in session.get_inputs()]
    have_out = [o.name for o in session.get_outputs()]
    want_in = [s.name for s in signature.inputs]
    want_out = [s.name for s in signature.outputs]
    if sorted(want_in) != sorted(have_in) or not set(want_out) <= set(have_out):
        raise SignatureError(
            f"signature inputs {want_in} / outputs {want_out} do not fit the ONNX model, "
            f"which has inputs {have_in} and outputs {have_out}; fix the signature."
        )


@dataclass(frozen=True)
class OnnxModel:
    """An onnxruntime session behind the :class:`LoadedModel` protocol."""

    signature: Signature
    session: Any
    runtime: RuntimeChoice | None = None

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        feed = prepare_inputs(self.signature, inputs)
        names = [spec.name for spec in self.signature.outputs]
        results = self.session.run(names, feed)
        return {name: np.asarray(value) for name, value in zip(names, results, strict=True)}
