"""The OIP v2 REST codec: round trips, every rejection, the spec's own example."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlgate.errors import (
    InvalidRequestError,
    ModelFailedError,
    PayloadTooLargeError,
    SignatureError,
)
from mlgate.registry.signature import DATATYPES, Signature, TensorSpec, numpy_dtype
from mlgate.serving.protocol import (
    InferInput,
    InferRequest,
    check_inputs,
    decode_infer_request,
    encode_error,
    encode_infer_response,
    encode_model_metadata,
    encode_server_metadata,
    select_outputs,
)

# --- helpers -----------------------------------------------------------------------


def body(*inputs: dict[str, Any], **extra: Any) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def tensor(
    datatype: str, shape: list[Any], data: Any, name: str = "x", **extra: Any
) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data, **extra}


def refused(raw: bytes, *fragments: str, error: type[Exception] = InvalidRequestError) -> str:
    with pytest.raises(error) as info:
        decode_infer_request(raw)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


_WIDTH: dict[str, Literal[16, 32, 64]] = {"FP16": 16, "FP32": 32, "FP64": 64}


def _element(datatype: str) -> st.SearchStrategy[Any]:
    if datatype == "BOOL":
        return st.booleans()
    if datatype == "BYTES":
        return st.text(max_size=8)
    if datatype in _WIDTH:
        fraction = st.floats(width=_WIDTH[datatype], allow_nan=False, allow_infinity=False)
        # Clients send whole numbers as JSON integers even for float tensors.
        return st.one_of(fraction, st.integers(-2048, 2048))
    info = np.iinfo(numpy_dtype(datatype))
    return st.integers(int(info.min), int(info.max))


def _nest(flat: list[Any], shape: list[int]) -> list[Any]:
    """Build the multi-dimensional JSON form Triton and KServe also accept."""
    if len(shape) <= 1:
        return list(flat)
    step = math.prod(shape[1:])
    return [_nest(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


@st.composite
def kserve_inputs(draw: st.DrawFn) -> tuple[str, list[int], list[Any], bool]:
    datatype = draw(st.sampled_from(DATATYPES))
    shape = draw(st.lists(st.integers(0, 4), max_size=3))
    flat = draw(st.lists(_element(datatype), min_size=math.prod(shape), max_size=math.prod(shape)))
    return datatype, shape, flat, draw(st.booleans())


def expected_array(datatype: str, shape: list[int], flat: list[Any]) -> np.ndarray[Any, Any]:
    if datatype == "BYTES":
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
        return array.reshape(shape)
    return np.array(flat, dtype=numpy_dtype(datatype)).reshape(shape)


# --- round trips -------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(kserve_inputs(), st.none() | st.text(max_size=10))
def test_request_round_trip_as_the_kserve_client_builds_it(
    case: tuple[str, list[int], list[Any], bool], request_id: str | None
) -> None:
    datatype, shape, flat, nested = case
    # InferRequest.to_rest(): flat data, always an id, a top-level model_name.
    raw = {
        "id": request_id,
        "model_name": "m",
        "inputs": [tensor(datatype, shape, _nest(flat, shape) if nested else flat)],
    }
    request = decode_infer_request(orjson.dumps(raw))
    (decoded,) = request.inputs
    want = expected_array(datatype, shape, flat)
    assert request.id == request_id
    assert (decoded.name, decoded.datatype, decoded.shape) == ("x", datatype, tuple(shape))
    assert decoded.data.dtype == want.dtype
    assert decoded.data.shape == want.shape
    np.testing.assert_array_equal(decoded.data, want)
    assert request.tensors() == {"x": decoded.data}


_OUTPUT_DTYPES = st.sampled_from(
    [np.bool_, np.uint8, np.uint16, np.uint32, np.uint64, np.int8, np.int16, np.int32]
    + [np.int64, np.float16, np.float32, np.float64]
)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        _OUTPUT_DTYPES,
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
        elements={"allow_nan": False, "allow_infinity": False},
    ),
    st.booleans(),
)
def test_response_round_trip(array: np.ndarray[Any, Any], transpose: bool) -> None:
    array = array.T if transpose else array  # a non-contiguous view must still encode
    raw = encode_infer_response(
        model_name="m", model_version="3", request_id="r", outputs={"y": array}
    )
    doc = orjson.loads(raw)
    (out,) = doc["outputs"]
    assert doc["model_name"] == "m" and doc["model_version"] == "3" and doc["id"] == "r"
    assert out["name"] == "y" and out["shape"] == list(array.shape)
    assert np.dtype(numpy_dtype(out["datatype"])) == array.dtype
    np.testing.assert_array_equal(np.asarray(out["data"], dtype=array.dtype), array.reshape(-1))
    # What the server sends, a client can send back unchanged.
    request = decode_infer_request(body({**out, "name": "y"}))
    np.testing.assert_array_equal(request.inputs[0].data, array)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=6), max_size=6))
def test_bytes_outputs_round_trip_as_strings(values: list[str]) -> None:
    array = np.array(values, dtype=object)
    doc = orjson.loads(
        encode_infer_response(
            model_name="m", model_version="1", request_id=None, outputs={"t": array}
        )
    )
    assert doc["outputs"][0]["datatype"] == "BYTES"
    assert doc["outputs"][0]["data"] == values


# --- the spec's own example --------------------------------------------------------

# The example of the Open Inference Protocol REST spec, "Inference Request Examples":
# https://github.com/kserve/open-inference-protocol/blob/main/specification/protocol/inference_rest.md
# (also https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol).
# As published, input1 declares shape [3] but carries one value, and the response
# lacks a comma after "id"; both are reproduced in spirit here.
SPEC_REQUEST = b"""{
  "id" : "42",
  "inputs" : [
    {"name" : "input0", "shape" : [ 2, 2 ], "datatype" : "UINT32", "data" : [ 1, 2, 3, 4 ]},
    {"name" : "input1", "shape" : [ 3 ], "datatype" : "BOOL", "data" : [ true ]}
  ],
  "outputs" : [ {"name" : "output0"} ]
}"""


def test_spec_example_request_is_refused_for_its_own_shape_mismatch() -> None:
    refused(SPEC_REQUEST, "input 'input1'", "shape [3] = 3 values but data holds 1")


def test_spec_example_request_with_its_data_completed_decodes() -> None:
    raw = SPEC_REQUEST.replace(b"[ true ]", b"[ true, false, true ]")
    request = decode_infer_request(raw)
    assert request.id == "42"
    assert request.outputs == ("output0",)
    input0, input1 = request.inputs
    assert input0.data.dtype == np.uint32
    np.testing.assert_array_equal(input0.data, [[1, 2], [3, 4]])
    assert input1.data.dtype == np.bool_
    np.testing.assert_array_equal(input1.data, [True, False, True])


def test_spec_example_response() -> None:
    output0 = np.array([[1.0, 1.1], [2.0, 2.1], [3.0, 3.1]], dtype=np.float32)
    doc = orjson.loads(
        encode_infer_response(
            model_name="mymodel", model_version="1", request_id="42", outputs={"output0": output0}
        )
    )
    assert doc == {
        "model_name": "mymodel",
        "model_version": "1",
        "id": "42",
        "outputs": [
            {
                "name": "output0",
                "shape": [3, 2],
                "datatype": "FP32",
                "data": [1.0, 1.1, 2.0, 2.1, 3.0, 3.1],
            }
        ],
    }


def test_what_tritonclient_sends_with_json_data_is_accepted() -> None:
    # tritonclient.http with set_data_from_numpy(..., binary_data=False) and no outputs
    # asks for binary outputs; the server answers in JSON, which the client also reads.
    raw = body(
        tensor("FP32", [1, 2], [0.5, 1.5], name="INPUT0"),
        parameters={"binary_data_output": True},
    )
    request = decode_infer_request(raw)
    assert request.parameters == {"binary_data_output": True}
    assert request.outputs == ()
    raw = body(
        tensor("INT32", [1], [1]), outputs=[{"name": "y", "parameters": {"binary_data": True}}]
    )
    assert decode_infer_request(raw).outputs == ("y",)


def test_optional_fields_may_be_null_and_parameters_are_kept() -> None:
    raw = body(
        tensor("FP64", [1], [1], parameters={"content_type": "np"}),
        id=None,
        parameters=None,
        outputs=None,
    )
    request = decode_infer_request(raw)
    assert request.id is None and request.outputs == () and request.parameters == {}
    assert request.inputs[0].parameters == {"content_type": "np"}


# --- rejections --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fragments"),
    [
        (b"{", ["request body is not valid JSON: "]),
        (b"", ["request body is not valid JSON: "]),
        (b"[1, 2]", ["must be a JSON object", "found an array"]),
        (b"{}", ['"inputs" must be a non-empty array', "found nothing"]),
        (b'{"inputs": []}', ['"inputs" must be a non-empty array']),
        (b'{"inputs": {"x": 1}}', ['"inputs" must be a non-empty array']),
        (body(tensor("FP32", [1], [1]), id=42), ['"id" must be a string', "found 42"]),
        (b'{"inputs": [5]}', ["inputs[0] must be a JSON object", "found an integer"]),
        (body({"shape": [1], "datatype": "FP32", "data": [1]}), ["inputs[0] needs", '"name"']),
        (body(tensor("FP32", [1], [1], name="")), ["inputs[0] needs a non-empty"]),
    ],
)
def test_malformed_requests(raw: bytes, fragments: list[str]) -> None:
    refused(raw, *fragments)


def test_bad_json_quotes_the_parser() -> None:
    message = refused(b'{"inputs": [}', "request body is not valid JSON: ")
    assert "line 1 column" in message


def test_nan_tokens_get_a_hint() -> None:
    # Python's json.dumps (used by tritonclient) writes NaN; JSON and orjson refuse it.
    refused(
        b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [NaN]}]}',
        "not valid JSON",
        "JSON has no NaN or Infinity",
    )


@pytest.mark.parametrize(
    ("datatype", "fragment"),
    [("FLOAT32", "'FLOAT32'"), ("fp32", "'fp32'"), ("BF16", "'BF16'"), (None, "nothing")],
)
def test_unknown_datatype(datatype: Any, fragment: str) -> None:
    refused(body(tensor(datatype, [1], [1])), "input 'x' has datatype", fragment, "FP32, FP64")


@pytest.mark.parametrize("shape", [[-1], [2, -3], [1.0], [True], "2", None, [[2]]])
def test_bad_shape(shape: Any) -> None:
    refused(body(tensor("FP32", shape, [1])), "input 'x' has shape", "non-negative integers")


@pytest.mark.parametrize("data", [None, 5, "1,2", {"a": 1}])
def test_data_must_be_an_array(data: Any) -> None:
    refused(body(tensor("FP32", [1], data)), "input 'x' needs \"data\" as a JSON array")


def test_missing_data_is_named() -> None:
    refused(body({"name": "x", "shape": [1], "datatype": "FP32"}), "input 'x' needs \"data\"")


def test_element_count_must_match_shape() -> None:
    refused(
        body(tensor("FP32", [2, 4], [1.0] * 6)),
        "input 'x' has shape [2, 4] = 8 values but data holds 6",
    )
    refused(body(tensor("FP32", [2, 2], [[1, 2], [3, 4], [5, 6]])), "= 4 values but data holds 6")
    refused(body(tensor("FP32", [], [])), "shape [] = 1 values but data holds 0")


def test_nested_and_flat_values_cannot_mix() -> None:
    refused(
        body(tensor("FP32", [3], [[1, 2], 3])), "input 'x' mixes nested arrays and single values"
    )


def test_nested_data_is_flattened_row_major() -> None:
    request = decode_infer_request(body(tensor("INT32", [2, 2, 1], [[[1], [2]], [[3], [4]]])))
    np.testing.assert_array_equal(request.inputs[0].data.reshape(-1), [1, 2, 3, 4])


@pytest.mark.parametrize(
    ("datatype", "data", "fragments"),
    [
        ("BOOL", [True, 1], ["is BOOL but data element 1 is 1 (an integer)", "true/false"]),
        ("BOOL", ["true"], ["element 0 is 'true' (a string)"]),
        ("INT32", [1, 2.5], ["is INT32 but data element 1 is 2.5 (a floating-point number)"]),
        ("INT32", [1.0], ["element 0 is 1.0 (a floating-point number)", "send integers"]),
        ("INT64", [False], ["element 0 is False (a boolean)", "no booleans"]),
        ("UINT8", [None], ["element 0 is nothing"]),
        ("FP32", [1.5, "NaN"], ["is FP32 but data element 1 is 'NaN' (a string)", "numbers"]),
        ("FP64", [True], ["element 0 is True (a boolean)"]),
        ("FP16", [{"v": 1}], ["element 0 is {'v': 1} (an object)"]),
        ("BYTES", ["a", 7], ["is BYTES but data element 1 is 7 (an integer)", "strings"]),
    ],
)
def test_wrong_element_types(datatype: str, data: list[Any], fragments: list[str]) -> None:
    refused(body(tensor(datatype, [len(data)], data)), "input 'x'", *fragments)


@pytest.mark.parametrize(
    ("datatype", "data", "fragment"),
    [
        ("UINT8", [1, 256], "element 1 is 256, outside [0, 255]"),
        ("UINT8", [-1], "element 0 is -1, outside [0, 255]"),
        ("INT8", [0, 0, -129], "element 2 is -129, outside [-128, 127]"),
        ("INT16", [32768], "outside [-32768, 32767]"),
        ("UINT32", [2**32], "outside [0, 4294967295]"),
        ("INT32", [2**31], "outside [-2147483648, 2147483647]"),
        ("INT64", [1, 2**63], "element 1 is 9223372036854775808"),
        ("INT64", [-1, 2**64 - 1], "element 1 is 18446744073709551615"),
        ("UINT64", [-1, 2**64 - 1], "element 0 is -1, outside [0, 18446744073709551615]"),
    ],
)
def test_integers_never_wrap(datatype: str, data: list[int], fragment: str) -> None:
    refused(body(tensor(datatype, [len(data)], data)), f"input 'x' is {datatype}", fragment)


def test_integers_beyond_64_bits_are_reported_as_out_of_range() -> None:
    # orjson reads integers beyond the 64-bit range as floats.
    raw = body(tensor("INT64", [2], [1, 0])).replace(b"[1,0]", b"[1,18446744073709551616]")
    refused(raw, "element 1 is 18446744073709551616, outside [-9223372036854775808")


def test_full_uint64_range_is_exact() -> None:
    # Left to infer, numpy turns [1, 2**64 - 1] into float64 and loses digits.
    request = decode_infer_request(body(tensor("UINT64", [3], [1, 2**63, 2**64 - 1])))
    assert request.inputs[0].data.tolist() == [1, 2**63, 2**64 - 1]


@pytest.mark.parametrize(
    ("datatype", "value", "fragment"),
    [
        ("FP16", 70000, "beyond its largest value 65504"),
        ("FP32", 1e39, "beyond its largest value 3.40282e+38"),
    ],
)
def test_floats_never_overflow_to_infinity(datatype: str, value: float, fragment: str) -> None:
    refused(
        body(tensor(datatype, [2], [1.0, value])),
        f"input 'x' is {datatype} but data element 1",
        fragment,
    )


def test_duplicate_input_names() -> None:
    raw = body(tensor("FP32", [1], [1]), tensor("FP32", [1], [2]))
    refused(raw, "input 'x' appears more than once")


@pytest.mark.parametrize(
    ("outputs", "fragment"),
    [
        ("y", '"outputs" must be an array'),
        ([{"nam": "y"}], 'outputs[0] must be an object with a non-empty "name"'),
        (["y"], "outputs[0] must be an object"),
        ([{"name": "y"}, {"name": "y"}], "output 'y' is requested more than once"),
        ([{"name": "y", "parameters": [1]}], "output 'y' \"parameters\" must be a JSON object"),
    ],
)
def test_bad_requested_outputs(outputs: Any, fragment: str) -> None:
    refused(body(tensor("FP32", [1], [1]), outputs=outputs), fragment)


def test_parameters_must_be_objects() -> None:
    refused(
        body(tensor("FP32", [1], [1]), parameters=[1]), 'request "parameters" must be a JSON object'
    )
    refused(body(tensor("FP32", [1], [1], parameters="x")), "input 'x' \"parameters\" must be")


def test_binary_and_shared_memory_extensions_are_refused() -> None:
    # What tritonclient and KServe's client send by default from set_data_from_numpy.
    raw = body(
        {"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
    )
    refused(raw, "input 'x'", "binary tensor data is not supported; send JSON data")
    raw_with_tail = raw + b"\x00\x00\x80?\x00\x00\x00@"
    refused(raw_with_tail, "8 bytes follow the JSON object", "binary tensor data is not supported")
    raw = body(
        {"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"shared_memory_region": "r"}}
    )
    refused(raw, "input 'x'", "shared-memory tensors are not supported")


def test_too_many_values_is_payload_too_large() -> None:
    raw = body(tensor("FP32", [4, 5], [0.0] * 20), tensor("INT8", [3, 3], [0] * 9, name="z"))
    with pytest.raises(PayloadTooLargeError) as info:
        decode_infer_request(raw, max_elements=25)
    assert "input 'z' with shape [3, 3] brings the request to 29 tensor values" in str(info.value)
    assert "limit of 25" in str(info.value)
    assert len(decode_infer_request(raw, max_elements=29).inputs) == 2
    # The declared shape is checked before any data is converted.
    huge = body(tensor("FP32", [10**6, 10**6], [0.0]))
    refused(huge, "10000000000", error=PayloadTooLargeError)


def test_empty_tensors_decode() -> None:
    request = decode_infer_request(
        body(tensor("FP32", [0, 3], []), tensor("BYTES", [0], [], name="s"))
    )
    assert request.inputs[0].data.shape == (0, 3) and request.inputs[0].data.dtype == np.float32
    assert request.inputs[1].data.dtype == object


# --- check_inputs ------------------------------------------------------------------

SIGNATURE = Signature(
    inputs=(TensorSpec("x", "FP32", (-1, 3)), TensorSpec("ids", "INT64", (-1,))),
    outputs=(TensorSpec("score", "FP32", (-1,)), TensorSpec("label", "BYTES", (-1,))),
)


def request_of(outputs: tuple[str, ...] = (), **arrays: Any) -> InferRequest:
    inputs = tuple(
        InferInput(name, "FP64", np.shape(value), np.asarray(value))
        for name, value in arrays.items()
    )
    return InferRequest(id=None, inputs=inputs, outputs=outputs)


def good(**overrides: Any) -> dict[str, Any]:
    return {"x": np.ones((2, 3), dtype=np.float64), "ids": np.array([1, 2]), **overrides}


def check_refused(request: InferRequest, *fragments: str, allow_non_finite: bool = False) -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_inputs(request, SIGNATURE, allow_non_finite=allow_non_finite)
    assert not isinstance(info.value, SignatureError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_check_inputs_casts_to_the_signature() -> None:
    prepared = check_inputs(request_of(**good()), SIGNATURE)
    assert prepared["x"].dtype == np.float32 and prepared["ids"].dtype == np.int64


def test_check_inputs_from_a_decoded_request() -> None:
    raw = body(tensor("FP32", [1, 3], [1, 2, 3]), tensor("INT64", [1], [7], name="ids"))
    prepared = check_inputs(decode_infer_request(raw), SIGNATURE)
    np.testing.assert_array_equal(prepared["x"], [[1, 2, 3]])


def test_signature_errors_become_invalid_request_errors_with_the_same_message() -> None:
    with pytest.raises(InvalidRequestError) as info:
        check_inputs(request_of(x=np.ones((2, 3))), SIGNATURE)
    assert isinstance(info.value.__cause__, SignatureError)
    assert str(info.value) == str(info.value.__cause__)
    assert "missing ['ids']" in str(info.value)


def test_check_inputs_refusals() -> None:
    check_refused(request_of(**good(extra=np.ones(1))), "unexpected ['extra']")
    check_refused(
        request_of(**good(x=np.ones(3))), "input 'x' must have shape [-1, 3]", "found [3]"
    )
    check_refused(request_of(**good(ids=np.array([1.5]))), "input 'ids' must be INT64", "float64")
    check_refused(
        request_of(("score", "proba"), **good()),
        "requested outputs ['proba'] are not outputs",
        "['score', 'label']",
    )


def test_non_finite_values_are_refused_with_their_row() -> None:
    x = np.ones((5, 3))
    x[3, 1] = np.nan
    message = "input 'x' holds NaN or infinity at row 3; send finite numbers"
    check_refused(
        request_of(**good(x=x)), message, "(this endpoint does not accept non-finite values)"
    )
    x[3, 1] = -np.inf
    check_refused(request_of(**good(x=x)), message)


def test_non_finite_values_pass_when_allowed() -> None:
    x = np.ones((5, 3))
    x[0, 0], x[4, 2] = np.nan, np.inf
    prepared = check_inputs(request_of(**good(x=x)), SIGNATURE, allow_non_finite=True)
    assert np.isnan(prepared["x"][0, 0]) and np.isinf(prepared["x"][4, 2])


def test_narrowing_overflow_is_refused_even_when_non_finite_is_allowed() -> None:
    x = np.ones((3, 3))
    x[2, 0] = 1e39  # fine as FP64, infinity as FP32
    check_refused(
        request_of(**good(x=x)),
        "input 'x' holds values too large for FP32 at row 2",
        allow_non_finite=True,
    )


def test_requested_outputs_that_exist_pass() -> None:
    check_inputs(request_of(("label",), **good()), SIGNATURE)


# --- select_outputs and encoders ----------------------------------------------------


def test_select_outputs() -> None:
    outputs = {"a": np.zeros(1), "b": np.ones(1)}
    assert list(select_outputs(outputs, ())) == ["a", "b"]
    assert list(select_outputs(outputs, ["b", "a"])) == ["b", "a"]
    with pytest.raises(ModelFailedError, match=r"did not return the requested outputs \['c'\]"):
        select_outputs(outputs, ["c"])


def test_response_encodes_numpy_scalars_nan_bytes_and_byte_order() -> None:
    outputs: dict[str, Any] = {
        "nan": np.array([1.0, np.nan, np.inf], dtype=np.float32),
        "big_endian": np.array([1, 2], dtype=">i4"),
        "scalar": np.float64(2.5),
        "text": np.array(["a", b"b", "\u00e9".encode()], dtype=object),
        "unicode": np.array(["x", "yz"]),
        "bytes": np.array([b"x"]),
        "labels": np.array([1, None], dtype=object),
    }
    doc = orjson.loads(
        encode_infer_response(
            model_name="m",
            model_version="1",
            request_id=None,
            outputs=outputs,
            parameters={"n": np.int64(3)},
        )
    )
    assert "id" not in doc
    assert doc["parameters"] == {"n": 3}
    got = {out["name"]: (out["datatype"], out["shape"], out["data"]) for out in doc["outputs"]}
    assert got == {
        "nan": ("FP32", [3], [1.0, None, None]),  # JSON has no NaN: null, as orjson writes it
        "big_endian": ("INT32", [2], [1, 2]),
        "scalar": ("FP64", [], [2.5]),
        "text": ("BYTES", [3], ["a", "b", "\u00e9"]),
        "unicode": ("BYTES", [2], ["x", "yz"]),
        "bytes": ("BYTES", [1], ["x"]),
        "labels": ("BYTES", [2], ["1", "None"]),
    }


def test_outputs_json_cannot_carry_are_model_failures() -> None:
    with pytest.raises(ModelFailedError, match="output 'raw' holds bytes that are not UTF-8"):
        encode_infer_response(
            model_name="m",
            model_version="1",
            request_id=None,
            outputs={"raw": np.array([b"\xff"], dtype=object)},
        )
    with pytest.raises(ModelFailedError, match="output 'c' cannot be sent"):
        encode_infer_response(
            model_name="m", model_version="1", request_id=None, outputs={"c": np.array([1j])}
        )


def test_metadata_and_error_bodies() -> None:
    assert orjson.loads(encode_server_metadata("mlgate", "0.1.0", ["model_repository"])) == {
        "name": "mlgate",
        "version": "0.1.0",
        "extensions": ["model_repository"],
    }
    assert orjson.loads(
        encode_model_metadata(
            name="iris", versions=["1", "2"], platform="onnx", signature=SIGNATURE
        )
    ) == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "onnx",
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "ids", "datatype": "INT64", "shape": [-1]},
        ],
        "outputs": [
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    assert orjson.loads(encode_error('bad "x"\n')) == {"error": 'bad "x"\n'}
