"""Running a trainer in a child process under a time budget, and what comes back.

The trainer runs in a child process so that one past its budget can be killed, and one
that crashes the interpreter (``os._exit``, a segfault in native code) or leaks memory
cannot take the loop down. The child is *spawned*, never forked: forking a process that
has threads (the loop's server, database pools, BLAS) can deadlock the child and warns.

What crosses the pipe: the frame goes to the child pickled (it is the loop's own data),
and the child answers with plain values only: the artifact's bytes, its flavor, the skops
types it needs, the hyperparameters, or an error message. A model object is never
pickled back; the parent reads models only through the registry's flavors, as it reads
any uploaded file. The child also checks what it sends: the bytes are inspected and
loaded by the same flavor registration uses, and the model must answer one row of the
frame with one answer, so "returned garbage" is found before anything is registered.

Trusting skops types: a skops file names the types it needs, and loading one outside
skops' defaults may run code, which is why registration asks users to vouch for each.
Here the loop itself vouches. For ``builtin:sklearn`` we built the object from an
allow-listed class, so its types (``sklearn.tree._tree.Tree``, numpy dtypes, ...) are
ours. For a ``module:function`` trainer, the operator named that code in the loop file,
so the types its estimator needs are trusted on the operator's authority; they are
returned in :attr:`TrainedModel.trusted_types` and so recorded in the registry version,
where an audit can see exactly which types were trusted and why.

The budget is the trainer's own time: it starts once the child has imported the trainer
(for the builtin also scikit-learn and skops) and ends with the answer, so it covers the
fit, saving the model and the check above. Starting Python and those imports take a few
seconds and are bounded apart (``_START_LIMIT_S``), so a short budget is not spent on them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from mlgate.errors import LoopConfigError, MlgateError, TrainingError
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.trainer import (
    TrainerSpec,
    builtin_params,
    estimator_class,
    fit_builtin,
    resolve_function,
)
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
    process = context.Process(target=_child, args=(spec, frame, sender), name="mlgate-train")
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


def _child(spec: TrainerSpec, frame: TrainingFrame, sender: Connection) -> None:
    """The child's whole life: import, say it is up, train, answer in plain values."""
    try:
        os.setpgrp()  # a group of its own, so a kill also reaches what the trainer starts
        grouped = True
    except OSError:
        grouped = False
    reply: tuple[object, ...] | None = None
    try:
        fit = _prepare(spec)
    except (Exception, SystemExit) as exc:
        reply = _error(spec, exc)
    sender.send(("ready", grouped))
    if reply is None:
        started = time.monotonic()
        try:
            model, params = fit(frame)
            artifact, flavor, trusted = _registrable(spec, model, frame)
            reply = ("ok", artifact, flavor, trusted, params, time.monotonic() - started)
        except (Exception, SystemExit) as exc:
            reply = _error(spec, exc)
    sender.send(reply)
    sender.close()
    # Tearing down an interpreter with scikit-learn loaded takes 1-2 s and none of it
    # matters here: the output is flushed now, and what the trainer started dies with
    # its process group. (So the trainer's atexit hooks do not run.)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()
    os._exit(0)


def _prepare(spec: TrainerSpec) -> Callable[[TrainingFrame], tuple[object, dict[str, JSONScalar]]]:
    """Import the trainer (and the flavors that check its output) before the budget starts.

    Imports are startup, bounded by the start limit, not the budget. The builtin will be
    saved with skops, so skops is imported here too; whether a function's model needs it
    is known only once the function returns, so there it counts in the budget.
    """
    import mlgate.registry.flavors  # noqa: F401  (the check after training needs them)

    if spec.is_builtin:
        estimator_class(spec.estimator)
        import skops.io  # noqa: F401  (1-2 s: it imports every scikit-learn estimator)

        def fit_estimator(frame: TrainingFrame) -> tuple[object, dict[str, JSONScalar]]:
            model = fit_builtin(spec, frame)
            return model, builtin_params(spec, model)

        return fit_estimator
    function = resolve_function(spec.target)

    def call_function(frame: TrainingFrame) -> tuple[object, dict[str, JSONScalar]]:
        return function(frame, dict(spec.params)), dict(spec.params)

    return call_function


def _error(spec: TrainerSpec, exc: BaseException) -> tuple[object, ...]:
    """An error reply: our own errors as written, anything else as the trainer's raise."""
    if isinstance(exc, TrainingError | LoopConfigError):
        message = str(exc)
    else:
        message = f"{spec.described} raised {_last_line(exc)}"
    return ("error", message, "".join(traceback.format_exception(exc)))


def _registrable(
    spec: TrainerSpec, model: object, frame: TrainingFrame
) -> tuple[bytes, str, tuple[str, ...]]:
    """What the trainer returned as (bytes, flavor, skops types), checked; else TrainingError."""
    artifact, flavor, trusted = _serialize(spec, model)
    _check_registrable(spec, artifact, flavor, trusted, frame)
    return artifact, flavor, trusted


def _serialize(spec: TrainerSpec, model: object) -> tuple[bytes, str, tuple[str, ...]]:
    if isinstance(model, bytes | bytearray | memoryview):
        return bytes(model), "onnx", ()
    onnx = sys.modules.get("onnx")
    if onnx is not None and isinstance(model, onnx.ModelProto):
        return bytes(model.SerializeToString()), "onnx", ()
    garbage = TrainingError(
        f"{spec.described} returned {_kind(model)}; return a fitted scikit-learn estimator "
        "or ONNX bytes (an onnx.ModelProto also works)"
    )
    if not (hasattr(model, "fit") and hasattr(model, "predict")):
        raise garbage
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        raise TrainingError(
            f"{spec.described} returned an unfitted {type(model).__name__}; call fit before "
            "returning it"
        ) from None
    except Exception as exc:  # no scikit-learn estimator: no tags, no fit signature
        raise TrainingError(
            f"{spec.described} returned a {type(model).__name__}, which scikit-learn does not "
            f"take for an estimator ({_last_line(exc)}); derive it from "
            "sklearn.base.BaseEstimator, or return ONNX bytes"
        ) from None
    import skops.io

    try:
        data = skops.io.dumps(model)
        trusted = tuple(sorted(set(skops.io.get_untrusted_types(data=data))))
    except Exception as exc:
        raise TrainingError(
            f"skops cannot save the {type(model).__name__} that {spec.described} returned "
            f"({_last_line(exc)}); return an estimator skops can save, or convert it to ONNX"
        ) from exc
    return data, "sklearn", trusted


def _check_registrable(
    spec: TrainerSpec, artifact: bytes, flavor: str, trusted: tuple[str, ...], frame: TrainingFrame
) -> None:
    """Inspect, load and predict one row exactly as registration and serving will."""
    from mlgate.registry.flavors import flavor_named

    handler = flavor_named(flavor)
    try:
        inspection = handler.inspect(artifact, trusted_types=trusted)
        inputs = inspection.signature.inputs
        if len(inputs) != 1:
            raise TrainingError(
                f"the model {spec.described} returned takes {len(inputs)} inputs; the loop "
                "feeds one float tensor [rows, features], so export it with one input"
            )
        answers = handler.load(artifact, inspection).predict({inputs[0].name: frame.matrix()[:1]})
    except TrainingError:
        raise
    except Exception as exc:  # the flavors' errors and the runtimes' own alike
        detail = str(exc) if isinstance(exc, MlgateError) else _last_line(exc)
        raise TrainingError(
            f"the {flavor} model {spec.described} returned cannot be used: {detail}"
        ) from exc
    shapes = {name: list(np.shape(value)) for name, value in answers.items()}
    if not answers or any(shape[:1] != [1] for shape in shapes.values()):
        raise TrainingError(
            f"the model {spec.described} returned answered one row with outputs of shapes "
            f"{shapes}; expected one answer per row"
        )


def _last_line(exc: BaseException) -> str:
    return traceback.format_exception_only(exc)[-1].strip()


def _kind(value: object) -> str:
    if value is None:
        return "None"
    try:
        return f"a {type(value).__name__} ({value!r:.60})"
    except Exception:  # a repr that raises says nothing more than the type
        return f"a {type(value).__name__}"
