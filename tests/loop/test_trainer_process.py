"""Training in a real spawned child: good models come back as bytes, bad trainers as errors.

Each ``train`` call starts a fresh interpreter (a few seconds), so the process tests are
few and each checks a whole outcome; the cheap conversion checks run in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from mlgate.errors import LoopConfigError, TrainingError
from mlgate.loop._train_child import _registrable
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.train_process import TrainedModel, train
from mlgate.loop.trainer import BUILTIN_SKLEARN, TrainerSpec, parse_trainer
from tests.loop import trainers_for_tests
from tests.loop.trainers_for_tests import make_frame, target


def _function(name: str, params: dict[str, Any] | None = None, budget: float = 120) -> TrainerSpec:
    return parse_trainer({"trainer": target(name), "params": params or {}, "time_budget_s": budget})


def _labels(frame: TrainingFrame) -> np.ndarray[Any, Any]:
    return np.asarray(frame.labels.tolist())


def _assert_no_child_left() -> None:
    assert multiprocessing.active_children() == []


# -- good trainers ----------------------------------------------------------------------


def test_builtin_classifier_predicts_like_the_same_fit_here() -> None:
    frame = make_frame(300)
    spec = parse_trainer(
        {
            "trainer": BUILTIN_SKLEARN,
            "estimator": "HistGradientBoostingClassifier",
            "params": {"max_iter": 30},
            "seed": 7,
        }
    )
    lines: list[str] = []
    trained = train(spec, frame, progress=lines.append)

    assert trained.flavor == "sklearn"
    assert trained.trusted_types == (
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    )
    assert trained.params["estimator"] == "HistGradientBoostingClassifier"
    assert (trained.params["max_iter"], trained.params["random_state"]) == (30, 7)
    assert trained.duration_s > 0
    assert lines[0].startswith("training HistGradientBoostingClassifier on 300 rows x 3 features")
    assert lines[-1].startswith("trained HistGradientBoostingClassifier in ")

    here = HistGradientBoostingClassifier(max_iter=30, random_state=7)
    here.fit(frame.matrix(), _labels(frame))
    answers = trained.load().predict({"input": frame.matrix()})
    np.testing.assert_array_equal(answers["label"], here.predict(frame.matrix()))
    np.testing.assert_allclose(answers["probabilities"], here.predict_proba(frame.matrix()))
    assert trained.inspect().metadata["classes"] == [0, 1]
    _assert_no_child_left()


def test_builtin_regressor_with_scaling() -> None:
    frame = make_frame(200, regression=True)
    spec = TrainerSpec(BUILTIN_SKLEARN, "Ridge", {"alpha": 2.0}, scale=True)
    trained = train(spec, frame)

    assert trained.trusted_types == ()
    assert trained.params["alpha"] == 2.0 and trained.params["scale"] is True
    scaler = StandardScaler().fit(frame.matrix())
    here = Ridge(alpha=2.0).fit(scaler.transform(frame.matrix()), frame.labels)
    answers = trained.load().predict({"input": frame.matrix()})
    np.testing.assert_allclose(
        answers["prediction"], here.predict(scaler.transform(frame.matrix()))
    )


def test_function_trainer_types_are_trusted_and_recorded() -> None:
    frame = make_frame(200)
    trained = train(_function("fit_custom_logistic", {"C": 0.5}), frame)

    assert trained.flavor == "sklearn"
    assert "tests.loop.trainers_for_tests.LoopLogistic" in trained.trusted_types
    assert trained.params == {"C": 0.5}
    here = trainers_for_tests.fit_custom_logistic(frame, {"C": 0.5})
    answers = trained.load().predict({"input": frame.matrix()})
    np.testing.assert_allclose(answers["probabilities"], here.predict_proba(frame.matrix()))


def test_function_trainer_returning_onnx_bytes() -> None:
    frame = make_frame(200)
    trained = train(_function("fit_onnx"), frame)

    assert (trained.flavor, trained.trusted_types) == ("onnx", ())
    assert trained.artifact[:1] != b"PK"
    model = trained.load()
    (name,) = [spec.name for spec in model.signature.inputs]
    here = LogisticRegression().fit(frame.matrix(), _labels(frame))
    answers = model.predict({name: frame.matrix()})
    np.testing.assert_allclose(answers["probabilities"], here.predict_proba(frame.matrix()))


# -- bad trainers -----------------------------------------------------------------------


def test_a_raising_trainer_reports_its_last_line_only() -> None:
    with pytest.raises(TrainingError) as caught:
        train(_function("fail", {"epochs": 3}), make_frame(50))
    message = str(caught.value)
    assert message == (
        f"the trainer {target('fail')} raised ValueError: no convergence after 3 epochs"
    )
    _assert_no_child_left()


def test_bad_builtin_params_fail_in_scikit_learns_words() -> None:
    spec = TrainerSpec(BUILTIN_SKLEARN, "HistGradientBoostingClassifier", {"max_iter": -1})
    with pytest.raises(TrainingError, match="HistGradientBoostingClassifier trainer raised") as e:
        train(spec, make_frame(50))
    assert "'max_iter' parameter" in str(e.value)


def test_a_trainer_returning_garbage() -> None:
    with pytest.raises(TrainingError) as caught:
        train(_function("return_garbage", {"kind": "string"}), make_frame(50))
    assert str(caught.value) == (
        f"the trainer {target('return_garbage')} returned a str ('a model, honestly'); "
        "return a fitted scikit-learn estimator or ONNX bytes (an onnx.ModelProto also works)"
    )


def test_a_missing_trainer_module_is_reported_from_the_child() -> None:
    with pytest.raises(TrainingError, match="cannot import the trainer module 'no_such_pkg.train'"):
        train(TrainerSpec("no_such_pkg.train:fit", None), make_frame(20))


def test_a_trainer_past_its_budget_is_killed_with_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "helper.pid"
    spec = _function("sleep_past_budget", {"pid_file": str(pid_file)}, budget=2)
    with pytest.raises(TrainingError) as caught:
        train(spec, make_frame(20))
    assert str(caught.value) == (
        f"the trainer {target('sleep_past_budget')} exceeded its time budget of 2 s and was "
        "killed; raise `time_budget_s` under `training:` or make the trainer faster"
    )
    _assert_no_child_left()
    child = int(Path(f"{pid_file}.self").read_text(encoding="utf-8"))
    helper = int(pid_file.read_text(encoding="utf-8"))
    assert _ends(child) and _ends(helper)


def test_a_trainer_that_ends_its_process() -> None:
    with pytest.raises(TrainingError, match=r"trainer .*:exit_hard died with exit code 3 "):
        train(_function("exit_hard"), make_frame(20))
    _assert_no_child_left()


def _ends(pid: int, limit_s: float = 10.0) -> bool:
    """Whether ``pid`` is gone (or a zombie awaiting its reaper) within ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        stat = Path(f"/proc/{pid}/stat")
        try:
            if stat.read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


# -- in this process: what counts as registrable, no child needed -------------------------


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("none", "returned None; return a fitted scikit-learn estimator or ONNX bytes"),
        ("unfitted", "returned an unfitted LogisticRegression; call fit before returning it"),
        ("bytes", "the onnx model the trainer tests.loop.trainers_for_tests:g returned cannot"),
        ("narrow", "the sklearn model the trainer tests.loop.trainers_for_tests:g returned cannot"),
        ("not_an_estimator", "returned a ndarray (array([0., 0., 0.]))"),
    ],
)
def test_what_is_not_registrable(kind: str, message: str) -> None:
    frame = make_frame(40)
    garbage = trainers_for_tests.return_garbage(frame, {"kind": kind})
    with pytest.raises(TrainingError) as caught:
        _registrable(_function("g"), garbage, frame)
    assert message in str(caught.value)


def test_an_estimator_skops_cannot_judge_fitted() -> None:
    class Bare:
        def fit(self) -> None: ...

        def predict(self) -> None: ...

    with pytest.raises(TrainingError, match="which scikit-learn does not take for an estimator"):
        _registrable(_function("g"), Bare(), make_frame(10))


def test_an_onnx_model_proto_is_accepted() -> None:
    frame = make_frame(40)
    proto = trainers_for_tests.fit_onnx(frame, {"proto": True})
    artifact, flavor, trusted = _registrable(_function("g"), proto, frame)
    assert (artifact, flavor, trusted) == (proto.SerializeToString(), "onnx", ())
    model = TrainedModel(artifact, flavor, trusted)
    assert len(model.sha256) == 64 and model.inspect().flavor == "onnx"


def test_an_empty_frame_is_refused_before_any_process_starts() -> None:
    with pytest.raises(TrainingError, match="no labelled rows"):
        train(_function("fail"), make_frame(0))
    _assert_no_child_left()


def test_config_errors_stay_config_errors_outside_train() -> None:
    with pytest.raises(LoopConfigError):
        parse_trainer({"trainer": BUILTIN_SKLEARN, "estimator": "KMeans"})
