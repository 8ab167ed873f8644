"""Model input/output signatures in Open Inference Protocol (KServe v2) terms.

A signature is what registration records about the tensors a model takes and
returns. It is expressed in OIP datatypes rather than numpy or ONNX types so that
the serving layer, the ledger and users all speak the protocol's vocabulary, and
so a signature stored today still means the same thing after a library upgrade.

Shapes use ``-1`` for a dynamic dimension, as OIP model metadata does. A fixed
dimension of ``0`` is accepted: the protocol does not forbid it, ONNX allows a
``dim_value`` of 0, and refusing it would make some valid files unregistrable.
An empty shape ``()`` is a scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.errors import SignatureError

__all__ = [
    "DATATYPES",
    "Signature",
    "TensorSpec",
    "datatype_of",
    "numpy_dtype",
]

DATATYPES: tuple[str, ...] = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)

# BYTES maps to numpy's object dtype: OIP BYTES tensors carry variable-length
# strings or byte strings, which numpy can only hold without truncation as objects.
_NUMPY_OF: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """Return the OIP datatype for a numpy dtype.

    Unicode, byte-string and object arrays all become ``BYTES``, the only OIP
    type that can carry text. Anything OIP cannot express (complex, datetime,
    structured) is a :class:`SignatureError` rather than a silent guess.
    """
    dtype = np.dtype(dtype)
    if dtype.kind in "OUS":
        return "BYTES"
    # Compare kind and size rather than dtype equality so byte order does not matter.
    for name, candidate in _NUMPY_OF.items():
        if (candidate.kind, candidate.itemsize) == (dtype.kind, dtype.itemsize):
            return name
    raise SignatureError(
        f"numpy dtype {dtype} has no Open Inference Protocol datatype; expected one of "
        f"bool, (u)int8-64, float16/32/64 or a string/object dtype. Convert the model's "
        f"tensors to one of those or pass a signature override."
    )


def numpy_dtype(datatype: str) -> np.dtype[Any]:
    """Return the numpy dtype used to hold tensors of an OIP ``datatype``."""
    try:
        return _NUMPY_OF[datatype]
    except KeyError:
        raise SignatureError(_bad_datatype(datatype)) from None


def _bad_datatype(found: object) -> str:
    return (
        f"unknown tensor datatype {found!r}; expected one of {', '.join(DATATYPES)} "
        f"(Open Inference Protocol names, upper case). Fix the signature."
    )


@dataclass(frozen=True)
class TensorSpec:
    """One named tensor of a signature; construction validates it."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise SignatureError(
                f"tensor name must be a non-empty string, found {self.name!r}; "
                f"give every input and output a name."
            )
        if self.datatype not in DATATYPES:
            raise SignatureError(f"tensor {self.name!r}: {_bad_datatype(self.datatype)}")
        if not isinstance(self.shape, tuple):
            raise SignatureError(
                f"tensor {self.name!r}: shape must be a tuple of ints, "
                f"found {type(self.shape).__name__}."
            )
        for dim in self.shape:
            # bool is an int subclass; True as a dimension is a bug, not a 1.
            if isinstance(dim, bool) or not isinstance(dim, int) or dim < -1:
                raise SignatureError(
                    f"tensor {self.name!r}: shape {list(self.shape)!r} has dimension "
                    f"{dim!r}; expected integers >= 0, or -1 for a dynamic dimension."
                )

    def to_json(self) -> dict[str, object]:
        """Return the OIP model-metadata form ``{name, datatype, shape}``."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: object) -> TensorSpec:
        """Parse :meth:`to_json` output, rejecting anything malformed or extra.

        Unknown keys are refused so that a typo in a hand-written signature
        override ("dtype" for "datatype") fails loudly instead of being ignored.
        """
        obj = _object(data, "tensor spec", {"name", "datatype", "shape"})
        shape = obj["shape"]
        if not isinstance(shape, list | tuple):
            raise SignatureError(
                f"tensor {obj['name']!r}: shape must be a list of integers, found {shape!r}."
            )
        name = obj["name"]
        datatype = obj["datatype"]
        if not isinstance(name, str):
            raise SignatureError(f"tensor name must be a string, found {name!r}.")
        if not isinstance(datatype, str):
            raise SignatureError(f"tensor {name!r}: {_bad_datatype(datatype)}")
        return cls(name=name, datatype=datatype, shape=tuple(shape))


@dataclass(frozen=True)
class Signature:
    """The inputs a model accepts and the outputs it returns.

    Names must be unique within each side; an input and an output may share a
    name because OIP keeps them in separate lists (ONNX graphs that pass an input
    straight through do exactly that). At least one output is required: a model
    that returns nothing can be neither served nor monitored.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        for side, specs in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not isinstance(specs, tuple) or not all(isinstance(s, TensorSpec) for s in specs):
                raise SignatureError(f"signature {side} must be a tuple of TensorSpec.")
            names = [spec.name for spec in specs]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise SignatureError(
                    f"signature {side} must have unique names, found {duplicates} more "
                    f"than once; rename the duplicated tensors."
                )
        if not self.outputs:
            raise SignatureError(
                "signature has no outputs; expected at least one output tensor. "
                "Declare what the model returns."
            )

    def to_json(self) -> dict[str, object]:
        """Return ``{"inputs": [...], "outputs": [...]}`` in OIP metadata form."""
        return {
            "inputs": [spec.to_json() for spec in self.inputs],
            "outputs": [spec.to_json() for spec in self.outputs],
        }

    @classmethod
    def from_json(cls, data: object) -> Signature:
        """Parse :meth:`to_json` output; raises :class:`SignatureError`."""
        obj = _object(data, "signature", {"inputs", "outputs"})
        sides: list[tuple[TensorSpec, ...]] = []
        for side in ("inputs", "outputs"):
            items = obj[side]
            if not isinstance(items, list | tuple):
                raise SignatureError(
                    f"signature {side} must be a list of tensor specs, found {items!r}."
                )
            sides.append(tuple(TensorSpec.from_json(item) for item in items))
        return cls(inputs=sides[0], outputs=sides[1])


def _object(data: object, what: str, keys: set[str]) -> Mapping[str, object]:
    """Check ``data`` is a mapping with exactly ``keys`` and return it."""
    if not isinstance(data, Mapping):
        raise SignatureError(f"{what} must be a JSON object, found {type(data).__name__}.")
    found = set(data)
    if found != keys:
        missing = sorted(keys - found)
        extra = sorted(str(k) for k in found - keys)
        raise SignatureError(
            f"{what} must have exactly the keys {sorted(keys)}; missing {missing}, "
            f"unexpected {extra}. Fix the JSON."
        )
    return data
