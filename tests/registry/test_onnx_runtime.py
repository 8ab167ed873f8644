"""Execution-provider choice: what is asked for, what runs, and a loud fallback."""

from __future__ import annotations

import logging

import onnxruntime
import pytest

from mlgate.errors import ConfigError
from mlgate.registry.flavors.onnx import OnnxFlavor
from mlgate.registry.flavors.onnx_runtime import (
    CPU,
    choose_providers,
    session_options,
    verify_choice,
)
from tests.models import linear_classifier

CUDA = "CUDAExecutionProvider"
TRT = "TensorrtExecutionProvider"
W = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.1, -0.1]]


@pytest.mark.parametrize(
    ("available", "environ", "expected"),
    [
        (["AzureExecutionProvider", CPU], {}, (CPU,)),
        ([CUDA, CPU], {}, (CUDA, CPU)),
        ([TRT, CUDA, CPU], {"MLGATE_ONNX_PROVIDER": "auto"}, (TRT, CUDA, CPU)),
        ([TRT, CUDA, CPU], {"MLGATE_ONNX_PROVIDER": "cuda"}, (CUDA, CPU)),
        ([CUDA, CPU], {"MLGATE_ONNX_PROVIDER": "CPU"}, (CPU,)),
    ],
)
def test_the_best_available_provider_is_asked_for(
    available: list[str], environ: dict[str, str], expected: tuple[str, ...]
) -> None:
    providers, reason = choose_providers(available, environ)
    assert providers == expected
    assert providers[0] in reason or "only the CPU" in reason


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"MLGATE_ONNX_PROVIDER": "tensorrt"}, "install onnxruntime-gpu"),
        ({"MLGATE_ONNX_PROVIDER": "tpu"}, "use auto, tensorrt, cuda or cpu"),
    ],
)
def test_an_impossible_preference_is_a_clear_error(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        choose_providers([CPU], environ)


def test_threads_come_from_the_environment() -> None:
    options = session_options(onnxruntime, {"MLGATE_ONNX_THREADS": "3"})
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (3, 1)
    for bad in ("0", "two", "-1"):
        with pytest.raises(ConfigError, match="MLGATE_ONNX_THREADS"):
            session_options(onnxruntime, {"MLGATE_ONNX_THREADS": bad})


def test_a_provider_that_cannot_start_is_reported_loudly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    data = linear_classifier(W, [0.0, 0.0])
    if CUDA in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA; the fallback is exercised on CPU-only builds")
    # A real session asked for CUDA on a CPU-only onnxruntime runs on the CPU.
    with pytest.warns(UserWarning, match="not in available provider names"):
        session = onnxruntime.InferenceSession(data, providers=[CUDA, CPU])
    with caplog.at_level(logging.WARNING):
        choice = verify_choice(session, (CUDA, CPU), "asked for by a test", 1, "iris v1")
    assert choice.fell_back and choice.provider == CPU
    assert "could not start" in choice.reason
    assert any("iris v1" in r.getMessage() and CUDA in r.getMessage() for r in caplog.records)
    # Asked for explicitly, the same fallback is refused: the operator required CUDA.
    _, explicit = choose_providers([CUDA, CPU], {"MLGATE_ONNX_PROVIDER": "cuda"})
    with pytest.raises(ConfigError, match="unset MLGATE_ONNX_PROVIDER"):
        verify_choice(session, (CUDA, CPU), explicit, 1, "iris v1")


def test_the_environment_reaches_the_loaded_session(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLGATE_ONNX_PROVIDER", "cpu")
    monkeypatch.setenv("MLGATE_ONNX_THREADS", "2")
    data = linear_classifier(W, [0.0, 0.0])
    flavor = OnnxFlavor()
    model = flavor.load(data, flavor.inspect(data))
    assert model.runtime is not None
    assert model.runtime.to_json() == {
        "provider": CPU,
        "requested": [CPU],
        "reason": "MLGATE_ONNX_PROVIDER asks for CPUExecutionProvider",
        "intra_op_threads": 2,
    }
    monkeypatch.setenv("MLGATE_ONNX_PROVIDER", "tensorrt")
    with pytest.raises(ConfigError, match="offers only"):
        flavor.load(data, flavor.inspect(data))


def test_a_loaded_onnx_model_says_where_it_runs() -> None:
    data = linear_classifier(W, [0.0, 0.0])
    flavor = OnnxFlavor()
    model = flavor.load(data, flavor.inspect(data))
    assert model.runtime is not None
    assert model.runtime.provider in onnxruntime.get_available_providers()
    assert model.runtime.to_json()["provider"] == model.session.get_providers()[0]
