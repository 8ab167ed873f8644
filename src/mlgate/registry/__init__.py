"""The model registry: immutable, hash-addressed versions with movable aliases."""

from __future__ import annotations

from mlgate.registry.artifacts import ArtifactStore
from mlgate.registry.records import AliasMove, Lineage, ModelSummary, ModelVersion
from mlgate.registry.service import Registry, VersionRef
from mlgate.registry.signature import Signature, TensorSpec

__all__ = [
    "AliasMove",
    "ArtifactStore",
    "Lineage",
    "ModelSummary",
    "ModelVersion",
    "Registry",
    "Signature",
    "TensorSpec",
    "VersionRef",
]
