"""scikit-learn estimator or Pipeline -> ONNX bytes that serve the parent's exact interface.

The converted graph is a drop-in replacement for the parent version: the same input
(``input``, FP64, ``[batch, n_features]``) and the same output names and datatypes the
sklearn flavor serves (``label``/``probabilities`` for classifiers, ``prediction`` for
regressors). That matters because an endpoint refuses to route between versions whose
inputs differ. skl2onnx converts in float32 (what tree and linear ONNX-ML operators and
the quantizers work on), so the graph is wrapped: a ``Cast`` to float32 in front, casts
back to the parent's datatypes (and a reshape of ``[N, 1]`` regressions to ``[N]``) behind.
Multi-output regressors are not supported yet: their ``[N, k]`` prediction would need its
own output shape, and flattening it would interleave the targets, so they are refused.

Two traps of scikit-learn 1.9 / skl2onnx 1.20 / onnx 1.23 are handled here:

* HistGradientBoosting: skl2onnx's tree writer appends the Python literal ``False`` to
  ``nodes_missing_value_tracks_true`` for every leaf, and onnx 1.23's protobuf refuses a
  bool in a repeated int field ("Expected an int, got a boolean"). The workaround hands
  skl2onnx, for this one call, a converter for the two HGB types that wraps the stock one
  and turns bools in list attributes into ints before the node is built. Nothing global
  is patched; the graph is the one skl2onnx meant to write (missing values still follow
  ``missing_go_to_left``).
* skl2onnx lists the default ONNX domain twice in ``opset_import`` for tree graphs, which
  makes the onnxruntime quantizer fail ("Failed to find proper ai.onnx domain").
  :func:`dedupe_opsets` keeps one entry per domain, the highest version.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mlgate.errors import ConversionError, OptimizeError
from mlgate.registry.signature import Signature

if TYPE_CHECKING:
    import onnx

__all__ = ["INSTALL_HINT", "SUPPORTED", "dedupe_opsets", "require_extra", "sklearn_to_onnx"]

INSTALL_HINT = "pip install 'mlgate[optimize]'"
SUPPORTED = (
    "scikit-learn classifiers and single-output regressors that skl2onnx converts (linear "
    "models, trees, forests, gradient boosting incl. HistGradientBoosting, MLP, SVMs incl. "
    "LinearSVC, k-NN, naive Bayes) and Pipelines of its transformers ending in one; not "
    "multi-output regressors, nor kernel ridge or Gaussian processes"
)
# The default domain has two spellings; both mean the same operator set.
_DEFAULT_DOMAINS = ("", "ai.onnx")
_FLOAT, _DOUBLE, _INT64, _STRING = 1, 11, 7, 8  # onnx.TensorProto data types
_ONNX_TYPE = {
    "BOOL": 9,
    "UINT8": 2,
    "UINT16": 4,
    "UINT32": 12,
    "UINT64": 13,
    "INT8": 3,
    "INT16": 5,
    "INT32": 6,
    "INT64": 7,
    "FP16": 10,
    "FP32": 1,
    "FP64": 11,
    "BYTES": 8,
}


def require_extra(module: str) -> Any:
    """Import an optional dependency, or say which pip extra provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise OptimizeError(
            f"optimising needs {module.split('.')[0]}, which is not installed ({exc}); "
            f"install the extra: {INSTALL_HINT}"
        ) from exc


def dedupe_opsets(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` with one ``opset_import`` per domain, at the highest version.

    ``""`` and ``"ai.onnx"`` count as one domain (written as ``""``). Keeping the highest
    version is safe because an operator set includes every operator of lower versions
    that it did not replace, and the checker validates the result.
    """
    import onnx

    best: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain in _DEFAULT_DOMAINS else entry.domain
        best[domain] = max(best.get(domain, entry.version), entry.version)
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    del fixed.opset_import[:]
    fixed.opset_import.extend(onnx.helper.make_opsetid(d, v) for d, v in sorted(best.items()))
    return fixed


def sklearn_to_onnx(estimator: Any, signature: Signature) -> bytes:
    """Convert a fitted estimator or Pipeline to ONNX serving ``signature``'s tensors.

    ``signature`` is the parent version's (one FP64 input of known width; outputs named
    by the sklearn flavor). Raises :class:`ConversionError` naming the estimator when
    skl2onnx cannot convert it, and :class:`OptimizeError` when skl2onnx is missing.
    """
    import onnx

    width = _input_width(signature)
    _check_single_output(signature, estimator)
    skl2onnx = require_extra("skl2onnx")
    data_types = require_extra("skl2onnx.common.data_types")
    final = _final_step(estimator)
    is_classifier = getattr(final, "classes_", None) is not None
    # zipmap (probabilities as a list of dicts) exists only where there are probabilities:
    # skl2onnx refuses the option for LinearSVC and other classifiers without predict_proba.
    has_proba = is_classifier and hasattr(final, "predict_proba")
    options = {id(final): {"zipmap": False}} if has_proba else None
    try:
        with warnings.catch_warnings():
            # skl2onnx warns about opsets newer than it was tested with; the checker and
            # the parent comparison are the real test of the graph.
            warnings.simplefilter("ignore")
            model = skl2onnx.convert_sklearn(
                estimator,
                initial_types=[("input", data_types.FloatTensorType([None, width]))],
                options=options,
                **_hgb_workaround(),
            )
    except Exception as exc:
        detail = " ".join(str(exc).split())[:300]
        raise ConversionError(
            f"skl2onnx {skl2onnx.__version__} cannot convert {_describe(estimator)} "
            f"({type(exc).__name__}: {detail}). Supported: {SUPPORTED}. Serve this "
            f"version as it is, or retrain with a supported estimator."
        ) from exc
    wanted = [spec.name for spec in signature.outputs]
    produced = [o.name for o in model.graph.output]
    roles = ("label", "probabilities") if is_classifier else ("prediction",)
    sources = dict(zip(roles, produced, strict=False))
    missing = [name for name in wanted if name not in sources]
    if missing:
        raise ConversionError(
            f"the ONNX graph of {_describe(estimator)} has outputs {produced}, none of which "
            f"can serve the parent's {missing}; expected {list(roles)}. Serve this version "
            f"as it is."
        )
    _wrap_interface(model, signature, sources, _describe(estimator))
    # skl2onnx names the graph with a random uuid; a fixed name makes the bytes a function
    # of the model alone, so a rerun finds the version it registered before.
    model.graph.name = _describe(estimator)
    model = dedupe_opsets(model)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise ConversionError(
            f"the converted graph of {_describe(estimator)} fails onnx.checker ({exc}); "
            f"this is a converter bug: serve this version as it is."
        ) from exc
    return bytes(model.SerializeToString())


def _input_width(signature: Signature) -> int:
    inputs = signature.inputs
    if len(inputs) != 1 or inputs[0].datatype != "FP64" or len(inputs[0].shape) != 2:
        raise ConversionError(
            f"expected the sklearn flavor's single FP64 [batch, features] input, found "
            f"{[s.to_json() for s in inputs]}; only scikit-learn versions can be converted."
        )
    width = inputs[0].shape[1]
    if width < 1:
        raise ConversionError(
            "the parent's signature does not fix the number of features (shape "
            f"{inputs[0].shape}); re-register it with a signature override that does."
        )
    return width


def _check_single_output(signature: Signature, estimator: Any) -> None:
    for spec in signature.outputs:
        if spec.name == "prediction" and len(spec.shape) != 1:
            raise ConversionError(
                f"{_describe(estimator)} predicts {spec.shape[1]} targets per row; multi-output "
                f"regressors cannot be optimised yet. Serve this version as it is, or train "
                f"one model per target."
            )


def _final_step(estimator: Any) -> Any:
    steps = getattr(estimator, "steps", None)
    return steps[-1][1] if steps else estimator


def _describe(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if steps:
        return "Pipeline(" + " -> ".join(type(step).__name__ for _, step in steps) + ")"
    return type(estimator).__name__


def _hgb_workaround() -> dict[str, Any]:
    """Per-call converters for HistGradientBoosting that keep bools out of int lists."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    registration = require_extra("skl2onnx.common._registration")
    supported = require_extra("skl2onnx._supported_operators")
    converters: dict[type, Callable[..., None]] = {}
    shapes: dict[type, Callable[..., None]] = {}
    for kind in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias = supported.sklearn_operator_name_map[kind]
        converters[kind] = _with_int_lists(registration.get_converter(alias))
        shapes[kind] = registration.get_shape_calculator(alias)
    return {"custom_conversion_functions": converters, "custom_shape_calculators": shapes}


def _with_int_lists(convert: Callable[..., None]) -> Callable[..., None]:
    def converter(scope: Any, operator: Any, container: Any) -> None:
        convert(scope, operator, _IntListContainer(container))

    return converter


class _IntListContainer:
    """skl2onnx's container, except that ``add_node`` writes bools in lists as 0/1."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, name: str) -> Any:
        return getattr(self._container, name)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        fixed = {
            key: [int(v) if isinstance(v, bool) else v for v in value]
            if isinstance(value, list)
            else value
            for key, value in attrs.items()
        }
        return self._container.add_node(*args, **fixed)


def _wrap_interface(
    model: onnx.ModelProto, signature: Signature, sources: dict[str, str], described: str
) -> None:
    """Give the float32 graph the parent's FP64 input and its output names and types."""
    from onnx import helper

    graph = model.graph
    _rename(graph, "input", "input_float32")
    cast_in = helper.make_node("Cast", ["input"], ["input_float32"], to=_FLOAT, name="CastInput")
    spec = signature.inputs[0]
    new_input = helper.make_tensor_value_info("input", _DOUBLE, ["batch", spec.shape[1]])
    del graph.input[:]
    graph.input.append(new_input)
    tail = []
    outputs = []
    for out in signature.outputs:
        raw = f"{sources[out.name]}_onnx"
        _rename(graph, sources[out.name], raw)
        target = _ONNX_TYPE[out.datatype]
        current = raw
        if out.name == "prediction" and len(out.shape) == 1:
            # The reshape to [N] is safe only for [N, 1]: [N, k] would interleave k targets.
            declared = _output_dims(graph, sources[out.name])
            if len(declared) != 2 or declared[1] != 1:
                shown = ", ".join("N" if i == 0 else str(d or "?") for i, d in enumerate(declared))
                raise ConversionError(
                    f"skl2onnx's graph of {described} predicts [{shown}] where the parent "
                    f"serves one value per row; multi-output regressors cannot be "
                    f"optimised yet. Serve this version as it is."
                )
            tail.append(_flatten(graph, current, out.name))
            current = f"{out.name}_flat"
        if target != _STRING:
            tail.append(helper.make_node("Cast", [current], [out.name], to=target))
        else:
            tail.append(helper.make_node("Identity", [current], [out.name]))
        dims = ["batch", *(d if d > 0 else f"d{i}" for i, d in enumerate(out.shape[1:], 1))]
        outputs.append(helper.make_tensor_value_info(out.name, target, dims))
    nodes = [cast_in, *graph.node, *tail]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.output[:]
    graph.output.extend(outputs)
    del graph.value_info[:]  # may describe the renamed float32 tensors


def _output_dims(graph: onnx.GraphProto, name: str) -> list[int | None]:
    """The declared dims of graph output ``name`` (None where not a fixed number)."""
    for output in graph.output:
        if output.name == name:
            dims = output.type.tensor_type.shape.dim
            return [d.dim_value if d.HasField("dim_value") else None for d in dims]
    return []


def _flatten(graph: onnx.GraphProto, source: str, name: str) -> onnx.NodeProto:
    from onnx import helper, numpy_helper

    shape_name = f"{name}_flat_shape"
    graph.initializer.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), shape_name))
    return helper.make_node("Reshape", [source, shape_name], [f"{name}_flat"])


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new
        for i, name in enumerate(node.output):
            if name == old:
                node.output[i] = new
