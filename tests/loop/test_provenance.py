"""Provenance: the environment digest and the trainer's code version, in real git trees."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

import mlgate
from mlgate.errors import LoopConfigError
from mlgate.ledger.events import digest_json
from mlgate.loop.provenance import DISTRIBUTIONS, code_version, environment
from mlgate.loop.trainer import BUILTIN_SKLEARN, TrainerSpec

_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}


def test_environment_digests_what_it_lists() -> None:
    env = environment()
    assert env == environment()
    assert env["python"] == platform.python_version()
    assert env["platform"] == f"{platform.system().lower()}-{platform.machine()}"
    assert env["packages"]["numpy"] == importlib.metadata.version("numpy")
    assert env["packages"]["scikit-learn"] == importlib.metadata.version("scikit-learn")
    assert set(env["packages"]) <= set(DISTRIBUTIONS)
    rest = {key: value for key, value in env.items() if key != "digest"}
    assert env["digest"] == digest_json(rest) and env["digest"].startswith("sha256:")


def test_environment_adds_the_trainers_distribution() -> None:
    env = environment(TrainerSpec("yaml.constructor:SafeConstructor", None))
    assert env["packages"]["PyYAML"] == importlib.metadata.version("PyYAML")
    assert env["digest"] != environment()["digest"]


def test_builtin_code_is_mlgates_own() -> None:
    code = code_version(TrainerSpec(BUILTIN_SKLEARN, "Ridge"))
    path = Path(code["module_file"])
    assert path.parts[-3:] == ("mlgate", "loop", "trainer.py")
    assert code["version"] == mlgate.__version__
    assert code["source_digest"] == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert code["target"] == BUILTIN_SKLEARN


def test_code_outside_git_is_pinned_by_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = b"def fit(frame, params):\n    return None\n"
    (tmp_path / "plain_trainer_mod.py").write_bytes(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = TrainerSpec("plain_trainer_mod:fit", None)
    assert environment(spec) == environment()  # no distribution ships it
    code = code_version(spec)
    assert code == {
        "target": "plain_trainer_mod:fit",
        "module_file": str(tmp_path / "plain_trainer_mod.py"),
        "commit": None,
        "dirty": None,
        "source_digest": "sha256:" + hashlib.sha256(source).hexdigest(),
        "version": None,
    }


def test_code_in_git_has_commit_and_dirty_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    package = repo / "git_trainer_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "train.py").write_text("def fit(frame, params): ...\n", encoding="utf-8")
    (package / "draft.py").write_text("def fit(frame, params): ...\n", encoding="utf-8")
    env = {**os.environ, **_GIT_ENV}

    def git(*args: str) -> str:
        run = subprocess.run(
            ["git", "-C", str(repo), *args], env=env, check=True, capture_output=True, text=True
        )
        return run.stdout.strip()

    git("init", "-q")
    git("add", "git_trainer_pkg/__init__.py", "git_trainer_pkg/train.py")
    git("commit", "-q", "-m", "trainer")
    head = git("rev-parse", "HEAD")
    monkeypatch.syspath_prepend(str(repo))

    spec = TrainerSpec("git_trainer_pkg.train:fit", None)
    clean = code_version(spec)
    assert (clean["commit"], clean["dirty"]) == (head, False)

    (package / "train.py").write_text("def fit(frame, params): return 1\n", encoding="utf-8")
    dirty = code_version(spec)
    assert (dirty["commit"], dirty["dirty"]) == (head, True)
    assert dirty["source_digest"] != clean["source_digest"]

    # inside the work tree but never committed: that commit does not hold the code
    untracked = code_version(TrainerSpec("git_trainer_pkg.draft:fit", None))
    assert (untracked["commit"], untracked["dirty"]) == (None, None)
    assert untracked["source_digest"] is not None


def test_a_missing_module_is_a_config_error() -> None:
    with pytest.raises(LoopConfigError, match="cannot find the trainer module 'no_such_pkg.x'"):
        code_version(TrainerSpec("no_such_pkg.x:fit", None))
    with pytest.raises(LoopConfigError, match="cannot find the trainer module 'tests.nowhere'"):
        code_version(TrainerSpec("tests.nowhere:fit", None))
