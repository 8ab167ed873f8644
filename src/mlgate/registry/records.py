"""Registry records: immutable model versions, their lineage, and alias moves."""

from __future__ import annotations

import math
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.errors import InvalidNameError, RegistryError
from mlgate.registry.signature import Signature

__all__ = [
    "AliasMove",
    "Lineage",
    "ModelSummary",
    "ModelVersion",
    "check_alias_name",
    "check_metrics",
    "check_model_name",
    "check_params",
    "check_tags",
]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
RESERVED_ALIASES = frozenset({"latest"})

JSONScalar = str | int | float | bool | None


def check_model_name(name: str) -> str:
    if not _MODEL_NAME.match(name):
        raise InvalidNameError(
            f"model name {name!r} is not allowed: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (it becomes part of URLs)"
        )
    return name


def check_alias_name(alias: str) -> str:
    if not _ALIAS_NAME.match(alias) or alias in RESERVED_ALIASES:
        raise InvalidNameError(
            f"alias {alias!r} is not allowed: use a lower-case word such as 'champion' or "
            "'challenger' (letters, digits, '_', '-'; not 'latest', which always means the "
            "newest version)"
        )
    return alias


def check_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    checked: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise RegistryError(f"metric {key!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise RegistryError(f"metric {key!r} is {value}; record only finite numbers")
        checked[str(key)] = float(value)
    return checked


def check_params(params: Mapping[str, Any]) -> dict[str, JSONScalar]:
    checked: dict[str, JSONScalar] = {}
    for key, value in params.items():
        if value is not None and not isinstance(value, str | int | float | bool):
            raise RegistryError(
                f"param {key!r} must be a string, number, boolean or null, "
                f"got {type(value).__name__}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise RegistryError(f"param {key!r} is {value}; record only finite numbers")
        checked[str(key)] = value
    return checked


def check_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    for key, value in tags.items():
        if not isinstance(value, str):
            raise RegistryError(f"tag {key!r} must be a string, got {value!r}")
    return {str(key): str(value) for key, value in tags.items()}


@dataclass(frozen=True)
class Lineage:
    """Where a version came from. Every field is optional: record what you know."""

    dataset_fingerprint: str | None = None
    code_commit: str | None = None
    code_dirty: bool | None = None
    run_id: str | None = None
    parent_version: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset_fingerprint": self.dataset_fingerprint,
            "code_commit": self.code_commit,
            "code_dirty": self.code_dirty,
            "run_id": self.run_id,
            "parent_version": self.parent_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Lineage:
        return cls(**{key: data.get(key) for key in cls().to_json()})

    @classmethod
    def code_from_git(cls, path: Path) -> tuple[str, bool]:
        """The commit checked out at ``path`` and whether the work tree is dirty."""
        try:
            commit = subprocess.run(
                ["git", "-C", str(path), "rev-parse", "HEAD"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            status = subprocess.run(
                ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            raise RegistryError(
                f"cannot read the git commit at {path}: is it inside a git work tree with "
                "at least one commit? Pass --code-commit instead."
            ) from exc
        return commit, bool(status.strip())


@dataclass(frozen=True)
class ModelVersion:
    """One registered, immutable version of a model."""

    name: str
    version: int
    sha256: str
    flavor: str
    size_bytes: int
    signature: Signature
    params: Mapping[str, JSONScalar] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    flavor_metadata: Mapping[str, Any] = field(default_factory=dict)
    trusted_types: tuple[str, ...] = ()
    created_at: str = ""
    created_by: str = ""
    ledger_seq: int = -1
    aliases: tuple[str, ...] = ()

    def record(self) -> dict[str, Any]:
        """The immutable facts, as digested into the ledger (no aliases, no ledger index)."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "flavor": self.flavor,
            "size_bytes": self.size_bytes,
            "signature": self.signature.to_json(),
            "params": dict(self.params),
            "metrics": dict(self.metrics),
            "tags": dict(self.tags),
            "lineage": self.lineage.to_json(),
            "flavor_metadata": dict(self.flavor_metadata),
            "trusted_types": list(self.trusted_types),
            "created_at": self.created_at,
            "created_by": self.created_by,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.record(), "ledger_seq": self.ledger_seq, "aliases": list(self.aliases)}


@dataclass(frozen=True)
class AliasMove:
    name: str
    alias: str
    from_version: int | None
    to_version: int
    moved_at: str
    actor: str
    ledger_seq: int

    def record(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "moved_at": self.moved_at,
            "actor": self.actor,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.record(), "ledger_seq": self.ledger_seq}


@dataclass(frozen=True)
class ModelSummary:
    name: str
    latest_version: int
    version_count: int
    aliases: Mapping[str, int]
    created_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "latest_version": self.latest_version,
            "versions": self.version_count,
            "aliases": dict(self.aliases),
            "created_at": self.created_at,
        }
