"""Model file formats ("flavors") mlgate can register and serve.

Flavors are stateless, so the set of them is a tuple constant rather than a
registry that can be mutated at run time: what mlgate accepts is decided by the
installed code alone, which keeps registration reproducible.
"""

from __future__ import annotations

from mlgate.errors import UnknownFlavorError
from mlgate.registry.flavors.base import Flavor, Inspection, LoadedModel
from mlgate.registry.flavors.lightgbm import LightgbmFlavor
from mlgate.registry.flavors.onnx import OnnxFlavor
from mlgate.registry.flavors.sklearn import SklearnFlavor
from mlgate.registry.flavors.torch import TorchFlavor

__all__ = ["FLAVORS", "Flavor", "Inspection", "LoadedModel", "detect_flavor", "flavor_named"]

FLAVORS: tuple[Flavor, ...] = (OnnxFlavor(), SklearnFlavor(), LightgbmFlavor(), TorchFlavor())

_FORMATS = (
    "an ONNX model (.onnx), a scikit-learn model saved with skops (.skops), "
    "a TorchScript archive (torch.jit.save) or a LightGBM text model (Booster.save_model)"
)


def flavor_named(name: str) -> Flavor:
    """Return the flavor called ``name``, as given to ``--flavor``."""
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    known = ", ".join(flavor.name for flavor in FLAVORS)
    raise UnknownFlavorError(
        f"unknown flavor {name!r}; expected one of: {known}. Pass one of those to --flavor."
    )


def detect_flavor(data: bytes) -> Flavor:
    """Pick the flavor whose cheap content check accepts ``data``.

    The checks are mutually exclusive by construction (protobuf tag; zip magic with
    TorchScript's ``data.pkl`` and ``code/`` entries for torch, any other zip for skops;
    LightGBM header), so order does not matter.
    """
    for flavor in FLAVORS:
        if flavor.sniff(data):
            return flavor
    names = ", ".join(flavor.name for flavor in FLAVORS)
    if not data:
        found = "an empty file"
    elif data[:1] == b"\x80":
        found = (
            "what looks like a pickle or joblib file, which mlgate never loads because "
            "unpickling runs arbitrary code (re-save scikit-learn models with skops.io.dump)"
        )
    else:
        found = f"a file starting with {data[:16]!r}"
    raise UnknownFlavorError(
        f"cannot tell the model format: expected {_FORMATS}, found {found}. If the file is "
        f"one of these, pass --flavor with one of: {names}."
    )
