"""Open Inference Protocol v2 (KServe v2 REST) bodies to numpy arrays and back.

This is the hot path of every prediction, so each check is chosen to cost one
C-speed pass over the data: ``set(map(type, flat))`` proves every element has an
allowed JSON type (it is the only cheap way to tell ``true`` from ``1``, which
numpy would silently merge), then numpy converts the whole list at once. Slow
per-element Python loops run only after a check failed, to name the culprit.

Real clients differ from the spec's letter, and the decoder follows the clients:
KServe's ``InferRequest.to_rest()`` adds a top-level ``"model_name"`` and always an
``"id"``, so unknown keys are ignored; tritonclient and KServe both send nested
``data`` arrays as accepted by Triton, so those are flattened row-major; both send
``binary_data_size`` or ``shared_memory_region`` parameters when asked for their
binary or shared-memory extensions, which are refused with a pointer to JSON data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson

from mlgate.errors import (
    InvalidRequestError,
    ModelFailedError,
    PayloadTooLargeError,
    SignatureError,
)
from mlgate.registry.flavors.base import prepare_inputs
from mlgate.registry.signature import DATATYPES, Signature, datatype_of, numpy_dtype

__all__ = [
    "InferInput",
    "InferRequest",
    "check_inputs",
    "decode_infer_request",
    "encode_error",
    "encode_infer_response",
    "encode_model_metadata",
    "encode_server_metadata",
    "select_outputs",
]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_DATATYPES = frozenset(DATATYPES)
_INTEGERS = (frozenset({int}), "integers (no fractions, no booleans)")
_ALLOWED = {  # numpy kind -> (exact JSON-decoded types allowed, what to tell the client)
    "b": (frozenset({bool}), "true/false"),
    "i": _INTEGERS,
    "u": _INTEGERS,
    "f": (frozenset({int, float}), "numbers"),
    "O": (frozenset({str}), "strings"),
}
_JSON_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a floating-point number",
    str: "a string",
}
_JSON_NAMES |= {list: "an array", dict: "an object", type(None): "null"}
_REFUSED_PARAMETERS = {
    "binary_data_size": "binary tensor data is not supported; send JSON data "
    "(tritonclient: set_data_from_numpy(array, binary_data=False))",
    "shared_memory_region": "shared-memory tensors are not supported; send JSON data",
}


# eq=False: the arrays inside make generated __eq__/__hash__ ambiguous or unhashable.
@dataclass(frozen=True, slots=True, eq=False)
class InferInput:
    """One decoded input: ``data`` already has ``shape`` and the datatype's numpy dtype."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray[Any, Any]
    parameters: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True, eq=False)
class InferRequest:
    """A decoded inference request; ``outputs == ()`` asks for every output."""

    id: str | None
    inputs: tuple[InferInput, ...]
    outputs: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def tensors(self) -> dict[str, np.ndarray[Any, Any]]:
        """Return ``{name: array}``, the form :func:`prepare_inputs` and models take."""
        return {tensor.name: tensor.data for tensor in self.inputs}


def decode_infer_request(body: bytes, *, max_elements: int = 10_000_000) -> InferRequest:
    """Parse and validate an OIP inference request body; raise InvalidRequestError."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(_json_error(body, exc)) from None
    if not isinstance(doc, dict):
        raise InvalidRequestError(
            f'request body must be a JSON object with an "inputs" list, found {_kind(doc)}.'
        )
    raw_inputs = doc.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise InvalidRequestError(
            f'request "inputs" must be a non-empty array of tensors, found {_show(raw_inputs)}.'
        )
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError(f'request "id" must be a string, found {_show(request_id)}.')
    inputs: dict[str, InferInput] = {}
    total = 0
    for index, raw in enumerate(raw_inputs):
        tensor = _decode_input(index, raw, total, max_elements)
        if tensor.name in inputs:
            raise InvalidRequestError(
                f"input {tensor.name!r} appears more than once in the request; send each once."
            )
        total += tensor.data.size
        inputs[tensor.name] = tensor
    return InferRequest(
        id=request_id,
        inputs=tuple(inputs.values()),
        outputs=_requested_outputs(doc.get("outputs")),
        parameters=_parameters(doc.get("parameters"), "request"),
    )


def _decode_input(index: int, raw: object, used: int, limit: int) -> InferInput:
    """Validate one input's fields, then convert its data if the size budget allows."""
    if not isinstance(raw, dict):
        raise InvalidRequestError(f"inputs[{index}] must be a JSON object, found {_kind(raw)}.")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequestError(
            f'inputs[{index}] needs a non-empty "name" string, found {_show(name)}.'
        )
    parameters = _parameters(raw.get("parameters"), f"input {name!r}")
    for key, why in _REFUSED_PARAMETERS.items():
        if key in parameters:
            raise InvalidRequestError(f"input {name!r} sets parameters.{key}: {why}.")
    datatype = raw.get("datatype")
    if datatype not in _DATATYPES:
        raise InvalidRequestError(
            f"input {name!r} has datatype {_show(datatype)}; expected one of "
            f"{', '.join(DATATYPES)} (upper case)."
        )
    shape = raw.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidRequestError(
            f"input {name!r} has shape {_show(shape)}; expected an array of "
            f"non-negative integers, e.g. [1, 4]."
        )
    count = math.prod(shape)
    if used + count > limit:
        raise PayloadTooLargeError(
            f"input {name!r} with shape {shape} brings the request to {used + count} tensor "
            f"values, more than the limit of {limit}; split it into smaller requests."
        )
    data = raw.get("data")
    if not isinstance(data, list):
        raise InvalidRequestError(
            f'input {name!r} needs "data" as a JSON array of values in row-major order, '
            f"found {_show(data)}."
        )
    array = _convert(name, datatype, _flatten(name, data, shape, count))
    return InferInput(name, datatype, tuple(shape), array.reshape(shape), parameters)


def _flatten(name: str, data: list[Any], shape: list[int], count: int) -> list[Any]:
    """Flatten nested arrays (Triton and KServe accept them) level by level; check the count."""
    flat = data
    while flat and type(flat[0]) is list:
        if set(map(type, flat)) != {list}:
            raise InvalidRequestError(
                f"input {name!r} mixes nested arrays and single values at one depth of "
                f'"data"; send a flat array or evenly nested arrays.'
            )
        flat = list(chain.from_iterable(flat))
    if len(flat) != count:
        raise InvalidRequestError(
            f"input {name!r} has shape {shape} = {count} values but data holds {len(flat)}; "
            f"send exactly {count} values in row-major order."
        )
    return flat


def _convert(name: str, datatype: str, flat: list[Any]) -> np.ndarray[Any, Any]:
    """Type-check every element in one C-speed pass, then convert the list in one call."""
    target = numpy_dtype(datatype)
    allowed, wanted = _ALLOWED[target.kind]
    if not allowed.issuperset(map(type, flat)):
        i, value = next((i, v) for i, v in enumerate(flat) if type(v) not in allowed)
        if target.kind in "iu" and type(value) is float and abs(value) >= 2**63:
            # orjson reads integers beyond 64 bits as floats: report the range, not the type.
            info = np.iinfo(target)
            raise InvalidRequestError(_out_of_range(name, datatype, i, value, info.min, info.max))
        raise InvalidRequestError(
            f"input {name!r} is {datatype} but data element {i} is {_show(value)}; "
            f"send {wanted} only."
        )
    if target.kind == "O":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array
    if target.kind in "iu":
        return _integers(name, datatype, flat, target)
    if target.itemsize == 8:  # FP64 holds every JSON number orjson yields
        return np.asarray(flat, dtype=target)
    with np.errstate(over="ignore"):
        array = np.asarray(flat, dtype=target)
    if np.isinf(array).any():  # orjson never yields inf, so this is overflow
        i = int(np.flatnonzero(np.isinf(array))[0])
        raise InvalidRequestError(
            f"input {name!r} is {datatype} but data element {i} is {flat[i]!r}, beyond "
            f"its largest value {float(np.finfo(target).max):g}; send values that fit."
        )
    return array


def _integers(
    name: str, datatype: str, flat: list[Any], target: np.dtype[Any]
) -> np.ndarray[Any, Any]:
    """Convert ints after a range check, so a value never wraps around silently.

    Going through int64 (or uint64) explicitly matters: left to infer, numpy turns
    ``[1, 2**64 - 1]`` into float64 and loses digits.
    """
    info = np.iinfo(target)
    array: np.ndarray[Any, Any] | None
    try:
        array = np.asarray(flat, dtype=np.int64)  # exact, or OverflowError at >= 2**63
    except OverflowError:  # only UINT64 can hold such a value, and only without negatives
        array = (
            np.asarray(flat, dtype=np.uint64) if target == np.uint64 and min(flat) >= 0 else None
        )
    if array is None or (array.size and (array.min() < info.min or array.max() > info.max)):
        i, value = next((i, v) for i, v in enumerate(flat) if not info.min <= v <= info.max)
        raise InvalidRequestError(_out_of_range(name, datatype, i, value, info.min, info.max))
    return array.astype(target, copy=False)


def _out_of_range(name: str, datatype: str, i: int, value: float, low: int, high: int) -> str:
    shown = f"{value:.0f}" if isinstance(value, float) else str(value)
    return (
        f"input {name!r} is {datatype} but data element {i} is {shown}, outside "
        f"[{low}, {high}]; send values that fit."
    )


def _requested_outputs(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise InvalidRequestError(
            f'request "outputs" must be an array of {{"name": ...}} objects, found {_show(raw)}.'
        )
    names: dict[str, None] = {}  # ordered, with O(1) duplicate checks
    for index, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(
                f'outputs[{index}] must be an object with a non-empty "name" string, '
                f"found {_show(item)}."
            )
        if name in names:
            raise InvalidRequestError(f"output {name!r} is requested more than once.")
        _parameters(item.get("parameters"), f"output {name!r}")
        names[name] = None
    return tuple(names)


def _parameters(raw: object, owner: str) -> Mapping[str, Any]:
    if raw is None:
        return _EMPTY
    if not isinstance(raw, dict):
        raise InvalidRequestError(
            f'{owner} "parameters" must be a JSON object, found {_show(raw)}.'
        )
    return MappingProxyType(raw)


def _json_error(body: bytes, exc: orjson.JSONDecodeError) -> str:
    """Explain a parse failure, recognising what popular clients get wrong.

    Runs only on failure, so it may use the slower stdlib parser, which finds where
    a leading JSON object ends (binary tensors follow it, often as invalid UTF-8)
    and accepts the NaN tokens that Python's json.dumps writes.
    """
    message = f"request body is not valid JSON: {exc}"
    text = body.decode("utf-8", "replace")
    start = len(text) - len(text.lstrip())
    try:
        _, end = json.JSONDecoder().raw_decode(text, start)
    except ValueError:
        return message
    tail = len(body) - len(text[:end].encode("utf-8"))
    if text[end:].strip():
        return (
            f"{message}. {tail} bytes follow the JSON object: binary tensor data is not "
            "supported; send JSON data (tritonclient: set_data_from_numpy(array, "
            "binary_data=False))."
        )
    if b"NaN" in body or b"Infinity" in body:
        return (
            f"{message}. JSON has no NaN or Infinity (Python's json.dumps writes them "
            "anyway); send finite numbers."
        )
    return message


def check_inputs(
    request: InferRequest, signature: Signature, *, allow_non_finite: bool = False
) -> dict[str, np.ndarray[Any, Any]]:
    """Check a request against a model's signature; return the arrays cast to its dtypes."""
    tensors = request.tensors()
    try:
        # Overflow in a float narrowing cast is reported below, not as a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            prepared = prepare_inputs(signature, tensors)
    except SignatureError as exc:
        raise InvalidRequestError(str(exc)) from exc
    for name, array in prepared.items():
        if array.dtype.kind != "f" or array.size == 0:
            continue
        finite = np.isfinite(array)
        if finite.all():
            continue
        sent = np.asarray(tensors[name])
        # Finite values that became infinite were narrowed past the dtype's range.
        overflow = ~finite & (np.isfinite(sent) if sent.dtype.kind == "f" else True)
        if overflow.any():
            raise InvalidRequestError(
                f"input {name!r} holds values too large for {datatype_of(array.dtype)} at row "
                f"{_first_row(overflow)}; send values within its range."
            )
        if not allow_non_finite:
            raise InvalidRequestError(
                f"input {name!r} holds NaN or infinity at row {_first_row(~finite)}; send "
                f"finite numbers (this endpoint does not accept non-finite values)."
            )
    known = [spec.name for spec in signature.outputs]
    unknown = [name for name in request.outputs if name not in known]
    if unknown:
        raise InvalidRequestError(
            f"requested outputs {unknown} are not outputs of this model; it returns {known}."
        )
    return prepared


def _first_row(mask: np.ndarray[Any, Any]) -> int:
    first = int(np.flatnonzero(mask)[0])
    return int(np.unravel_index(first, mask.shape)[0]) if mask.ndim else 0


def select_outputs(
    outputs: Mapping[str, np.ndarray[Any, Any]], requested: Sequence[str]
) -> dict[str, np.ndarray[Any, Any]]:
    """Keep the requested outputs in request order; ``()`` keeps all of them."""
    if not requested:
        return dict(outputs)
    missing = [name for name in requested if name not in outputs]
    if missing:
        raise ModelFailedError(
            f"the model did not return the requested outputs {missing}; it returned "
            f"{sorted(outputs)}."
        )
    return {name: outputs[name] for name in requested}


def encode_infer_response(
    *,
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any]],
    parameters: Mapping[str, Any] | None = None,
) -> bytes:
    """Serialise model outputs; numeric data goes to orjson as arrays, with no Python loop.

    JSON has no NaN or infinity, so such values come out as ``null`` (orjson's rule).
    """
    body: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        body["id"] = request_id
    if parameters is not None:
        body["parameters"] = dict(parameters)
    body["outputs"] = [_output(name, np.asarray(value)) for name, value in outputs.items()]
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def _output(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    try:
        datatype = datatype_of(array.dtype)
    except SignatureError as exc:
        raise ModelFailedError(f"output {name!r} cannot be sent: {exc}") from None
    data: Any
    if datatype == "BYTES":
        data = [_text(name, value) for value in array.reshape(-1).tolist()]
    else:  # orjson wants C-contiguous, native-endian arrays
        data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("=")).reshape(-1)
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def _text(name: str, value: object) -> str:
    """BYTES elements as JSON strings; other objects use str(), as KServe's client does."""
    if type(value) is str:
        return value
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFailedError(
                f"output {name!r} holds bytes that are not UTF-8 text, which a JSON "
                f"response cannot carry; return text from the model."
            ) from None
    return str(value)


def encode_server_metadata(name: str, version: str, extensions: Sequence[str]) -> bytes:
    """The ``GET /v2`` body."""
    return orjson.dumps({"name": name, "version": version, "extensions": list(extensions)})


def encode_model_metadata(
    *,
    name: str,
    versions: Sequence[str],
    platform: str,
    signature: Signature,
    runtime: Mapping[str, Any] | None = None,
) -> bytes:
    """The ``GET /v2/models/{name}[/versions/{v}]`` body, shapes with -1 for dynamic sizes.

    ``runtime`` (where the model runs: an ONNX execution provider and why) goes under
    ``parameters``, which OIP clients ignore when they do not know it.
    """
    body: dict[str, Any] = {
        "name": name,
        "versions": list(versions),
        "platform": platform,
        **signature.to_json(),
    }
    if runtime is not None:
        body["parameters"] = {"runtime": dict(runtime)}
    return orjson.dumps(body)


def encode_error(message: str) -> bytes:
    """The OIP error body ``{"error": message}``, used for every failed request."""
    return orjson.dumps({"error": message})


def _kind(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__name__)


def _show(value: object) -> str:
    """A short description of a found value for error messages."""
    if value is None:
        return "nothing (missing or null)"
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"{text} ({_kind(value)})"
