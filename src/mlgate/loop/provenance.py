"""Provenance of a trained model: the environment it was trained in and the code that did it.

Together with the frame's fingerprint and the trainer's params these answer "could we
train this model again?". The environment is a digest over the interpreter, platform
and the versions of the distributions that decide what a model computes, so two runs
compare by one string. The code version pins the trainer twice: by the git commit (and
dirty flag) of the repository holding its module when there is one, and always by a
sha256 of the module's source file, so code outside any repository is still pinned.
Only the module file itself is hashed; helpers it imports are pinned by the commit.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlgate
from mlgate.errors import LoopConfigError, RegistryError
from mlgate.ledger.events import digest_json
from mlgate.loop.trainer import TrainerSpec
from mlgate.registry.records import Lineage

__all__ = ["DISTRIBUTIONS", "code_version", "environment"]

# The distributions whose versions can change what a loop-trained model computes or how
# it is saved and served. A trainer's own distribution is added when it has one.
DISTRIBUTIONS = (
    "numpy",
    "scipy",
    "scikit-learn",
    "skops",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "mlgate",
)


def environment(spec: TrainerSpec | None = None) -> dict[str, Any]:
    """Interpreter, platform and package versions, plus ``digest`` (``sha256:``) over them."""
    names = list(DISTRIBUTIONS)
    module = spec.module if spec is not None else None
    if module is not None:
        top = module.partition(".")[0]
        names += importlib.metadata.packages_distributions().get(top, [])
    packages: dict[str, str] = {}
    for name in names:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed: absent from the digest rather than an error
    described: dict[str, Any] = {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        # system and machine, not the kernel build: a host patch does not change a model
        "platform": f"{platform.system().lower()}-{platform.machine()}",
        "packages": dict(sorted(packages.items())),
    }
    return {**described, "digest": digest_json(described)}


def code_version(spec: TrainerSpec) -> dict[str, Any]:
    """``target``, ``module_file``, ``commit``, ``dirty``, ``source_digest``, ``version``.

    ``commit`` and ``dirty`` are ``None`` when the module's file is not tracked in a git
    repository (an installed package, a plain directory): that is no error, the source
    digest still pins it. The builtin trainer is pinned by mlgate's own code and version.
    """
    if spec.module is None:
        path = _module_file(TrainerSpec.__module__)  # the builtin trainer is mlgate's code
        version: str | None = mlgate.__version__
    else:
        path = _module_file(spec.module)
        version = _distribution_version(spec.module)
    commit, dirty = _git(path) if path is not None else (None, None)
    digest = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest() if path else None
    return {
        "target": spec.target,
        "module_file": str(path) if path is not None else None,
        "commit": commit,
        "dirty": dirty,
        "source_digest": digest,
        "version": version,
    }


def _module_file(module: str) -> Path | None:
    """The module's source file, found without running the module itself."""
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        found, reason = None, f"{type(exc).__name__}: {exc}"
    else:
        reason = "no such module"
    if found is None:
        raise LoopConfigError(
            f"cannot find the trainer module {module!r} ({reason}); install it, or run the "
            "loop from the directory that holds it (or add it to PYTHONPATH)"
        )
    origin = Path(found.origin) if found.has_location and found.origin else None
    return origin if origin is not None and origin.is_file() else None


def _distribution_version(module: str) -> str | None:
    top = module.partition(".")[0]
    for name in importlib.metadata.packages_distributions().get(top, []):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _git(path: Path) -> tuple[str | None, bool | None]:
    """Commit and dirty flag of the repository that tracks ``path``, else ``(None, None)``.

    Tracked, not merely inside: a virtual environment inside a project's work tree is
    ignored by it, and that project's commit says nothing about the packages in it.
    """
    try:
        subprocess.run(
            ["git", "-C", str(path.parent), "ls-files", "--error-unmatch", path.name],
            check=True,
            capture_output=True,
        )
        commit, dirty = Lineage.code_from_git(path.parent)
    except (OSError, subprocess.CalledProcessError, RegistryError):
        return None, None
    return commit, dirty
