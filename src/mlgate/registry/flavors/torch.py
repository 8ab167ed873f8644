"""The PyTorch flavor: TorchScript archives written by ``torch.jit.save``.

A TorchScript archive is code, and is treated as such. Nothing in it is unpickled as
arbitrary Python objects (``torch.jit.load``, on the CPU, rebuilds the module from
TorchScript code and tensors), but TorchScript's operators include file I/O
(``torch.from_file`` reads any file the server can read, and a model can hand its bytes
back in its outputs), and registration runs the module once. So, like a skops file's
types, a TorchScript archive must be vouched for: it is registered only with the trust
token :data:`TRUST` (``mlgate models register ... --trust torchscript``), recorded with
the version, and refused without it. Plain ``torch.save`` files (pickled modules) are
never accepted.

TorchScript carries no tensor shapes or names, so the signature comes from an extra file
in the archive, :data:`SIGNATURE_FILE` (``mlgate/signature.json``, written by
:func:`save_torchscript`), else from the signature the user passes at registration
(``--signature``), else registration fails saying exactly what to pass. The module's
``forward`` takes the signature's inputs in order and returns one tensor (one output) or
a tuple of tensors in the signature's output order.

Needs torch: ``pip install 'mlgate[torch]'``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from mlgate.errors import ArtifactError, SignatureError, UntrustedArtifactError
from mlgate.registry.flavors.base import Inspection, check_flavor, prepare_inputs
from mlgate.registry.signature import Signature, numpy_dtype

__all__ = [
    "TRUST",
    "INSTALL_HINT",
    "SIGNATURE_FILE",
    "TorchFlavor",
    "TorchModel",
    "looks_like_torchscript",
    "named_outputs",
    "quiet_jit_deprecation",
    "require_torch",
    "save_torchscript",
]

SIGNATURE_FILE = "mlgate/signature.json"
# The --trust token a TorchScript archive needs: the user vouches for its code.
TRUST = "torchscript"
INSTALL_HINT = "pip install 'mlgate[torch]'"


def require_torch() -> Any:
    """Import torch, or raise an ArtifactError naming the pip extra."""
    try:
        import torch
    except ImportError as exc:
        raise ArtifactError(
            f"PyTorch models need torch, which is not installed ({exc}); install the "
            f"extra: {INSTALL_HINT}"
        ) from exc
    return torch


@contextlib.contextmanager
def quiet_jit_deprecation() -> Iterator[None]:
    """Silence torch's "torch.jit.* is deprecated" warnings for the length of the block.

    torch 2.9+ deprecates TorchScript in favour of torch.export, but a TorchScript archive
    is still the one PyTorch format that loads without unpickling Python objects; a
    torch.export (.pt2) flavor can join later. The warning says nothing about the model.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.", category=DeprecationWarning)
        yield


def looks_like_torchscript(data: bytes) -> bool:
    """A zip with ``*/data.pkl`` and ``*/code/`` entries and no skops ``schema.json``.

    Reads only the zip's central directory. A damaged zip is not TorchScript here, so a
    damaged skops file still reaches the sklearn flavor and its own error.
    """
    if data[:4] != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return False
    if "schema.json" in names:
        return False
    pickle = any(name.count("/") == 1 and name.endswith("/data.pkl") for name in names)
    code = any(name.split("/")[1:2] == ["code"] for name in names)
    return pickle and code


def save_torchscript(
    module: Any, signature: Signature, target: str | os.PathLike[str] | BinaryIO | None = None
) -> bytes:
    """Script (or keep) ``module``, embed ``signature`` and return the archive's bytes.

    An ``nn.Module`` is compiled with ``torch.jit.script``; an already scripted or traced
    module is saved as it is. ``target`` (a path or a binary file) also receives the bytes.
    """
    torch = require_torch()
    scripted = module if isinstance(module, torch.jit.ScriptModule) else None
    if scripted is None:
        try:
            with quiet_jit_deprecation():
                scripted = torch.jit.script(module)
        except Exception as exc:
            raise ArtifactError(
                f"torch.jit.script cannot compile {type(module).__name__} ({type(exc).__name__}: "
                f"{exc}); trace it with torch.jit.trace and pass the traced module."
            ) from exc
    buffer = io.BytesIO()
    extra = {SIGNATURE_FILE: json.dumps(signature.to_json(), sort_keys=True)}
    with quiet_jit_deprecation():
        torch.jit.save(scripted, buffer, _extra_files=extra)
    data = buffer.getvalue()
    if isinstance(target, str | os.PathLike):
        with open(target, "wb") as handle:
            handle.write(data)
    elif target is not None:
        target.write(data)
    return data


class TorchFlavor:
    """TorchScript modules, loaded with ``torch.jit.load`` on CPU."""

    name = "torch"

    def sniff(self, data: bytes) -> bool:
        return looks_like_torchscript(data)

    def inspect(
        self,
        data: bytes,
        *,
        trusted_types: Sequence[str] = (),
        signature: Signature | None = None,
    ) -> Inspection:
        """Load the module, read its embedded signature (else ``signature``), try one row.

        Refused unless ``trusted_types`` holds :data:`TRUST` (see the module docstring).
        A ``signature`` given beside an embedded one wins, and is the one tried.
        """
        if TRUST not in trusted_types:
            raise UntrustedArtifactError(
                "a TorchScript archive is code: its operators can read files the server can "
                "read, and registering it runs it once. Register only archives you trust, "
                f"with --trust {TRUST} (Python: trusted_types=['{TRUST}'])."
            )
        torch = require_torch()
        module, embedded = _load(torch, data)
        source = "embedded"
        if signature is not None:
            embedded, source = signature, "override"
        if embedded is None:
            if signature is None:
                raise SignatureError(
                    "the TorchScript archive has no mlgate/signature.json and TorchScript "
                    "records no tensor shapes, so mlgate cannot infer its signature. Save it "
                    "with mlgate.registry.flavors.torch.save_torchscript(module, signature, "
                    "path), or register it with --signature sig.json, e.g. "
                    '{"inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 50]}], '
                    '"outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]}, '
                    '{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]} '
                    "naming forward's inputs and returned tensors in order."
                )
            embedded, source = signature, "override"
        _try_one_row(torch, module, embedded)
        metadata: dict[str, object] = {
            "torch_version": str(torch.__version__).split("+")[0],
            "module": str(getattr(module, "original_name", type(module).__name__)),
            "parameters": int(sum(p.numel() for p in module.parameters())),
            "signature_source": source,
        }
        return Inspection(
            flavor=self.name, signature=embedded, metadata=metadata, trusted_types=(TRUST,)
        )

    def load(self, data: bytes, inspection: Inspection) -> TorchModel:
        torch = require_torch()
        check_flavor(inspection, self.name)
        if TRUST not in inspection.trusted_types:
            raise UntrustedArtifactError(
                f"this TorchScript version was not registered with --trust {TRUST}; "
                "register the archive again, trusting it, to serve it"
            )
        module, _ = _load(torch, data)
        return TorchModel(signature=inspection.signature, module=module)


def _load(torch: Any, data: bytes) -> tuple[Any, Signature | None]:
    extra = {SIGNATURE_FILE: ""}
    try:
        with quiet_jit_deprecation():
            module = torch.jit.load(io.BytesIO(data), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ArtifactError(
            f"torch.jit.load cannot read the archive ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:300]}); expected a TorchScript module saved with "
            f"torch.jit.save (plain torch.save pickles are not accepted). Re-save it with "
            f"torch.jit.save or save_torchscript."
        ) from exc
    module.eval()
    raw = extra[SIGNATURE_FILE]
    if not raw:
        return module, None
    try:
        return module, Signature.from_json(json.loads(raw))
    except (ValueError, SignatureError) as exc:
        raise ArtifactError(
            f"the archive's {SIGNATURE_FILE} is not a valid signature ({exc}); save the "
            f"module again with save_torchscript."
        ) from exc


def _try_one_row(torch: Any, module: Any, signature: Signature) -> None:
    """Run one zero row when every non-batch dimension is fixed, to check the outputs."""
    if any(-1 in spec.shape[1:] or not spec.shape for spec in signature.inputs):
        return
    feed = {
        spec.name: np.zeros((1, *spec.shape[1:]), dtype=numpy_dtype(spec.datatype))
        for spec in signature.inputs
    }
    try:
        TorchModel(signature=signature, module=module).predict(feed)
    except SignatureError as exc:
        raise ArtifactError(f"the module does not fit its signature: {exc}") from exc
    except Exception as exc:
        raise ArtifactError(
            f"the module failed on one row of zeros shaped by its signature "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); check that the "
            f"signature names forward's inputs with their datatypes and shapes."
        ) from exc


def _check_shape(spec: Any, shape: tuple[int, ...], rows: int | None) -> None:
    """The module's output must have the declared rank, fixed sizes and one row per input."""
    declared = tuple(spec.shape)
    fits = len(shape) == len(declared) and all(
        want in (-1, got) for want, got in zip(declared, shape, strict=True)
    )
    if fits and rows is not None and declared and shape[0] != rows:
        fits = False
    if not fits:
        raise SignatureError(
            f"output {spec.name!r} came back shaped {list(shape)} for {rows} rows, but the "
            f"signature declares {list(declared)}; fix the signature or the module's forward"
        )


def named_outputs(signature: Signature, result: Any) -> dict[str, Any]:
    """Name ``forward``'s result (a tensor, or a tuple in signature order) by the signature."""
    values = list(result) if isinstance(result, tuple | list) else [result]
    names = [spec.name for spec in signature.outputs]
    if len(values) != len(names):
        raise SignatureError(
            f"the module returned {len(values)} tensor(s) but the signature names "
            f"{len(names)} outputs {names}; forward must return the outputs in signature order."
        )
    return dict(zip(names, values, strict=True))


@dataclass(frozen=True)
class TorchModel:
    """A TorchScript module behind the :class:`LoadedModel` protocol."""

    signature: Signature
    module: Any

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        import torch

        feed = prepare_inputs(self.signature, inputs)
        # torch.from_numpy shares memory and warns on read-only arrays: copy those.
        tensors = [
            torch.from_numpy(a if a.flags.writeable and a.flags.c_contiguous else a.copy())
            for a in (feed[spec.name] for spec in self.signature.inputs)
        ]
        with torch.inference_mode():
            result = self.module(*tensors)
        named = named_outputs(self.signature, result)
        rows = tensors[0].shape[0] if tensors and tensors[0].dim() else None
        outputs = {}
        for spec in self.signature.outputs:
            value = np.asarray(named[spec.name].numpy()).astype(
                numpy_dtype(spec.datatype), copy=False
            )
            _check_shape(spec, value.shape, rows)
            outputs[spec.name] = value
        return outputs
