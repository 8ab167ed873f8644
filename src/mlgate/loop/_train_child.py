"""The training child's side: import the trainer, fit, and answer in plain values.

Runs in the process that :func:`mlgate.loop.train_process.train` spawns; the messages it
sends are ``("ready", grouped)`` once the trainer is imported, then ``("ok", artifact,
flavor, trusted_types, params, duration_s)`` or ``("error", message, traceback)``.

The child checks what it sends: the bytes are inspected and loaded by the same flavor
registration uses, and the model must answer one row of the frame with one answer, so
"returned garbage" is found before anything is registered.

Trusting skops types: a skops file names the types it needs, and loading one outside
skops' defaults may run code, which is why registration asks users to vouch for each.
Here the loop itself vouches. For ``builtin:sklearn`` we built the object from an
allow-listed class, so its types (``sklearn.tree._tree.Tree``, numpy dtypes, ...) are
ours. For a ``module:function`` trainer, the operator named that code in the loop file,
so the types its estimator needs are trusted on the operator's authority; they are
returned in :attr:`~mlgate.loop.train_process.TrainedModel.trusted_types` and so recorded
in the registry version, where an audit can see exactly which types were trusted and why.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np

from mlgate.errors import LoopConfigError, MlgateError, TrainingError
from mlgate.loop._builtin_sklearn import builtin_params, estimator_class, fit_builtin
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.trainer import TrainerSpec, resolve_function
from mlgate.registry.records import JSONScalar

__all__ = ["child_main"]


def child_main(spec: TrainerSpec, frame: TrainingFrame, sender: Connection) -> None:
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
