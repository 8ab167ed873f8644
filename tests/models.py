"""Tiny real models for tests, built in memory: ONNX graphs and skops-saved estimators.

Everything here goes through the same loading path users' files do: ONNX bytes
are run by onnxruntime, estimators are saved with skops and loaded back by
mlgate's sklearn flavor. Nothing is mocked. Failure modes are real too:

* :func:`fragile_classifier` is an ONNX graph whose ``Gather`` fails inside
  onnxruntime when a row's first feature is 3 or more (an index out of bounds),
  so a model that raises for some inputs and answers others needs no Python.
* :class:`GatedClassifier` is an ordinary scikit-learn estimator defined in this
  importable module. Registered with its type trusted, skops imports this class
  when the server loads the model; its ``predict_proba`` waits for a named
  :class:`Gate` to open (a model that hangs until released) and can raise.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace

__all__ = [
    "ACTOR",
    "HANG_LIMIT_S",
    "Gate",
    "GatedClassifier",
    "fragile_classifier",
    "gate",
    "gated_classifier",
    "linear_classifier",
    "open_all_gates",
    "register",
    "softmax_reference",
]

ACTOR = "test:models"
# A gated model never blocks a worker thread longer than this, even if a test forgets it.
HANG_LIMIT_S = 30.0

FloatArray = np.ndarray[Any, np.dtype[np.floating[Any]]]


# -- ONNX -------------------------------------------------------------------------


def _linear_nodes(input_name: str) -> list[Any]:
    from onnx import helper

    return [
        helper.make_node("MatMul", [input_name, "W"], ["xw"]),
        helper.make_node("Add", ["xw", "B"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]


def _onnx_bytes(
    nodes: list[Any],
    weights: FloatArray,
    bias: FloatArray,
    *,
    input_name: str,
    dtype: type[np.floating[Any]],
    extra_initializers: Sequence[Any] = (),
    extra_outputs: Sequence[Any] = (),
) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if dtype is np.float32 else TensorProto.DOUBLE
    width, classes = weights.shape
    graph = helper.make_graph(
        nodes,
        "linear_softmax",
        [helper.make_tensor_value_info(input_name, elem, ["batch", width])],
        [
            helper.make_tensor_value_info("probabilities", elem, ["batch", classes]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            *extra_outputs,
        ],
        initializer=[
            numpy_helper.from_array(weights.astype(dtype), "W"),
            numpy_helper.from_array(bias.astype(dtype), "B"),
            *extra_initializers,
        ],
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="mlgate-tests"
    )
    model.ir_version = 8  # loadable by older onnxruntimes too
    onnx.checker.check_model(model)
    buffer = io.BytesIO()
    onnx.save_model(model, buffer)
    return buffer.getvalue()


def linear_classifier(
    weights: Sequence[Sequence[float]],
    bias: Sequence[float],
    *,
    input_name: str = "x",
    dtype: type[np.floating[Any]] = np.float32,
) -> bytes:
    """Softmax(x @ W + B) with a dynamic batch: probabilities [N, C] and label [N] (INT64)."""
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    return _onnx_bytes(_linear_nodes(input_name), w, b, input_name=input_name, dtype=dtype)


def fragile_classifier(
    weights: Sequence[Sequence[float]], bias: Sequence[float], *, input_name: str = "x"
) -> bytes:
    """Like :func:`linear_classifier`, but onnxruntime fails on a row whose x[0] >= 3.

    The first feature, truncated to an integer, indexes a 3-entry table (``Gather``);
    0, 1, 2 and negatives down to -3 are valid, anything else is a runtime error.
    The gathered value is returned as the extra output ``check`` so that it is
    computed, not optimised away.
    """
    from onnx import TensorProto, helper, numpy_helper

    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64)
    nodes = [
        *_linear_nodes(input_name),
        helper.make_node("Gather", [input_name, "first"], ["column"], axis=1),
        helper.make_node("Cast", ["column"], ["index"], to=TensorProto.INT64),
        helper.make_node("Gather", ["table", "index"], ["check"], axis=0),
    ]
    return _onnx_bytes(
        nodes,
        w,
        b,
        input_name=input_name,
        dtype=np.float32,
        extra_initializers=[
            numpy_helper.from_array(np.array([0], dtype=np.int64), "first"),
            numpy_helper.from_array(np.array([1.0, 2.0, 3.0], dtype=np.float32), "table"),
        ],
        extra_outputs=[helper.make_tensor_value_info("check", TensorProto.FLOAT, ["batch", 1])],
    )


def softmax_reference(
    weights: Sequence[Sequence[float]], bias: Sequence[float], x: Any
) -> tuple[FloatArray, np.ndarray[Any, Any]]:
    """What :func:`linear_classifier` answers for ``x``: (probabilities, label), in float64."""
    logits = np.asarray(x, dtype=np.float64) @ np.asarray(weights, dtype=np.float64)
    logits = logits + np.asarray(bias, dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True), logits.argmax(axis=1)


# -- a model that hangs or raises, loaded through skops ---------------------------------


class Gate:
    """Opened by a test to let :class:`GatedClassifier` calls (or loads) finish."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self._lock = threading.Lock()
        self._entered = threading.Condition(self._lock)
        self.calls = 0
        self.holds = 0  # loads still to hold at this gate (see GatedClassifier.load_gate)

    def enter(self) -> None:
        with self._lock:
            self.calls += 1
            self._entered.notify_all()

    def wait_for_calls(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` calls have entered (not finished) the gate."""
        with self._lock:
            return self._entered.wait_for(lambda: self.calls >= count, timeout)

    def hold_next_load(self) -> None:
        with self._lock:
            self.holds += 1

    def take_hold(self) -> bool:
        with self._lock:
            if self.holds == 0:
                return False
            self.holds -= 1
            return True

    def wait(self, what: str) -> None:
        self.enter()
        if not self.opened.wait(HANG_LIMIT_S):
            raise TimeoutError(f"{what} stayed closed")


_GATES: dict[str, Gate] = {}
_GATES_LOCK = threading.Lock()


def gate(name: str) -> Gate:
    """The process-wide gate called ``name``, created closed on first use."""
    with _GATES_LOCK:
        found = _GATES.get(name)
        if found is None:
            found = _GATES[name] = Gate()
        return found


def open_all_gates() -> None:
    """Release every gated call in this process (server shutdown waits for model calls)."""
    with _GATES_LOCK:
        gates = list(_GATES.values())
    for found in gates:
        found.opened.set()


class GatedClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Answers fixed probabilities once its gate is open.

    * ``gate_name``: every ``predict_proba`` waits at this gate (``""``: never waits).
      Only ``predict_proba`` waits, and mlgate calls it once per model call, so
      ``Gate.calls`` counts model calls.
    * ``fail_at``: a call raises when any row's first feature is at least this.
    * ``load_gate``: loading the model (skops restoring it) waits at this gate when
      the test asked for it with ``Gate.hold_next_load()``.
    * ``delay_s``: every ``predict_proba`` takes at least this long (a slow model).

    A gate left closed makes the wait give up after :data:`HANG_LIMIT_S` with an
    error, so a forgotten test cannot pin a thread for good.
    """

    def __init__(
        self,
        gate_name: str = "",
        fail_at: float | None = None,
        load_gate: str = "",
        answer: Sequence[float] = (0.2, 0.3, 0.5),
        delay_s: float = 0.0,
    ) -> None:
        self.gate_name = gate_name
        self.fail_at = fail_at
        self.load_gate = load_gate
        self.answer = answer
        self.delay_s = delay_s

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        name = state.get("load_gate", "")
        if name and gate(name).take_hold():
            gate(name).wait(f"load gate {name!r}")

    def fit(self, x: Any, y: Any) -> GatedClassifier:
        self.classes_ = np.unique(np.asarray(y))
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def predict_proba(self, x: Any) -> FloatArray:
        features = np.asarray(x)
        if self.gate_name:
            gate(self.gate_name).wait(f"gate {self.gate_name!r}")
        if getattr(self, "delay_s", 0.0):
            threading.Event().wait(self.delay_s)
        if self.fail_at is not None and (features[:, 0] >= self.fail_at).any():
            raise ValueError(f"a row has x[0] >= {self.fail_at}")
        return np.tile(np.asarray(self.answer, dtype=np.float64), (features.shape[0], 1))

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        rows = np.asarray(x).shape[0]
        return np.repeat(self.classes_[int(np.argmax(self.answer))], rows)


def gated_classifier(
    gate_name: str = "",
    *,
    fail_at: float | None = None,
    load_gate: str = "",
    answer: Sequence[float] = (0.2, 0.3, 0.5),
    delay_s: float = 0.0,
) -> tuple[bytes, list[str]]:
    """A fitted :class:`GatedClassifier` (4 features, classes 0..2) as skops bytes.

    Returns the bytes and the types skops does not trust by default, to pass as
    ``trusted_types`` when registering.
    """
    import skops.io

    model = GatedClassifier(gate_name, fail_at, load_gate, tuple(answer), delay_s)
    data = skops.io.dumps(model.fit(np.zeros((3, 4)), [0, 1, 2]))
    return data, sorted(skops.io.get_untrusted_types(data=data))


def register(
    workspace: Workspace,
    name: str,
    data: bytes,
    *,
    champion: bool = False,
    trusted_types: Sequence[str] = (),
) -> ModelVersion:
    """Register ``data`` as the next version of ``name``; optionally make it the champion."""
    version = workspace.registry.register(name, data, actor=ACTOR, trusted_types=trusted_types)
    if champion:
        workspace.registry.move_alias(name, "champion", version.version, actor=ACTOR)
    return version
