"""sklearn -> ONNX: the parent's interface, its answers, and the two known traps."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from mlgate.errors import ConversionError, OptimizeError
from mlgate.optimize import dedupe_opsets, sklearn_to_onnx
from mlgate.optimize.convert import require_extra
from mlgate.optimize.quantize import quantize_dynamic_int8
from mlgate.registry.flavors import flavor_named
from mlgate.registry.flavors.sklearn import _signature
from mlgate.registry.signature import Signature, TensorSpec
from tests.optimize.conftest import WIDTH, Trained


def _run(data: bytes, x: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    """Run the bytes with a bare onnxruntime session: independent of mlgate's flavor."""
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


@pytest.mark.parametrize("which", ["mlp", "hgb"])
def test_classifier_serves_parent_names_types_and_answers(
    which: str, request: pytest.FixtureRequest
) -> None:
    trained: Trained = request.getfixturevalue(which)
    signature = _signature(trained.estimator)
    data = sklearn_to_onnx(trained.estimator, signature)
    assert flavor_named("onnx").inspect(data).signature == signature
    x = trained.x.copy()
    x[::7, 0] = np.nan if which == "hgb" else x[::7, 0]  # HGB routes missing values
    out = _run(data, x)
    assert out["label"].dtype == np.int64 and out["probabilities"].dtype == np.float64
    np.testing.assert_array_equal(out["label"], trained.estimator.predict(x))
    np.testing.assert_allclose(out["probabilities"], trained.estimator.predict_proba(x), atol=1e-4)


def test_regressor_prediction_is_flat_fp64_and_close(ridge: Trained) -> None:
    signature = _signature(ridge.estimator)
    data = sklearn_to_onnx(ridge.estimator, signature)
    out = _run(data, ridge.x)
    assert out["prediction"].shape == (len(ridge.x),) and out["prediction"].dtype == np.float64
    expected = ridge.estimator.predict(ridge.x)
    np.testing.assert_allclose(out["prediction"], expected, atol=1e-4 * np.abs(expected).max())


def test_pipeline_with_string_classes() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = np.random.default_rng(3).normal(size=(200, 4))
    y = np.where(x[:, 0] > 0, "yes", "no")
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    signature = _signature(model)
    data = sklearn_to_onnx(model, signature)
    assert flavor_named("onnx").inspect(data).signature == signature
    np.testing.assert_array_equal(_run(data, x)["label"], model.predict(x))


def test_histgradientboosting_bool_trap_is_worked_around(hgb: Trained) -> None:
    """Stock skl2onnx 1.20 + onnx 1.23 fail on HGB; the converter here does not."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convert_sklearn(
                hgb.estimator,
                initial_types=[("input", FloatTensorType([None, WIDTH]))],
                options={id(hgb.estimator): {"zipmap": False}},
            )
    except ValueError as exc:  # the trap, as the issue reported it
        assert "Expected an int, got a boolean" in str(exc.__cause__ or exc)
    # Whether or not a newer skl2onnx fixed it, ours converts and keeps the answers.
    data = sklearn_to_onnx(hgb.estimator, _signature(hgb.estimator))
    np.testing.assert_array_equal(_run(data, hgb.x)["label"], hgb.estimator.predict(hgb.x))


def test_hgb_regressor_converts() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    x = np.random.default_rng(4).normal(size=(200, 3))
    model = HistGradientBoostingRegressor(max_iter=10).fit(x, x[:, 0] * 2)
    data = sklearn_to_onnx(model, _signature(model))
    np.testing.assert_allclose(_run(data, x)["prediction"], model.predict(x), atol=1e-4)


def test_converted_graph_lists_each_domain_once(hgb: Trained) -> None:
    model = onnx.load_model_from_string(sklearn_to_onnx(hgb.estimator, _signature(hgb.estimator)))
    domains = [entry.domain for entry in model.opset_import]
    assert len(domains) == len(set(domains))


def test_unsupported_estimator_names_type_and_what_is_supported() -> None:
    from sklearn.kernel_ridge import KernelRidge

    x = np.random.default_rng(5).normal(size=(30, 3))
    model = KernelRidge().fit(x, x[:, 0])
    with pytest.raises(ConversionError, match=r"cannot convert KernelRidge .*Supported: "):
        sklearn_to_onnx(model, _signature(model))


def test_signature_that_is_not_sklearn_is_refused(mlp: Trained) -> None:
    other = Signature(
        inputs=(TensorSpec("x", "FP32", (-1, WIDTH)),),
        outputs=(TensorSpec("label", "INT64", (-1,)),),
    )
    with pytest.raises(ConversionError, match="single FP64"):
        sklearn_to_onnx(mlp.estimator, other)


# -- the duplicated default domain --------------------------------------------------------


def _matmul_model(opsets: list[tuple[str, int]]) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "W"], ["y"])],
        "matmul",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[numpy_helper.from_array(np.ones((4, 3), np.float32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(*opsets[0])])
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets[1:])
    return model


def test_duplicated_default_domain_breaks_the_quantizer_and_dedupe_fixes_it() -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    crafted = _matmul_model([("", 17), ("", 15)])
    with tempfile.TemporaryDirectory() as name:
        source = Path(name) / "m.onnx"
        source.write_bytes(crafted.SerializeToString())
        with pytest.raises(ValueError, match="Failed to find proper ai.onnx domain"):
            quantize_dynamic(source, Path(name) / "q.onnx", weight_type=QuantType.QInt8)
    fixed = dedupe_opsets(crafted)
    assert [(e.domain, e.version) for e in fixed.opset_import] == [("", 17)]
    quantized = quantize_dynamic_int8(crafted.SerializeToString())  # dedupes first
    ops = {n.op_type for n in onnx.load_model_from_string(quantized).graph.node}
    assert "MatMulInteger" in ops


_DOMAINS = st.sampled_from(["", "ai.onnx", "ai.onnx.ml", "com.microsoft"])


@given(st.lists(st.tuples(_DOMAINS, st.integers(1, 22)), min_size=1, max_size=8))
def test_dedupe_keeps_one_entry_per_domain_at_its_highest_version(
    opsets: list[tuple[str, int]],
) -> None:
    fixed = dedupe_opsets(_matmul_model(opsets))
    got = [(e.domain, e.version) for e in fixed.opset_import]
    expected: dict[str, int] = {}
    for domain, version in opsets:
        key = "" if domain == "ai.onnx" else domain
        expected[key] = max(expected.get(key, 0), version)
    assert sorted(got) == sorted(expected.items())
    assert len({d for d, _ in got}) == len(got)


def test_missing_optional_dependency_names_the_extra() -> None:
    with pytest.raises(OptimizeError, match=r"pip install 'mlgate\[optimize\]'"):
        require_extra("mlgate_no_such_converter")


@pytest.mark.parametrize("which", ["ridge", "tree"])
def test_multi_output_regressors_are_refused_not_interleaved(which: str) -> None:
    from sklearn.linear_model import Ridge
    from sklearn.tree import DecisionTreeRegressor

    x = np.random.default_rng(6).normal(size=(60, 3))
    model = (Ridge() if which == "ridge" else DecisionTreeRegressor()).fit(x, x[:, :2])
    signature = _signature(model)
    if which == "ridge":  # Ridge has no n_outputs_: its signature claims one value per row
        assert signature.outputs[0].shape == (-1,)
    with pytest.raises(ConversionError, match="multi-output regressors cannot be optimised yet"):
        sklearn_to_onnx(model, signature)


def test_linear_svc_converts_without_the_zipmap_option() -> None:
    from sklearn.svm import LinearSVC

    x = np.random.default_rng(7).normal(size=(100, 3))
    model = LinearSVC().fit(x, x[:, 0] + x[:, 1] > 0)
    signature = _signature(model)
    data = sklearn_to_onnx(model, signature)
    assert flavor_named("onnx").inspect(data).signature == signature
    np.testing.assert_array_equal(_run(data, x)["label"], model.predict(x))
