"""The registry on real stores: versions, aliases, atomic ledgering, verified loads."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.errors import (
    AliasNotFoundError,
    ArtifactError,
    ArtifactIntegrityError,
    DuplicateVersionError,
    InvalidNameError,
    ModelNotFoundError,
    RegistryError,
    SignatureError,
    UnknownFlavorError,
    VersionNotFoundError,
)
from mlgate.ledger.events import digest_json
from mlgate.registry import Lineage, Signature, TensorSpec
from mlgate.store.schema import ledger_entries, model_versions
from mlgate.workspace import Workspace
from tests.registry.conftest import Built


def _counts(ws: Workspace) -> tuple[int, int]:
    with ws.store.read() as conn:
        versions = conn.execute(sa.select(sa.func.count()).select_from(model_versions)).scalar()
        return int(versions or 0), ws.log.size(conn)


def test_versions_count_from_one_and_record_everything(
    workspace: Workspace, onnx_classifier: Built, sklearn_classifier: Built
) -> None:
    first = workspace.registry.register(
        "iris",
        onnx_classifier.data,
        actor="alice",
        params={"C": 0.5, "solver": "lbfgs"},
        metrics={"accuracy": 0.93},
        tags={"team": "risk"},
        lineage=Lineage(
            dataset_fingerprint="sha256:" + "ab" * 32,
            code_commit="deadbeef",
            code_dirty=False,
            run_id="run-1",
        ),
    )
    second = workspace.registry.register(
        "iris",
        sklearn_classifier.data,
        actor="bob",
        lineage=Lineage(parent_version=1),
    )
    assert (first.version, second.version) == (1, 2)
    assert (first.flavor, second.flavor) == ("onnx", "sklearn")
    stored = workspace.registry.get("iris", 1)
    assert stored.record() == first.record()
    assert stored.params == {"C": 0.5, "solver": "lbfgs"}
    assert stored.lineage.code_commit == "deadbeef"
    assert workspace.registry.get("iris").version == 2
    assert workspace.registry.get("iris", "latest").lineage.parent_version == 1
    assert [m.name for m in workspace.registry.models()] == ["iris"]
    assert workspace.registry.models()[0].version_count == 2


def test_each_change_is_ledgered_with_digests_of_what_it_changed(
    workspace: Workspace, onnx_classifier: Built
) -> None:
    version = workspace.registry.register("m", onnx_classifier.data, actor="alice")
    move = workspace.registry.move_alias("m", "champion", 1, actor="carol")
    with workspace.store.read() as conn:
        registered = workspace.log.entry(conn, version.ledger_seq).document()
        moved = workspace.log.entry(conn, move.ledger_seq).document()
    assert registered["kind"] == "model.registered"
    assert registered["actor"] == "alice"
    assert registered["subject"] == {"model": "m", "version": 1}
    assert registered["digests"] == {
        "artifact": "sha256:" + version.sha256,
        "record": digest_json(version.record()),
    }
    assert moved["kind"] == "model.alias_moved"
    assert moved["actor"] == "carol"
    assert moved["digests"]["record"] == digest_json(move.record())
    # Digests only: no payload (params, metrics, signature) is copied into the ledger.
    assert "signature" not in str(registered)


def test_aliases_move_and_keep_their_history(
    workspace: Workspace, onnx_classifier: Built, sklearn_classifier: Built
) -> None:
    workspace.registry.register("m", onnx_classifier.data, actor="a")
    workspace.registry.register("m", sklearn_classifier.data, actor="a")
    workspace.registry.move_alias("m", "champion", 1, actor="a")
    workspace.registry.move_alias("m", "challenger", 2, actor="a")
    workspace.registry.move_alias("m", "champion", 2, actor="b")
    assert workspace.registry.get("m", "champion").version == 2
    assert workspace.registry.get("m", 2).aliases == ("challenger", "champion")
    history = workspace.registry.alias_history("m", "champion")
    assert [(h.from_version, h.to_version, h.actor) for h in history] == [
        (None, 1, "a"),
        (1, 2, "b"),
    ]
    assert workspace.registry.models()[0].aliases == {"champion": 2, "challenger": 2}


def test_duplicate_registration_is_refused_and_changes_nothing(
    workspace: Workspace, onnx_classifier: Built
) -> None:
    workspace.registry.register("m", onnx_classifier.data, actor="a")
    before = _counts(workspace)
    with pytest.raises(DuplicateVersionError, match="already m version 1"):
        workspace.registry.register("m", onnx_classifier.data, actor="a")
    assert _counts(workspace) == before
    # The same bytes under another name are a different model: allowed.
    assert workspace.registry.register("other", onnx_classifier.data, actor="a").version == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.move_alias("m", "champion", 7, actor="a"), VersionNotFoundError, "1..1"),
        (lambda r: r.move_alias("ghost", "champion", 1, actor="a"), ModelNotFoundError, "ghost"),
        (lambda r: r.move_alias("m", "Champ ion", 1, actor="a"), InvalidNameError, "alias"),
        (lambda r: r.move_alias("m", "latest", 1, actor="a"), InvalidNameError, "latest"),
        (lambda r: r.get("m", "champion"), AliasNotFoundError, "mlgate models alias"),
        (lambda r: r.get("m", 3), VersionNotFoundError, "no version 3"),
        (lambda r: r.get("nope"), ModelNotFoundError, "mlgate models register"),
    ],
)
def test_bad_references_get_clear_errors_and_change_nothing(
    workspace: Workspace, onnx_classifier: Built, call: Any, error: type[Exception], message: str
) -> None:
    workspace.registry.register("m", onnx_classifier.data, actor="a")
    before = _counts(workspace)
    with pytest.raises(error, match=message):
        call(workspace.registry)
    assert _counts(workspace) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "bad name"}, InvalidNameError, "not allowed"),
        ({"name": "../etc"}, InvalidNameError, "not allowed"),
        ({"data": b"garbage bytes"}, UnknownFlavorError, "onnx"),
        ({"flavor": "sklearn"}, ArtifactError, "not a skops file"),
        ({"flavor": "tensorflow"}, UnknownFlavorError, "tensorflow"),
        ({"metrics": {"auc": float("nan")}}, RegistryError, "finite"),
        ({"metrics": {"auc": "high"}}, RegistryError, "number"),
        ({"params": {"layers": [1, 2]}}, RegistryError, "param 'layers'"),
        ({"tags": {"team": 3}}, RegistryError, "tag 'team'"),
    ],
)
def test_bad_registrations_are_refused_before_anything_is_written(
    workspace: Workspace,
    onnx_classifier: Built,
    kwargs: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    arguments: dict[str, Any] = {"name": "m", "data": onnx_classifier.data, "actor": "a", **kwargs}
    before = _counts(workspace)
    with pytest.raises(error, match=message):
        workspace.registry.register(**arguments)
    assert _counts(workspace) == before
    assert not workspace.artifacts.root.exists() or not any(workspace.artifacts.root.rglob("*"))


def test_corrupt_model_file_is_refused(workspace: Workspace, onnx_classifier: Built) -> None:
    with pytest.raises(ArtifactError):
        workspace.registry.register("m", onnx_classifier.data[:-40], actor="a", flavor="onnx")
    assert _counts(workspace) == (0, 1)


def test_signature_override_refines_but_must_name_real_tensors(
    workspace: Workspace, onnx_classifier: Built
) -> None:
    inferred = workspace.registry.register("m", onnx_classifier.data, actor="a").signature
    refined = Signature(
        inputs=(TensorSpec("x", "FP32", (8, 4)),),
        outputs=inferred.outputs,
    )
    workspace.registry.register("n", onnx_classifier.data, actor="a", signature=refined)
    assert workspace.registry.get("n").signature.inputs[0].shape == (8, 4)
    wrong = Signature(inputs=(TensorSpec("features", "FP32", (-1, 4)),), outputs=inferred.outputs)
    with pytest.raises(SignatureError, match="features"):
        workspace.registry.register("o", onnx_classifier.data, actor="a", signature=wrong)


def test_loading_verifies_the_hash_every_time(
    workspace: Workspace, sklearn_classifier: Built
) -> None:
    version = workspace.registry.register("m", sklearn_classifier.data, actor="a")
    loaded_version, model = workspace.registry.load("m")
    assert loaded_version.version == 1
    output = model.predict(sklearn_classifier.inputs)
    np.testing.assert_array_equal(output["label"], sklearn_classifier.expected["label"])
    path = workspace.artifacts.path_for(version.sha256)
    os.chmod(path, 0o644)
    tampered = bytearray(path.read_bytes())
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    with pytest.raises(ArtifactIntegrityError, match="was altered"):
        workspace.registry.load("m")
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing"):
        workspace.registry.load("m", 1)


def test_a_failing_ledger_append_rolls_the_registration_back(
    workspace: Workspace, onnx_classifier: Built
) -> None:
    """No change without its entry: a clash in the ledger undoes the version row too."""
    with workspace.store.write() as conn:
        size = workspace.log.size(conn)
        conn.execute(ledger_entries.insert().values(seq=size, entry=b"{}"))  # squatter
    with pytest.raises(sa.exc.IntegrityError):
        workspace.registry.register("m", onnx_classifier.data, actor="a")
    with workspace.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(model_versions)).scalar() == 0
