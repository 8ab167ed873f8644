"""Init and open: idempotent, concurrent-safe, and refusing mismatched keys."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from mlgate.config import Settings
from mlgate.errors import ConfigError, LedgerKeyError, StoreError
from mlgate.store import open_store, upgrade
from mlgate.workspace import Workspace


def test_init_twice_keeps_one_ledger_and_key(settings: Settings) -> None:
    first = Workspace.init(settings)
    second = Workspace.init(settings)
    assert first.created_key and first.created_ledger
    assert not second.created_key and not second.created_ledger
    assert first.verifier_key == second.verifier_key
    with Workspace.open(settings) as ws, ws.store.read() as conn:
        assert ws.log.size(conn) == 1
        assert ws.log.entry(conn, 0).document()["kind"] == "ledger.initialized"


def test_open_before_init_says_run_init(settings: Settings) -> None:
    with pytest.raises(StoreError, match="mlgate init"):
        Workspace.open(settings)


def test_migrated_store_without_a_ledger_says_run_init(settings: Settings) -> None:
    store = open_store(settings.store_url)
    upgrade(store)
    store.dispose()
    with pytest.raises(ConfigError, match="mlgate init"):
        Workspace.open(settings)


def test_second_home_on_a_shared_store_needs_the_ledger_key(
    settings: Settings, tmp_path: Path
) -> None:
    Workspace.init(settings)
    stranger = replace(settings, home=tmp_path / "other-home")
    with pytest.raises(LedgerKeyError, match="copy that ledger's keys"):
        Workspace.init(stranger)
    shutil.copytree(settings.keys_dir, stranger.keys_dir)
    assert Workspace.init(stranger).origin == Workspace.init(settings).origin


def test_a_foreign_key_is_refused(settings: Settings, tmp_path: Path) -> None:
    Workspace.init(settings)
    foreign = replace(settings, home=tmp_path / "foreign")
    Workspace.init(replace(foreign, store_url=f"sqlite:///{tmp_path / 'foreign.db'}"))
    with pytest.raises(LedgerKeyError, match="not the key of this store's ledger"):
        Workspace.init(foreign)


def test_settings_resolve_from_arguments_then_environment(tmp_path: Path) -> None:
    env = {"MLGATE_HOME": str(tmp_path / "env-home"), "MLGATE_ACTOR": "svc:ci"}
    resolved = Settings.resolve(environ=env)
    assert resolved.home == tmp_path / "env-home"
    assert resolved.store_url == f"sqlite:///{tmp_path / 'env-home' / 'mlgate.db'}"
    assert resolved.actor == "svc:ci"
    explicit = Settings.resolve(home=tmp_path / "x", store_url="sqlite:////db", environ=env)
    assert (explicit.home, explicit.store_url) == (tmp_path / "x", "sqlite:////db")
    assert Settings.resolve(environ={}).actor.startswith("user:")
