"""Real trainer functions that the tests name in specs as ``tests.loop.trainers_for_tests:NAME``.

Each is what an operator could write: the good ones fit real models; the bad ones raise,
return something unregistrable, run past their budget, or end the process outright. They
run in the training child process, so they must be importable from a fresh interpreter.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from mlgate.loop.frame import TrainingFrame

MODULE = "tests.loop.trainers_for_tests"
FEATURES = ("a", "b", "c")


def target(name: str) -> str:
    """``module:function`` of one of the trainers here."""
    return f"{MODULE}:{name}"


def make_frame(n: int = 300, *, regression: bool = False, seed: int = 0) -> TrainingFrame:
    """Three numeric features, a segment column that is no feature, and a learnable label.

    Classification labels are an object array of ints, as rows read back from JSON are.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    signal = x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2]
    if regression:
        labels = signal + rng.normal(scale=0.1, size=n)
    else:
        labels = np.array([int(v > 0) for v in signal + rng.normal(scale=0.3, size=n)], object)
    columns = {name: x[:, i] for i, name in enumerate(FEATURES)}
    columns["country"] = np.array(["de", "fr", "it"] * n, dtype=object)[:n]
    return TrainingFrame(
        columns=columns,
        labels=labels,
        features=FEATURES,
        record_ids=tuple(f"r{i}" for i in range(n)),
        seqs=np.arange(n, dtype=np.int64),
        times=np.arange(n, dtype=np.float64),
    )


class LoopLogistic(LogisticRegression):
    """A user's own estimator class: skops does not trust it by default."""


def fit_custom_logistic(frame: TrainingFrame, params: dict[str, Any]) -> LoopLogistic:
    return LoopLogistic(**params).fit(frame.matrix(), frame.labels.astype(np.int64))


def fit_onnx(frame: TrainingFrame, params: dict[str, Any]) -> Any:
    """A logistic regression converted with skl2onnx: bytes, or the ModelProto if asked."""
    from skl2onnx import to_onnx

    matrix = frame.matrix()
    model = LogisticRegression().fit(matrix, frame.labels.astype(np.int64))
    proto = to_onnx(model, matrix[:1], options={"zipmap": False}, target_opset=17)
    return proto if params.get("proto") else proto.SerializeToString()


def fit_on_noise(frame: TrainingFrame, params: dict[str, Any]) -> LogisticRegression:
    """A model that learnt nothing: its labels were shuffled against the rows."""
    shuffled = np.random.default_rng(int(params.get("seed", 0))).permutation(frame.labels)
    return LogisticRegression().fit(frame.matrix(), shuffled.astype(np.int64))


def fail(frame: TrainingFrame, params: dict[str, Any]) -> None:
    raise ValueError(f"no convergence after {params.get('epochs', 0)} epochs")


def return_garbage(frame: TrainingFrame, params: dict[str, Any]) -> object:
    """Something that is not a registrable model, chosen by ``params["kind"]``."""
    kind = params["kind"]
    if kind == "string":
        return "a model, honestly"
    if kind == "none":
        return None
    if kind == "unfitted":
        return LogisticRegression()
    if kind == "bytes":
        return b"\x00\x01 not an onnx model"
    if kind == "narrow":  # fitted on one column fewer than the frame has
        return LogisticRegression().fit(frame.matrix()[:, 1:], frame.labels.astype(np.int64))
    if kind == "not_an_estimator":
        return np.zeros(3)
    raise AssertionError(kind)


def sleep_past_budget(frame: TrainingFrame, params: dict[str, Any]) -> None:
    """Start a helper process (its pid goes to ``params["pid_file"]``), then never finish."""
    helper = subprocess.Popen(["sleep", "600"])
    Path(str(params["pid_file"])).write_text(str(helper.pid), encoding="utf-8")
    Path(str(params["pid_file"]) + ".self").write_text(str(os.getpid()), encoding="utf-8")
    time.sleep(600)


def exit_hard(frame: TrainingFrame, params: dict[str, Any]) -> None:
    """What a segfault in native code looks like from outside: no exception, no answer."""
    os._exit(3)
