"""The scikit-learn flavor: estimators saved with skops (``.skops`` zip files).

Pickle and joblib files are never loaded: unpickling runs whatever code the file
names. skops stores a JSON schema plus numpy arrays and only instantiates types
on an allow-list, so registration asks :func:`skops.io.get_untrusted_types`
first and refuses (with the exact ``--trust`` flags to pass) unless the user
vouched for every type outside skops' defaults. The types they vouched for are
recorded so that loading later trusts exactly those and nothing more.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.errors import ArtifactError, SignatureError, UntrustedArtifactError
from mlgate.registry.flavors.base import Inspection, check_flavor, prepare_inputs
from mlgate.registry.flavors.torch import looks_like_torchscript
from mlgate.registry.signature import Signature, TensorSpec, datatype_of, numpy_dtype

__all__ = ["SklearnFlavor"]

# Output name -> estimator method that produces it. The names are the contract
# between inspect and load, so a signature can only name these.
_METHODS = {"label": "predict", "prediction": "predict", "probabilities": "predict_proba"}


class SklearnFlavor:
    """scikit-learn classifiers and regressors in skops format."""

    name = "sklearn"

    def sniff(self, data: bytes) -> bool:
        """Any zip but a TorchScript archive, so a damaged skops file lands here."""
        return data[:4] == b"PK\x03\x04" and not looks_like_torchscript(data)

    def inspect(self, data: bytes, *, trusted_types: Sequence[str] = ()) -> Inspection:
        needed = _needed_types(data)
        missing = [t for t in needed if t not in set(trusted_types)]
        if missing:
            flags = " ".join(f"--trust {t}" for t in missing)
            raise UntrustedArtifactError(
                f"the skops file uses {len(missing)} type(s) that are not trusted by default: "
                f"{', '.join(missing)}. Loading them can run code they name, so each must be "
                f"trusted explicitly; re-run with {flags} if you trust where this file came from."
            )
        estimator = _loads(data, needed)
        try:
            signature = _signature(estimator)
        except SignatureError as exc:
            raise ArtifactError(f"cannot describe the estimator's tensors: {exc}") from exc
        return Inspection(
            flavor=self.name,
            signature=signature,
            metadata=_metadata(data, estimator),
            trusted_types=needed,
        )

    def load(self, data: bytes, inspection: Inspection) -> SklearnModel:
        """Load with exactly the types trusted at registration."""
        check_flavor(inspection, self.name)
        unknown = [s.name for s in inspection.signature.outputs if s.name not in _METHODS]
        if unknown or len(inspection.signature.inputs) != 1:
            raise SignatureError(
                f"a scikit-learn signature needs one input and outputs named from "
                f"{sorted(_METHODS)}; found inputs {[s.name for s in inspection.signature.inputs]} "
                f"and unknown outputs {unknown}. Fix the signature."
            )
        estimator = _loads(data, inspection.trusted_types)
        _read_by_position(estimator)
        return SklearnModel(signature=inspection.signature, estimator=estimator)


def _read_by_position(estimator: Any) -> None:
    """Serve an estimator fitted on named columns from arrays, without a warning per call.

    Serving feeds one 2-D array whose columns are in training order (callers that hold
    named columns, like ``mlgate optimize``, order them by the names recorded in the
    version's ``feature_names``); scikit-learn would warn on every call that the array
    has no names. The names stay in the registry; this in-memory copy forgets them.
    """
    for part in (estimator, *(step for _, step in getattr(estimator, "steps", ()))):
        if "feature_names_in_" in getattr(part, "__dict__", {}):
            del part.feature_names_in_


def _needed_types(data: bytes) -> tuple[str, ...]:
    import skops.io

    if data[:4] != b"PK\x03\x04":
        raise ArtifactError(
            f"not a skops file: expected a zip archive written by skops.io.dump, found data "
            f"starting with {data[:8]!r}. Save scikit-learn models with skops.io.dump "
            f"(pickle/joblib files are not accepted), or pass the right --flavor."
        )
    try:
        return tuple(sorted(set(skops.io.get_untrusted_types(data=data))))
    except Exception as exc:
        raise ArtifactError(
            f"damaged skops file ({type(exc).__name__}: {exc}); expected a complete zip "
            f"written by skops.io.dump. It may be truncated or corrupt: save the model again "
            f"with skops.io.dump."
        ) from exc


def _loads(data: bytes, trusted: Sequence[str]) -> Any:
    import skops.io

    try:
        return skops.io.loads(data, trusted=list(trusted))
    except Exception as exc:
        raise ArtifactError(
            f"skops could not load the estimator ({type(exc).__name__}: {exc}); expected a "
            f"file saved by skops.io.dump with a compatible scikit-learn. Save it again "
            f"with the scikit-learn version mlgate runs."
        ) from exc


def _signature(estimator: Any) -> Signature:
    from sklearn.base import is_regressor
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    if not hasattr(estimator, "predict"):
        raise ArtifactError(
            f"the skops file holds a {type(estimator).__name__}, which has no predict method; "
            f"expected a fitted scikit-learn classifier, regressor or pipeline ending in one."
        )
    try:
        check_is_fitted(estimator)
    except (NotFittedError, TypeError) as exc:
        raise ArtifactError(
            f"the {type(estimator).__name__} in the skops file is not fitted; fit it, then save."
        ) from exc
    n_features = getattr(estimator, "n_features_in_", None)
    width = n_features if isinstance(n_features, int) else -1
    inputs = (TensorSpec("input", "FP64", (-1, width)),)
    classes = getattr(estimator, "classes_", None)
    if classes is not None:
        if not isinstance(classes, np.ndarray) or classes.ndim != 1:
            raise ArtifactError(
                f"{type(estimator).__name__} is a multi-output classifier, which mlgate does "
                f"not serve yet; expected one label per row. Train one model per target."
            )
        outputs = [TensorSpec("label", datatype_of(classes.dtype), (-1,))]
        if hasattr(estimator, "predict_proba"):
            outputs.append(TensorSpec("probabilities", "FP64", (-1, len(classes))))
        return Signature(inputs=inputs, outputs=tuple(outputs))
    if is_regressor(estimator):
        n_outputs = getattr(estimator, "n_outputs_", 1)
        shape = (-1,) if n_outputs == 1 else (-1, int(n_outputs))
        return Signature(inputs=inputs, outputs=(TensorSpec("prediction", "FP64", shape),))
    raise ArtifactError(
        f"{type(estimator).__name__} is neither a classifier nor a regressor; mlgate serves "
        f"those two kinds of scikit-learn model. Wrap it in a pipeline ending in one."
    )


def _metadata(data: bytes, estimator: Any) -> dict[str, object]:
    cls = type(estimator)
    metadata: dict[str, object] = {"estimator": f"{cls.__module__}.{cls.__qualname__}"}
    schema = _schema(data)
    # scikit-learn drops _sklearn_version from the object when it is restored,
    # so the version the model was saved with is only in the stored schema.
    sklearn_version = _schema_string(schema, "content", "content", "_sklearn_version", "content")
    if sklearn_version is not None:
        metadata["sklearn_version"] = sklearn_version
    if isinstance(schema.get("_skops_version"), str):
        metadata["skops_version"] = schema["_skops_version"]
    names = getattr(estimator, "feature_names_in_", None)
    if isinstance(names, np.ndarray):
        metadata["feature_names"] = [str(n) for n in names]
    classes = getattr(estimator, "classes_", None)
    if isinstance(classes, np.ndarray) and classes.ndim == 1:
        values = classes.tolist()
        if all(isinstance(v, str | int | float | bool) for v in values):
            metadata["classes"] = values
    return metadata


def _schema(data: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError):
        return {}
    return schema if isinstance(schema, dict) else {}


def _schema_string(schema: Mapping[str, Any], *path: str) -> str | None:
    """Follow ``path`` through nested schema nodes to a JSON-encoded string."""
    node: Any = schema
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    try:
        value = json.loads(node) if isinstance(node, str) else None
    except ValueError:
        return None
    return value if isinstance(value, str) else None


# Estimators whose predict() is, by its implementation, classes_[argmax(predict_proba())]
# (ties included): for them one call answers both outputs, halving the cost of a
# request that wants label and probabilities. Others keep calling both methods.
_LABEL_IS_ARGMAX_OF_PROBA = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.tree._classes.DecisionTreeClassifier",
    }
)


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


@dataclass(frozen=True)
class SklearnModel:
    """A fitted estimator behind the :class:`LoadedModel` protocol."""

    signature: Signature
    estimator: Any

    @functools.cached_property
    def _label_from_proba(self) -> bool:
        final = type(_final_step(self.estimator))
        return f"{final.__module__}.{final.__qualname__}" in _LABEL_IS_ARGMAX_OF_PROBA

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        features = next(iter(prepare_inputs(self.signature, inputs).values()))
        cache: dict[str, np.ndarray[Any, Any]] = {}
        names = {spec.name for spec in self.signature.outputs}
        if self._label_from_proba and {"label", "probabilities"} <= names:
            proba = np.asarray(self.estimator.predict_proba(features))
            cache["predict_proba"] = proba
            cache["predict"] = np.asarray(self.estimator.classes_)[proba.argmax(axis=1)]
        result: dict[str, np.ndarray[Any, Any]] = {}
        for spec in self.signature.outputs:
            method = _METHODS[spec.name]
            if method not in cache:
                cache[method] = np.asarray(getattr(self.estimator, method)(features))
            result[spec.name] = cache[method].astype(numpy_dtype(spec.datatype), copy=False)
        return result
