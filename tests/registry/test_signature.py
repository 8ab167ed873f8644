"""Signatures: JSON round trips for anything valid, clear refusals for the rest."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import SignatureError
from mlgate.registry.signature import (
    DATATYPES,
    Signature,
    TensorSpec,
    datatype_of,
    numpy_dtype,
)

names = st.text(min_size=1, max_size=12)
specs = st.builds(
    TensorSpec,
    name=names,
    datatype=st.sampled_from(DATATYPES),
    shape=st.lists(st.integers(min_value=-1, max_value=2**40), max_size=5).map(tuple),
)


def _unique(items: list[TensorSpec]) -> tuple[TensorSpec, ...]:
    return tuple({spec.name: spec for spec in items}.values())


signatures = st.builds(
    Signature,
    inputs=st.lists(specs, max_size=4).map(_unique),
    outputs=st.lists(specs, min_size=1, max_size=4).map(_unique),
)


@given(specs)
def test_tensor_spec_round_trips(spec: TensorSpec) -> None:
    assert TensorSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


@given(signatures)
def test_signature_round_trips(signature: Signature) -> None:
    data = json.loads(json.dumps(signature.to_json()))
    assert Signature.from_json(data) == signature


def test_json_form_is_oip_metadata() -> None:
    spec = TensorSpec("x", "FP32", (-1, 4))
    assert spec.to_json() == {"name": "x", "datatype": "FP32", "shape": [-1, 4]}
    assert Signature((spec,), (spec,)).to_json() == {
        "inputs": [spec.to_json()],
        "outputs": [spec.to_json()],
    }


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"name": "", "datatype": "FP32", "shape": [1]}, "non-empty"),
        ({"name": 3, "datatype": "FP32", "shape": [1]}, "string"),
        ({"name": "x", "datatype": "FLOAT", "shape": [1]}, "expected one of BOOL"),
        ({"name": "x", "datatype": "fp32", "shape": [1]}, "upper case"),
        ({"name": "x", "datatype": "FP32", "shape": [-2]}, "-1 for a dynamic"),
        ({"name": "x", "datatype": "FP32", "shape": [1.0]}, "integers"),
        ({"name": "x", "datatype": "FP32", "shape": [True]}, "integers"),
        ({"name": "x", "datatype": "FP32", "shape": "1,2"}, "list of integers"),
        ({"name": "x", "datatype": "FP32"}, "missing \\['shape'\\]"),
        ({"name": "x", "dtype": "FP32", "shape": []}, "unexpected \\['dtype'\\]"),
        (["x", "FP32", [1]], "JSON object"),
    ],
)
def test_bad_tensor_specs_are_refused(data: Any, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        TensorSpec.from_json(data)


def test_zero_and_scalar_shapes_are_valid() -> None:
    assert TensorSpec("x", "BOOL", (0, -1)).shape == (0, -1)
    assert TensorSpec("x", "BOOL", ()).shape == ()


def _spec(name: str) -> dict[str, object]:
    return {"name": name, "datatype": "FP32", "shape": [-1]}


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"inputs": [_spec("a"), _spec("a")], "outputs": [_spec("o")]}, "unique.*'a'"),
        ({"inputs": [_spec("a")], "outputs": [_spec("o"), _spec("o")]}, "unique.*'o'"),
        ({"inputs": [_spec("a")], "outputs": []}, "no outputs"),
        ({"inputs": _spec("a"), "outputs": [_spec("o")]}, "list of tensor specs"),
        ({"inputs": []}, "missing \\['outputs'\\]"),
        ({"inputs": [], "outputs": [_spec("o")], "extra": 1}, "unexpected \\['extra'\\]"),
        (None, "JSON object"),
    ],
)
def test_bad_signatures_are_refused(data: Any, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        Signature.from_json(data)


def test_input_and_output_may_share_a_name() -> None:
    spec = TensorSpec("x", "FP32", (-1,))
    assert Signature((spec,), (spec,)).inputs == (spec,)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_datatype_numpy_round_trip(datatype: str) -> None:
    assert datatype_of(numpy_dtype(datatype)) == datatype


@pytest.mark.parametrize(
    ("dtype", "datatype"),
    [
        (np.dtype("<U7"), "BYTES"),
        (np.dtype("S3"), "BYTES"),
        (np.dtype(object), "BYTES"),
        (np.dtype(">f8"), "FP64"),
        (np.dtype(np.intp), "INT64"),
        (np.dtype(bool), "BOOL"),
    ],
)
def test_datatype_of(dtype: np.dtype[Any], datatype: str) -> None:
    assert datatype_of(dtype) == datatype


def test_bytes_is_numpy_object() -> None:
    assert numpy_dtype("BYTES") == np.dtype(object)


@pytest.mark.parametrize("dtype", [np.complex128, "datetime64[s]", [("a", "i4")]])
def test_datatype_of_refuses_what_oip_cannot_carry(dtype: Any) -> None:
    with pytest.raises(SignatureError, match="no Open Inference Protocol datatype"):
        datatype_of(np.dtype(dtype))


def test_numpy_dtype_refuses_unknown_datatype() -> None:
    with pytest.raises(SignatureError, match="BF16"):
        numpy_dtype("BF16")
