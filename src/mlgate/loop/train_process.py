"""Running a trainer in a child process under a time budget, and what comes back.

The trainer runs in a child process so that one past its budget can be killed, and one
that crashes the interpreter (``os._exit``, a segfault in native code) or leaks memory
cannot take the loop down. The child is *spawned*, never forked: forking a process that
has threads (the loop's server, database pools, BLAS) can deadlock the child and warns.

What crosses the pipe: the frame goes to the child pickled (it is the loop's own data),
and the child answers with plain values only: the artifact's bytes, its flavor, the skops
types it needs, the hyperparameters, or an error message. A model object is never
pickled back; the parent reads models only through the registry's flavors, as it reads
any uploaded file. What the child does, how it checks its answer before sending it, and
why the loop vouches for the skops types it names: :mod:`mlgate.loop._train_child`.

The budget is the trainer's own time: it starts once the child has imported the trainer
(for the builtin also scikit-learn and skops) and ends with the answer, so it covers the
fit, saving the model and checking it. Starting Python and those imports take a few
seconds and are bounded apart (``_START_LIMIT_S``), so a short budget is not spent on them.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from mlgate.errors import TrainingError
from mlgate.loop._train_child import child_main
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.trainer import TrainerSpec
from mlgate.registry.flavors.base import Inspection, LoadedModel
from mlgate.registry.records import JSONScalar

__all__ = ["TrainedModel", "train"]

logger = logging.getLogger(__name__)

_GRACE_S = 2.0  # between SIGTERM and SIGKILL
_ENDED = ("ended",)  # what _receive says when the child is gone without a message
_LATE = ("late",)  # ... and when the limit passed first
_START_LIMIT_S = 120.0  # for the child to import Python and mlgate, outside the budget


@dataclass(frozen=True)
class TrainedModel:
    """A trained model as registrable bytes, with what registration records about it."""

    artifact: bytes
    flavor: str  # "sklearn" (skops bytes) or "onnx"
    trusted_types: tuple[str, ...]
    params: dict[str, JSONScalar] = field(default_factory=dict)
    duration_s: float = 0.0  # the trainer's own time in the child, without process start

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.artifact).hexdigest()

    def inspect(self) -> Inspection:
        """What registration will record: flavor, signature, metadata, trusted types."""
        from mlgate.registry.flavors import flavor_named

        return flavor_named(self.flavor).inspect(self.artifact, trusted_types=self.trusted_types)

    def load(self) -> LoadedModel:
        """The model, loaded as serving would load it, to predict the holdout before registering."""
        from mlgate.registry.flavors import flavor_named

        handler = flavor_named(self.flavor)
        return handler.load(self.artifact, self.inspect())


def train(
    spec: TrainerSpec, frame: TrainingFrame, *, progress: Callable[[str], None] | None = None
) -> TrainedModel:
    """Train in a spawned child; :class:`TrainingError` if it raises, dies, overruns or
    returns something that cannot be registered."""
    say = progress if progress is not None else _quiet
    if len(frame) == 0:
        raise TrainingError("there are no labelled rows to train on; wait for labels to arrive")
    say(
        f"training {spec.name} on {len(frame):,} rows x {len(frame.features)} features "
        f"(budget {spec.time_budget_s:g} s) ..."
    )
    started = time.monotonic()
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=child_main, args=(spec, frame, sender), name="mlgate-train")
    process.start()
    sender.close()  # so the child's death closes the pipe
    grouped = answered = False
    try:
        ready = _receive(process, receiver, _START_LIMIT_S)
        if ready is _LATE:
            raise TrainingError(f"{spec.described} did not start within {_START_LIMIT_S:g} s")
        if ready is _ENDED:
            raise _ended(spec, process)
        grouped = bool(ready[1])
        logger.debug("training process up in %.2f s", time.monotonic() - started)
        reply = _receive(process, receiver, spec.time_budget_s)
        if reply is _LATE:
            raise TrainingError(
                f"{spec.described} exceeded its time budget of {spec.time_budget_s:g} s and "
                "was killed; raise `time_budget_s` under `training:` or make the trainer faster"
            )
        if reply is _ENDED:
            raise _ended(spec, process)
        answered = True
    finally:
        _stop(process, grouped, answered)
        receiver.close()
    if reply[0] == "error":
        logger.debug("%s failed in the child process:\n%s", spec.described, reply[2])
        raise TrainingError(reply[1])
    _, artifact, flavor, trusted, params, duration_s = reply
    say(
        f"trained {spec.name} in {duration_s:.1f} s ({time.monotonic() - started:.1f} s with "
        f"the process start): {len(artifact):,} bytes, flavor {flavor}"
    )
    return TrainedModel(artifact, flavor, tuple(trusted), dict(params), float(duration_s))


def _quiet(_: str) -> None:
    pass


def _receive(process: BaseProcess, receiver: Connection, limit_s: float) -> Any:
    """The child's next message, or `_ENDED` if it ends first, or `_LATE` after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while (remaining := deadline - time.monotonic()) > 0:
        ready = wait([receiver, process.sentinel], timeout=remaining)
        if receiver in ready or (ready and receiver.poll()):
            try:
                return receiver.recv()
            except EOFError:
                return _ENDED
        if ready:
            return _ENDED
    return _LATE


def _ended(spec: TrainerSpec, process: BaseProcess) -> TrainingError:
    """The child closed its pipe without an answer: say how it ended."""
    # Its files close a moment before it can be reaped, so wait for the exit status.
    process.join(_GRACE_S)
    code = process.exitcode
    if code is None:
        how = "closed its connection to the loop"
    elif code < 0:
        how = f"was killed by signal {signal.Signals(-code).name}"
    else:
        how = f"died with exit code {code}"
    return TrainingError(
        f"{spec.described} {how} without an answer; its output (stderr) tells why. "
        "A crash in native code or os._exit ends the trainer's process, not the loop"
    )


def _stop(process: BaseProcess, grouped: bool, answered: bool) -> None:
    """End the child: SIGTERM, SIGKILL after a grace, then whatever it left in its group."""
    if answered:
        process.join(_GRACE_S)  # it is exiting on its own; let it
    if process.is_alive():
        _signal(process, grouped, signal.SIGTERM)
        process.join(_GRACE_S)
    if process.is_alive():
        _signal(process, grouped, signal.SIGKILL)
    process.join()
    if grouped:
        # The child led its own process group, so its pid cannot be reused while anything
        # of the group remains: this reaches only what the trainer started (pools, helpers).
        _signal(process, grouped, signal.SIGKILL)
    process.close()


def _signal(process: BaseProcess, grouped: bool, signum: signal.Signals) -> None:
    if grouped and process.pid is not None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass
    elif signum == signal.SIGTERM:
        process.terminate()
    else:
        process.kill()
