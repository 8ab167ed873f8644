"""Flavors against tiny real models: detection, signatures, loading, refusals."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest

from mlgate.errors import ArtifactError, SignatureError, UnknownFlavorError, UntrustedArtifactError
from mlgate.registry.flavors import FLAVORS, Inspection, detect_flavor, flavor_named
from mlgate.registry.signature import Signature, TensorSpec
from tests.registry.conftest import Built

FOREST_TREE = "sklearn.tree._tree.Tree"

# fixture name -> (flavor, trusted types, expected signature)
CASES: dict[str, tuple[str, tuple[str, ...], Signature]] = {
    "onnx_classifier": (
        "onnx",
        (),
        Signature(
            inputs=(TensorSpec("x", "FP32", (-1, 4)),),
            outputs=(
                TensorSpec("probabilities", "FP32", (-1, 3)),
                TensorSpec("label", "INT64", (-1,)),
            ),
        ),
    ),
    "sklearn_classifier": (
        "sklearn",
        (),
        Signature(
            inputs=(TensorSpec("input", "FP64", (-1, 4)),),
            outputs=(
                TensorSpec("label", "BYTES", (-1,)),
                TensorSpec("probabilities", "FP64", (-1, 3)),
            ),
        ),
    ),
    "sklearn_regressor": (
        "sklearn",
        (FOREST_TREE,),
        Signature(
            inputs=(TensorSpec("input", "FP64", (-1, 4)),),
            outputs=(TensorSpec("prediction", "FP64", (-1,)),),
        ),
    ),
    "sklearn_pipeline": (
        "sklearn",
        ("numpy.sort",),
        Signature(
            inputs=(TensorSpec("input", "FP64", (-1, 4)),),
            outputs=(
                TensorSpec("label", "BOOL", (-1,)),
                TensorSpec("probabilities", "FP64", (-1, 2)),
            ),
        ),
    ),
    "lightgbm_regressor": (
        "lightgbm",
        (),
        Signature(
            inputs=(TensorSpec("input", "FP64", (-1, 5)),),
            outputs=(TensorSpec("prediction", "FP64", (-1,)),),
        ),
    ),
    "lightgbm_multiclass": (
        "lightgbm",
        (),
        Signature(
            inputs=(TensorSpec("input", "FP64", (-1, 5)),),
            outputs=(TensorSpec("prediction", "FP64", (-1, 3)),),
        ),
    ),
}


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[Built, str, tuple[str, ...], Signature]:
    built: Built = request.getfixturevalue(request.param)
    return (built, *CASES[request.param])


def test_detect_picks_the_flavor_and_only_one_sniffs(case: Any) -> None:
    built, flavor, _, _ = case
    assert detect_flavor(built.data).name == flavor
    assert [f.name for f in FLAVORS if f.sniff(built.data)] == [flavor]


def test_inspect_infers_signature_and_records_trust(case: Any) -> None:
    built, flavor, trusted, signature = case
    inspection = flavor_named(flavor).inspect(built.data, trusted_types=trusted)
    assert inspection.flavor == flavor
    assert inspection.signature == signature
    assert inspection.trusted_types == trusted


def test_load_predicts_like_the_original(case: Any) -> None:
    built, flavor, trusted, _ = case
    impl = flavor_named(flavor)
    model = impl.load(built.data, impl.inspect(built.data, trusted_types=trusted))
    got = model.predict(built.inputs)
    assert sorted(got) == sorted(built.expected)
    for name, want in built.expected.items():
        assert got[name].shape == want.shape
        if want.dtype.kind in "fc":
            np.testing.assert_allclose(got[name], want, rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_array_equal(got[name], want)


def test_inspection_round_trips_through_json_and_loads(case: Any) -> None:
    built, flavor, trusted, _ = case
    impl = flavor_named(flavor)
    inspection = impl.inspect(built.data, trusted_types=trusted)
    again = Inspection.from_json(json.loads(json.dumps(inspection.to_json())))
    assert again == inspection
    assert impl.load(built.data, again).signature == inspection.signature


def test_metadata(
    onnx_classifier: Built,
    sklearn_classifier: Built,
    sklearn_regressor: Built,
    lightgbm_multiclass: Built,
) -> None:
    onnx_meta = flavor_named("onnx").inspect(onnx_classifier.data).metadata
    assert onnx_meta["opset_imports"] == {"ai.onnx": 17}
    assert onnx_meta["ir_version"] == 8
    assert onnx_meta["producer_name"] == "mlgate-tests"

    import sklearn

    clf = flavor_named("sklearn").inspect(sklearn_classifier.data).metadata
    assert clf["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert clf["sklearn_version"] == sklearn.__version__
    assert clf["classes"] == ["cat", "dog", "eel"]
    reg = flavor_named("sklearn").inspect(sklearn_regressor.data, trusted_types=[FOREST_TREE])
    assert reg.metadata["estimator"] == "sklearn.ensemble._forest.RandomForestRegressor"

    lgb = flavor_named("lightgbm").inspect(lightgbm_multiclass.data).metadata
    assert str(lgb["objective"]).startswith("multiclass")
    assert lgb["num_class"] == 3
    assert lgb["num_trees"] == 15
    assert lgb["feature_names"] == [f"Column_{i}" for i in range(5)]


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (np.random.default_rng(1).bytes(4096), "--flavor"),
        (b"", "empty"),
        (b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00", "skops.io.dump"),
        (b"tree\nnot a lightgbm model", "--flavor"),
    ],
)
def test_unknown_format(data: bytes, hint: str) -> None:
    with pytest.raises(UnknownFlavorError, match="onnx, sklearn, lightgbm") as info:
        detect_flavor(data)
    assert hint in str(info.value)


def test_flavor_named_unknown() -> None:
    assert flavor_named("onnx").name == "onnx"
    with pytest.raises(UnknownFlavorError, match="'nope'.*onnx, sklearn, lightgbm"):
        flavor_named("nope")


@pytest.mark.parametrize("fixture", ["onnx_classifier", "sklearn_classifier", "lightgbm_regressor"])
@pytest.mark.parametrize("fraction", [0.02, 0.3, 0.6])
def test_truncated_file_is_detected_and_refused(
    request: pytest.FixtureRequest, fixture: str, fraction: float
) -> None:
    data = request.getfixturevalue(fixture).data
    cut = data[: int(len(data) * fraction)]
    flavor = CASES[fixture][0]
    with pytest.raises(ArtifactError):
        flavor_named(flavor).inspect(cut)
    if fraction > 0.02:  # a few bytes may not be enough to recognise the format
        assert detect_flavor(cut).name == flavor


def test_truncated_lightgbm_never_reaches_lightgbm_parser(lightgbm_regressor: Built) -> None:
    """LightGBM aborts the process on such text, so every cut must be refused first."""
    data = lightgbm_regressor.data
    trees = range(data.index(b"Tree=0"), data.index(b"end of trees"), 7)
    params = range(data.index(b"parameters:\n") + 12, data.index(b"end of parameters") + 16, 11)
    for cut in [*trees, *params]:
        with pytest.raises(ArtifactError, match="damaged"):
            flavor_named("lightgbm").inspect(data[:cut])


@pytest.mark.parametrize("key", [b"left_child=", b"right_child=", b"split_feature="])
def test_lightgbm_out_of_range_index_refused(lightgbm_regressor: Built, key: bytes) -> None:
    """Such indices make LightGBM read outside its arrays when predicting."""
    data = lightgbm_regressor.data
    at = data.index(key, data.index(b"Tree=0")) + len(key)
    width = data.index(b" ", at) - at
    # Same byte length, so the tree_sizes stay consistent and only the index is wrong.
    patched = data[:at] + b"9" * width + data[at + width :]
    with pytest.raises(ArtifactError, match="damaged"):
        flavor_named("lightgbm").inspect(patched)


@pytest.mark.parametrize(
    ("fixture", "wrong"),
    [
        ("onnx_classifier", "sklearn"),
        ("onnx_classifier", "lightgbm"),
        ("sklearn_classifier", "onnx"),
        ("sklearn_classifier", "lightgbm"),
        ("lightgbm_regressor", "onnx"),
        ("lightgbm_regressor", "sklearn"),
    ],
)
def test_forced_wrong_flavor(request: pytest.FixtureRequest, fixture: str, wrong: str) -> None:
    data = request.getfixturevalue(fixture).data
    message = {"onnx": "as an ONNX model", "sklearn": "not a skops file", "lightgbm": "not a Light"}
    with pytest.raises(ArtifactError, match=message[wrong]):
        flavor_named(wrong).inspect(data)


@pytest.mark.parametrize("fixture", ["sklearn_regressor", "sklearn_pipeline"])
def test_untrusted_types_refused_until_trusted(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    data = request.getfixturevalue(fixture).data
    (needed,) = CASES[fixture][1]
    flavor = flavor_named("sklearn")
    with pytest.raises(UntrustedArtifactError, match=f"--trust {needed} if you trust"):
        flavor.inspect(data)
    with pytest.raises(UntrustedArtifactError):
        flavor.inspect(data, trusted_types=["something.Else"])
    inspection = flavor.inspect(data, trusted_types=["something.Else", needed])
    assert inspection.trusted_types == (needed,)  # only what was needed is recorded


def test_skops_file_without_schema(tmp_path: Any) -> None:
    import zipfile

    path = tmp_path / "not-skops.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    data = path.read_bytes()
    assert detect_flavor(data).name == "sklearn"
    with pytest.raises(ArtifactError, match="skops"):
        flavor_named("sklearn").inspect(data)


def test_onnx_non_tensor_output_refused() -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("SequenceConstruct", ["x"], ["seq"])],
        "seq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    onnx.checker.check_model(model)
    with pytest.raises(ArtifactError, match="expected a tensor"):
        flavor_named("onnx").inspect(data)


def test_lightgbm_missing_gives_install_hint(
    lightgbm_regressor: Built, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    assert detect_flavor(lightgbm_regressor.data).name == "lightgbm"
    with pytest.raises(ArtifactError, match=r"pip install 'mlgate\[lightgbm\]'"):
        flavor_named("lightgbm").inspect(lightgbm_regressor.data)


def test_load_refuses_inspection_of_other_flavor(onnx_classifier: Built) -> None:
    inspection = flavor_named("onnx").inspect(onnx_classifier.data)
    with pytest.raises(ArtifactError, match="registered as 'onnx'"):
        flavor_named("sklearn").load(onnx_classifier.data, inspection)


def test_onnx_load_refuses_signature_that_does_not_fit(onnx_classifier: Built) -> None:
    inspection = flavor_named("onnx").inspect(onnx_classifier.data)
    wrong = Inspection(
        flavor="onnx",
        signature=Signature(
            inputs=(TensorSpec("features", "FP32", (-1, 4)),),
            outputs=inspection.signature.outputs,
        ),
        metadata=inspection.metadata,
    )
    with pytest.raises(SignatureError, match="do not fit"):
        flavor_named("onnx").load(onnx_classifier.data, wrong)


# --- predict input checks -------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_loaded(onnx_classifier: Built) -> Any:
    flavor = flavor_named("onnx")
    return flavor.load(onnx_classifier.data, flavor.inspect(onnx_classifier.data))


def test_predict_casts_within_kind(onnx_loaded: Any, onnx_classifier: Built) -> None:
    as_fp64 = {"x": onnx_classifier.inputs["x"].astype(np.float64)}
    got = onnx_loaded.predict(as_fp64)["probabilities"]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, onnx_classifier.expected["probabilities"], rtol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ({}, "missing \\['x'\\]"),
        ({"x": np.zeros((2, 4)), "y": np.zeros(1)}, "unexpected \\['y'\\]"),
        ({"x": np.zeros((2, 5))}, "shape"),
        ({"x": np.zeros(4)}, "shape"),
        ({"x": np.array([["a"] * 4])}, "FP32"),
    ],
)
def test_predict_rejects_inputs_that_do_not_fit(onnx_loaded: Any, inputs: Any, match: str) -> None:
    with pytest.raises(SignatureError, match=match):
        onnx_loaded.predict(inputs)


def test_integer_narrowing_is_range_checked() -> None:
    from mlgate.registry.flavors.base import prepare_inputs

    signature = Signature(
        inputs=(TensorSpec("n", "INT8", (-1,)),), outputs=(TensorSpec("o", "FP32", ()),)
    )
    assert prepare_inputs(signature, {"n": np.array([1, -3])})["n"].dtype == np.int8
    with pytest.raises(SignatureError, match="outside"):
        prepare_inputs(signature, {"n": np.array([1, 300])})
    with pytest.raises(SignatureError, match="INT8"):
        prepare_inputs(signature, {"n": np.array([1.5])})


def test_inspection_rejects_non_json_metadata() -> None:
    signature = Signature(inputs=(), outputs=(TensorSpec("o", "FP32", ()),))
    with pytest.raises(ArtifactError, match="ndarray"):
        Inspection("onnx", signature, {"bad": np.zeros(1)})
    with pytest.raises(ArtifactError, match="nan"):
        Inspection("onnx", signature, {"bad": [float("nan")]})
    with pytest.raises(ArtifactError, match="damaged"):
        Inspection.from_json({"flavor": "onnx"})
