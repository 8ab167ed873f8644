"""What every model flavor provides, and the input checks they share.

A flavor turns the bytes of one model file format into two things: an
:class:`Inspection` that registration records (and the ledger later commits to),
and a :class:`LoadedModel` that serving calls. Keeping both behind one small
protocol lets the registry, CLI and server treat ONNX, scikit-learn and LightGBM
files alike, and keeps every third-party parser behind a boundary that turns its
exceptions into :class:`~mlgate.errors.ArtifactError`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlgate.errors import ArtifactError, SignatureError
from mlgate.registry.signature import Signature, TensorSpec, numpy_dtype

__all__ = ["Flavor", "Inspection", "LoadedModel", "check_flavor", "prepare_inputs"]


@dataclass(frozen=True)
class Inspection:
    """What registration learns from a model file without serving it.

    ``metadata`` must be plain JSON (str keys; str, int, finite float, bool, None,
    list and dict values) because it is stored and hashed as JSON; this is
    checked on construction so a flavor cannot record something that would not
    survive a round trip. ``trusted_types`` is the sorted list of skops types the
    user had to trust, and is what loading trusts again later; it is ``()`` for
    flavors that never deserialize code-bearing objects.
    """

    flavor: str
    signature: Signature
    metadata: dict[str, object] = field(hash=False)
    trusted_types: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.flavor, str) or not self.flavor:
            raise ArtifactError(
                f"inspection flavor must be a non-empty string, found {self.flavor!r}."
            )
        if not isinstance(self.signature, Signature):
            raise ArtifactError("inspection signature must be a Signature.")
        if not isinstance(self.metadata, dict):
            raise ArtifactError("inspection metadata must be a JSON object.")
        _check_json(self.metadata, "metadata")
        if not isinstance(self.trusted_types, tuple) or not all(
            isinstance(t, str) and t for t in self.trusted_types
        ):
            raise ArtifactError(
                f"inspection trusted_types must be a tuple of type names, "
                f"found {self.trusted_types!r}."
            )

    def to_json(self) -> dict[str, object]:
        """Return the JSON form stored with a model version."""
        return {
            "flavor": self.flavor,
            "signature": self.signature.to_json(),
            "metadata": self.metadata,
            "trusted_types": list(self.trusted_types),
        }

    @classmethod
    def from_json(cls, data: object) -> Inspection:
        """Parse :meth:`to_json` output.

        A malformed record means the stored registration is damaged, so it is an
        :class:`ArtifactError`; a malformed signature inside it stays a
        :class:`SignatureError`.
        """
        keys = {"flavor", "signature", "metadata", "trusted_types"}
        if not isinstance(data, Mapping) or set(data) != keys:
            found = sorted(map(str, data)) if isinstance(data, Mapping) else type(data).__name__
            raise ArtifactError(
                f"stored inspection must be a JSON object with keys {sorted(keys)}, found "
                f"{found}; the registration record is damaged, re-register the model."
            )
        metadata = data["metadata"]
        trusted = data["trusted_types"]
        flavor = data["flavor"]
        if not isinstance(metadata, dict) or not isinstance(trusted, list):
            raise ArtifactError(
                "stored inspection has a non-object metadata or a non-list trusted_types; "
                "the registration record is damaged, re-register the model."
            )
        if not isinstance(flavor, str):
            raise ArtifactError(f"stored inspection flavor must be a string, found {flavor!r}.")
        return cls(
            flavor=flavor,
            signature=Signature.from_json(data["signature"]),
            metadata=metadata,
            trusted_types=tuple(trusted),
        )


def _check_json(value: object, where: str) -> None:
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArtifactError(f"inspection {where} holds {value!r}, which JSON cannot store.")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArtifactError(f"inspection {where} has non-string key {key!r}.")
            _check_json(item, f"{where}.{key}")
        return
    raise ArtifactError(
        f"inspection {where} holds a {type(value).__name__}; expected plain JSON values "
        f"(str, int, float, bool, None, list, dict)."
    )


class LoadedModel(Protocol):
    """A model ready to answer predictions for its signature."""

    @property
    def signature(self) -> Signature: ...

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        """Run the model; ``inputs`` must name exactly the signature's inputs."""
        ...


class Flavor(Protocol):
    """One model file format mlgate can register and serve."""

    @property
    def name(self) -> str: ...

    def sniff(self, data: bytes) -> bool:
        """Cheaply tell whether ``data`` looks like this format; never parses fully."""
        ...

    def inspect(self, data: bytes, *, trusted_types: Sequence[str] = ()) -> Inspection:
        """Fully validate ``data`` and infer its signature.

        Raises :class:`~mlgate.errors.ArtifactError` (or its subclass
        :class:`~mlgate.errors.UntrustedArtifactError`) when it cannot.
        """
        ...

    def load(self, data: bytes, inspection: Inspection) -> LoadedModel:
        """Build a servable model from bytes that ``inspect`` accepted before."""
        ...


def check_flavor(inspection: Inspection, flavor: str) -> None:
    """Refuse to load bytes with an inspection recorded for another flavor."""
    if inspection.flavor != flavor:
        raise ArtifactError(
            f"cannot load with the {flavor!r} flavor an artifact registered as "
            f"{inspection.flavor!r}; load it with flavor_named({inspection.flavor!r})."
        )


def prepare_inputs(
    signature: Signature, inputs: Mapping[str, np.ndarray[Any, Any]]
) -> dict[str, np.ndarray[Any, Any]]:
    """Check ``inputs`` against ``signature`` and cast each to its declared dtype.

    Casting is limited to numpy's ``same_kind`` rule so a float never silently
    becomes an int, and integer narrowing is range-checked so values never wrap.
    Doing this here gives one clear :class:`SignatureError` for every flavor
    instead of each runtime's own wording.
    """
    expected = [spec.name for spec in signature.inputs]
    missing = [name for name in expected if name not in inputs]
    extra = sorted(name for name in inputs if name not in expected)
    if missing or extra:
        raise SignatureError(
            f"model expects inputs {expected}; missing {missing}, unexpected {extra}. "
            f"Send exactly the inputs in the model's signature."
        )
    return {spec.name: _cast(spec, inputs[spec.name]) for spec in signature.inputs}


def _cast(spec: TensorSpec, value: object) -> np.ndarray[Any, Any]:
    array = np.asarray(value)
    target = numpy_dtype(spec.datatype)
    if not np.can_cast(array.dtype, target, casting="same_kind"):
        raise SignatureError(
            f"input {spec.name!r} must be {spec.datatype}, found numpy {array.dtype}, which "
            f"cannot be converted without changing its kind; send {spec.datatype} values."
        )
    if array.dtype.kind in "iu" and target.kind in "iu" and array.size:
        info = np.iinfo(target)
        if array.min() < info.min or array.max() > info.max:
            raise SignatureError(
                f"input {spec.name!r} is {spec.datatype} but holds values outside "
                f"[{info.min}, {info.max}]; send values that fit."
            )
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        raise SignatureError(
            f"input {spec.name!r} must have shape {list(spec.shape)} (-1 = any size), "
            f"found {list(array.shape)}; reshape it to match."
        )
    return array.astype(target, copy=False)
