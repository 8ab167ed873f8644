"""Tiny real models, built at test time so no binary fixture is ever committed.

Each fixture trains or assembles a model, writes it to a temporary file the way
a user would, and returns the file's bytes together with sample inputs and the
outputs the original in-memory model gives for them, so tests can compare what
mlgate loads against the real thing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@dataclass(frozen=True)
class Built:
    """A model file plus what the original model predicts for ``inputs``."""

    path: Path
    inputs: dict[str, np.ndarray[Any, Any]]
    expected: dict[str, np.ndarray[Any, Any]]

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def _rows(n: int = 100, width: int = 4, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).normal(size=(n, width))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def onnx_classifier(model_dir: Path) -> Built:
    """Linear softmax classifier, dynamic batch: x[N,4] FP32 -> probabilities[N,3], label[N]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3)
    bias = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "linear_softmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(bias, "B")],
    )
    # An older IR/opset than onnx's default keeps the file loadable by older onnxruntimes.
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mlgate-tests"
    )
    model.ir_version = 8
    path = model_dir / "classifier.onnx"
    onnx.save_model(model, path)

    x = _rows(10).astype(np.float32)
    logits = x @ weights + bias
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = {
        "probabilities": exp / exp.sum(axis=1, keepdims=True),
        "label": logits.argmax(axis=1).astype(np.int64),
    }
    return Built(path, {"x": x}, expected)


def _skops(model_dir: Path, name: str, model: Any, x: np.ndarray[Any, Any]) -> Built:
    import skops.io

    path = model_dir / f"{name}.skops"
    skops.io.dump(model, path)
    expected = {"label" if hasattr(model, "classes_") else "prediction": model.predict(x)}
    if hasattr(model, "predict_proba"):
        expected["probabilities"] = model.predict_proba(x)
    return Built(path, {"input": x}, expected)


@pytest.fixture(scope="session")
def sklearn_classifier(model_dir: Path) -> Built:
    """LogisticRegression with string labels, so the label output is BYTES."""
    from sklearn.linear_model import LogisticRegression

    x = _rows()
    y = np.array(["cat", "dog", "eel"])[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0.5)]
    return _skops(model_dir, "logreg", LogisticRegression().fit(x, y), x[:10])


@pytest.fixture(scope="session")
def sklearn_regressor(model_dir: Path) -> Built:
    """RandomForestRegressor: skops does not trust its tree type by default."""
    from sklearn.ensemble import RandomForestRegressor

    x = _rows()
    model = RandomForestRegressor(n_estimators=3, max_depth=3, random_state=0)
    return _skops(model_dir, "forest", model.fit(x, x[:, 0] * 2 + x[:, 1]), x[:10])


@pytest.fixture(scope="session")
def sklearn_pipeline(model_dir: Path) -> Built:
    """A pipeline whose FunctionTransformer names a function skops does not trust."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    x = _rows()
    model = make_pipeline(FunctionTransformer(np.sort), LogisticRegression())
    return _skops(model_dir, "pipeline", model.fit(x, x[:, 0] > 0), x[:10])


def _booster(model_dir: Path, name: str, params: dict[str, Any], y: Callable[..., Any]) -> Built:
    import lightgbm

    x = _rows(width=5)
    booster = lightgbm.train(
        {"verbose": -1, "num_leaves": 4, "min_data_in_leaf": 5, **params},
        lightgbm.Dataset(x, y(x)),
        num_boost_round=5,
    )
    path = model_dir / f"{name}.txt"
    booster.save_model(path)
    return Built(path, {"input": x[:10]}, {"prediction": np.asarray(booster.predict(x[:10]))})


@pytest.fixture(scope="session")
def lightgbm_regressor(model_dir: Path) -> Built:
    return _booster(model_dir, "lgb_reg", {"objective": "regression"}, lambda x: x[:, 0] - x[:, 2])


@pytest.fixture(scope="session")
def lightgbm_multiclass(model_dir: Path) -> Built:
    return _booster(
        model_dir,
        "lgb_multi",
        {"objective": "multiclass", "num_class": 3},
        lambda x: (x[:, 0] > 0).astype(int) + (x[:, 1] > 0),
    )
