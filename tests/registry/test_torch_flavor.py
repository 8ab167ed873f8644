"""The torch flavor: TorchScript archives registered, detected next to skops, and served."""

from __future__ import annotations

import io
import sys
import zipfile
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from mlgate.errors import (
    ArtifactError,
    ModelNotFoundError,
    SignatureError,
    UnknownFlavorError,
    UntrustedArtifactError,
)
from mlgate.registry.flavors import detect_flavor, flavor_named
from mlgate.registry.flavors.torch import (
    SIGNATURE_FILE,
    TRUST,
    quiet_jit_deprecation,
    save_torchscript,
)
from mlgate.registry.signature import Signature, TensorSpec
from mlgate.workspace import Workspace
from tests.models import ACTOR

SIGNATURE = Signature(
    inputs=(TensorSpec("input", "FP32", (-1, 4)),),
    outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 3))),
)


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probabilities = torch.softmax(self.net(x), dim=1)
        return torch.argmax(probabilities, dim=1), probabilities


def _module() -> nn.Module:
    torch.manual_seed(0)
    return TinyClassifier().eval()


def _bare_archive(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    with quiet_jit_deprecation():
        torch.jit.save(torch.jit.script(module), buffer)
    return buffer.getvalue()


def _skops_bytes() -> bytes:
    import skops.io
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(40, 4))
    return bytes(skops.io.dumps(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))))


def test_round_trip_predicts_like_the_module(workspace: Workspace, tmp_path: Any) -> None:
    module = _module()
    path = tmp_path / "model.pt"
    data = save_torchscript(module, SIGNATURE, path)
    assert path.read_bytes() == data
    version = workspace.registry.register("clf", data, actor=ACTOR, trusted_types=[TRUST])
    assert version.flavor == "torch" and version.signature == SIGNATURE
    assert version.flavor_metadata["signature_source"] == "embedded"
    assert version.flavor_metadata["parameters"] == 4 * 8 + 8 + 8 * 3 + 3
    _, loaded = workspace.registry.load("clf", 1)
    x = np.random.default_rng(1).normal(size=(16, 4))  # FP64 in, cast to the declared FP32
    out = loaded.predict({"input": x})
    with torch.no_grad():
        label, proba = module(torch.from_numpy(x.astype(np.float32)))
    assert out["label"].dtype == np.int64 and out["probabilities"].dtype == np.float32
    np.testing.assert_array_equal(out["label"], label.numpy())
    np.testing.assert_allclose(out["probabilities"], proba.numpy(), rtol=0, atol=1e-7)
    readonly = x.astype(np.float32)
    readonly.flags.writeable = False  # as a server's decoded buffer is: no torch warning
    assert loaded.predict({"input": readonly})["label"].shape == (16,)


def test_detected_next_to_skops_in_one_workspace(workspace: Workspace) -> None:
    torch_data = save_torchscript(_module(), SIGNATURE)
    skops_data = _skops_bytes()
    assert detect_flavor(torch_data).name == "torch"
    assert detect_flavor(skops_data).name == "sklearn"
    assert (
        workspace.registry.register("t", torch_data, actor=ACTOR, trusted_types=[TRUST]).flavor
        == "torch"
    )
    assert workspace.registry.register("s", skops_data, actor=ACTOR).flavor == "sklearn"
    # a damaged skops file is still the sklearn flavor's, with its error
    with pytest.raises(ArtifactError, match="damaged skops file"):
        workspace.registry.register("s", skops_data[: len(skops_data) // 2], actor=ACTOR)
    # a torch.save pickle is not TorchScript and is refused by the torch flavor
    pickled = io.BytesIO()
    torch.save(_module().state_dict(), pickled)
    assert not flavor_named("torch").sniff(pickled.getvalue())


def test_missing_signature_says_what_to_pass(workspace: Workspace) -> None:
    data = _bare_archive(_module())
    assert SIGNATURE_FILE not in "".join(zipfile.ZipFile(io.BytesIO(data)).namelist())
    with pytest.raises(SignatureError, match="no mlgate/signature.json"):
        workspace.registry.register("bare", data, actor=ACTOR, trusted_types=[TRUST])
    with pytest.raises(SignatureError) as caught:
        flavor_named("torch").inspect(data, trusted_types=[TRUST])
    assert "save_torchscript" in str(caught.value) and "--signature" in str(caught.value)
    version = workspace.registry.register(
        "bare", data, actor=ACTOR, signature=SIGNATURE, trusted_types=[TRUST]
    )
    assert version.signature == SIGNATURE
    assert version.flavor_metadata["signature_source"] == "override"
    _, loaded = workspace.registry.load("bare", 1)
    assert loaded.predict({"input": np.zeros((2, 4))})["probabilities"].shape == (2, 3)


def test_signature_that_does_not_fit_the_module_is_refused() -> None:
    wrong = Signature(inputs=SIGNATURE.inputs, outputs=(TensorSpec("label", "INT64", (-1,)),))
    with pytest.raises(ArtifactError, match="returned 2 tensor"):
        flavor_named("torch").inspect(save_torchscript(_module(), wrong), trusted_types=[TRUST])
    narrow = Signature(inputs=(TensorSpec("input", "FP32", (-1, 5)),), outputs=SIGNATURE.outputs)
    with pytest.raises(ArtifactError, match="failed on one row of zeros"):
        flavor_named("torch").inspect(save_torchscript(_module(), narrow), trusted_types=[TRUST])


def test_truncated_archive_is_an_artifact_error() -> None:
    data = save_torchscript(_module(), SIGNATURE)
    with pytest.raises(ArtifactError, match="torch.jit.load cannot read"):
        flavor_named("torch").inspect(data[:-200] + b"\0" * 200, trusted_types=[TRUST])
    with pytest.raises(UnknownFlavorError):
        detect_flavor(b"not a model")


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import torch` raise ImportError, as if torch were not installed.
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ArtifactError, match=r"pip install 'mlgate\[torch\]'"):
        flavor_named("torch").inspect(b"PK", trusted_types=[TRUST])


class FileReader(nn.Module):
    """TorchScript can read files: the reason an archive must be trusted to be registered."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_file("/etc/hostname", False, 1, dtype=torch.uint8).float() + x[:, 0]


def test_an_archive_is_code_and_needs_explicit_trust(workspace: Workspace) -> None:
    data = save_torchscript(_module(), SIGNATURE)
    with pytest.raises(UntrustedArtifactError, match="--trust torchscript"):
        workspace.registry.register("untrusted", data, actor=ACTOR)
    reader = Signature(
        inputs=(TensorSpec("input", "FP32", (-1, 4)),),
        outputs=(TensorSpec("prediction", "FP32", (-1,)),),
    )
    with pytest.raises(UntrustedArtifactError):
        workspace.registry.register("reader", save_torchscript(FileReader(), reader), actor=ACTOR)
    with pytest.raises(ModelNotFoundError):  # nothing half-registered
        workspace.registry.versions("untrusted")


def test_a_signature_override_is_tried_against_the_module(workspace: Workspace) -> None:
    data = save_torchscript(_module(), SIGNATURE)
    wider = Signature(inputs=(TensorSpec("input", "FP32", (-1, 5)),), outputs=SIGNATURE.outputs)
    with pytest.raises(ArtifactError, match="one row of zeros"):
        workspace.registry.register(
            "wide", data, actor=ACTOR, trusted_types=[TRUST], signature=wider
        )


def test_outputs_of_another_shape_than_declared_are_refused() -> None:
    wrong = Signature(
        inputs=SIGNATURE.inputs,
        outputs=(TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 2))),
    )
    with pytest.raises(ArtifactError, match="shaped"):
        flavor_named("torch").inspect(save_torchscript(_module(), wrong), trusted_types=[TRUST])
