"""int8 dynamic, static QDQ and float16: interface kept, answers close, bad samples refused."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import onnx
import pytest

from mlgate.errors import OptimizeError
from mlgate.optimize import quantize, sklearn_to_onnx
from mlgate.registry.flavors import flavor_named
from mlgate.registry.flavors.sklearn import _signature
from tests.optimize.conftest import WIDTH, Trained


@pytest.fixture(scope="module")
def mlp_onnx(mlp: Trained) -> bytes:
    return sklearn_to_onnx(mlp.estimator, _signature(mlp.estimator))


def _ops(data: bytes) -> set[str]:
    return {node.op_type for node in onnx.load_model_from_string(data).graph.node}


def _labels(data: bytes, x: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    flavor = flavor_named("onnx")
    return flavor.load(data, flavor.inspect(data)).predict({"input": x})["label"]


def test_dynamic_int8_quantizes_matmuls_and_keeps_interface(mlp: Trained, mlp_onnx: bytes) -> None:
    data = quantize.quantize_dynamic_int8(mlp_onnx)
    assert "MatMulInteger" in _ops(data) and len(data) < len(mlp_onnx)
    signature = _signature(mlp.estimator)
    assert flavor_named("onnx").inspect(data).signature == signature
    assert np.mean(_labels(data, mlp.x) == mlp.estimator.predict(mlp.x)) >= 0.99


def test_static_int8_is_qdq_and_calibrated(mlp: Trained, mlp_onnx: bytes) -> None:
    signature = _signature(mlp.estimator)
    data = quantize.quantize_static_int8(mlp_onnx, signature, mlp.x[:128])
    assert {"QuantizeLinear", "DequantizeLinear"} <= _ops(data)
    assert flavor_named("onnx").inspect(data).signature == signature
    assert np.mean(_labels(data, mlp.x) == mlp.estimator.predict(mlp.x)) >= 0.99


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (np.zeros((10, WIDTH + 1)), r"shape \(10, 9\); expected \[rows, 8\]"),
        (np.zeros(WIDTH), r"shape \(8,\)"),
        (np.full((4, WIDTH), "a"), "dtype <U1; expected numbers"),
        (np.zeros((0, WIDTH)), "no rows"),
        (np.where(np.eye(WIDTH) > 0, np.nan, 0.0), "NaN or infinite value.*row 0, column 0"),
    ],
)
def test_bad_calibration_sample_names_the_mismatch(
    mlp: Trained, mlp_onnx: bytes, sample: Any, message: str
) -> None:
    with pytest.raises(OptimizeError, match=message):
        quantize.quantize_static_int8(mlp_onnx, _signature(mlp.estimator), sample)


def test_float16_halves_weights_and_keeps_io_types(mlp: Trained, mlp_onnx: bytes) -> None:
    data = quantize.to_float16(mlp_onnx)
    model = onnx.load_model_from_string(data)
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert flavor_named("onnx").inspect(data).signature == _signature(mlp.estimator)
    assert np.mean(_labels(data, mlp.x) == mlp.estimator.predict(mlp.x)) >= 0.99


def test_kinds_that_cannot_change_a_tree_ensemble_say_why(hgb: Trained) -> None:
    data = sklearn_to_onnx(hgb.estimator, _signature(hgb.estimator))
    assert "no MatMul" in str(quantize.skip_reason(data, quantize.INT8_DYNAMIC))
    assert "no MatMul" in str(quantize.skip_reason(data, quantize.INT8_STATIC))
    assert "TreeEnsembleClassifier" in str(quantize.skip_reason(data, quantize.FLOAT16))


def test_every_kind_applies_to_an_mlp(mlp_onnx: bytes) -> None:
    for kind in (quantize.INT8_DYNAMIC, quantize.INT8_STATIC, quantize.FLOAT16):
        assert quantize.skip_reason(mlp_onnx, kind) is None


def test_quantizer_advice_is_silenced_only_during_the_call(
    mlp: Trained, mlp_onnx: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    root = logging.getLogger()
    filters = list(root.filters)
    with caplog.at_level(logging.WARNING):
        quantize.quantize_static_int8(mlp_onnx, _signature(mlp.estimator), mlp.x[:64])
        quantize.quantize_dynamic_int8(mlp_onnx)
        logging.warning("Please consider this: our own root-logger warnings still show")
    assert [r.getMessage() for r in caplog.records] == [
        "Please consider this: our own root-logger warnings still show"
    ]
    assert root.filters == filters
