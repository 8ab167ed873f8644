"""Which onnxruntime execution provider runs a model, and proof that it does.

onnxruntime takes a list of providers and silently drops the ones it cannot start (a
CUDA provider without its libraries, TensorRT without a GPU), falling back to the CPU.
A server that asked for CUDA and runs on the CPU is a capacity incident waiting to be
found, so the choice is made here from what the installed runtime offers, then checked
against what the session actually uses, and a fallback is logged as a warning with
the reason; the choice travels with the model to ``mlgate models show`` and the
server's model metadata.

Preference: ``MLGATE_ONNX_PROVIDER`` = ``auto`` (default: TensorRT, then CUDA, then
CPU, by availability), ``tensorrt``, ``cuda`` or ``cpu``. Threads: onnxruntime sizes
its intra-op pool to every core per session, and the batcher may run several models'
calls at once, so pools would fight over the cores; ``MLGATE_ONNX_THREADS`` sets the
intra-op threads (default: the cores this process may run on, which a container's CPU
set can make fewer than the machine has), with one inter-op thread and sequential
execution, which is what batch-at-a-time inference wants.

An explicit ``MLGATE_ONNX_PROVIDER`` is a requirement: a session that falls back from it
is refused (the version is not served, and the log says why) rather than quietly slow.
Under ``auto`` a fallback is a warning. Note that ONNX-ML operators (tree ensembles,
linear classifiers) have no CUDA kernels: in a CUDA session onnxruntime places them on
the CPU, so a converted scikit-learn model gains nothing from a GPU.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlgate.errors import ConfigError

__all__ = [
    "CPU",
    "EXPLICIT",
    "RuntimeChoice",
    "choose_providers",
    "session_options",
    "verify_choice",
]

logger = logging.getLogger(__name__)

_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
CPU = "CPUExecutionProvider"
EXPLICIT = "MLGATE_ONNX_PROVIDER asks for "


@dataclass(frozen=True)
class RuntimeChoice:
    """What was asked for, what runs, and why: shown to operators as is."""

    requested: tuple[str, ...]
    provider: str
    reason: str
    threads: int

    @property
    def fell_back(self) -> bool:
        return self.provider != self.requested[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "requested": list(self.requested),
            "reason": self.reason,
            "intra_op_threads": self.threads,
        }


def choose_providers(
    available: Sequence[str], environ: Mapping[str, str] | None = None
) -> tuple[tuple[str, ...], str]:
    """The providers to ask for, best first (CPU always last), and why.

    The reason of an explicit choice starts with :data:`EXPLICIT`.
    """
    env = os.environ if environ is None else environ
    wanted = env.get("MLGATE_ONNX_PROVIDER", "auto").strip().lower() or "auto"
    if wanted == "auto":
        chosen = tuple(p for p in _ORDER if p in available) or (CPU,)
        if chosen[0] == CPU:
            return (CPU,), f"only the CPU provider is available (offered: {list(available)})"
        return chosen, f"{chosen[0]} is the best provider this onnxruntime offers"
    name = _NAMES.get(wanted)
    if name is None:
        raise ConfigError(f"MLGATE_ONNX_PROVIDER is {wanted!r}; use auto, tensorrt, cuda or cpu")
    if name not in available:
        raise ConfigError(
            f"MLGATE_ONNX_PROVIDER={wanted} but this onnxruntime offers only {list(available)}; "
            "install onnxruntime-gpu (with its CUDA libraries) or choose cpu"
        )
    providers = (name,) if name == CPU else (name, CPU)
    return providers, f"{EXPLICIT}{name}"


def session_options(onnxruntime: Any, environ: Mapping[str, str] | None = None) -> Any:
    """Session options with the thread layout described in the module docstring."""
    env = os.environ if environ is None else environ
    raw = env.get("MLGATE_ONNX_THREADS", "").strip()
    threads = _usable_cores()
    if raw:
        try:
            threads = int(raw)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ConfigError(f"MLGATE_ONNX_THREADS must be a whole number >= 1, got {raw!r}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return options


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def verify_choice(
    session: Any, requested: tuple[str, ...], reason: str, threads: int, model: str
) -> RuntimeChoice:
    """What the session really runs on; a fallback is logged loudly, with the reason."""
    active = list(session.get_providers())
    provider = active[0] if active else CPU
    choice = RuntimeChoice(requested, provider, reason, threads)
    if choice.fell_back:
        choice = RuntimeChoice(
            requested,
            provider,
            f"asked for {requested[0]} ({reason}) but onnxruntime runs {provider}: the "
            "provider could not start (missing CUDA/TensorRT libraries or no device)",
            threads,
        )
        if reason.startswith(EXPLICIT):
            raise ConfigError(
                f"{model}: {choice.reason}; fix the device or its libraries, or unset "
                "MLGATE_ONNX_PROVIDER to let mlgate choose"
            )
        logger.warning("%s: %s", model, choice.reason)
    return choice
