from __future__ import annotations

import stat
from pathlib import Path

import pytest

from mlgate.errors import LedgerKeyError
from mlgate.ledger import note
from mlgate.ledger.keys import create_key_pair, read_private_key, read_verifier_key


def test_private_key_is_created_0600_and_never_overwritten(tmp_path: Path) -> None:
    private, public = tmp_path / "keys" / "ledger.key", tmp_path / "keys" / "ledger.pub"
    verifier = create_key_pair(private, public, "example.org/log")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert read_verifier_key(public) == verifier
    assert note.verifier_key_from_private(read_private_key(private)) == verifier
    before = private.read_bytes()
    with pytest.raises(LedgerKeyError, match="never overwrites"):
        create_key_pair(private, public, "example.org/log")
    assert private.read_bytes() == before


def test_a_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    private = tmp_path / "ledger.key"
    create_key_pair(private, tmp_path / "ledger.pub", "example.org/log")
    private.chmod(0o644)
    with pytest.raises(LedgerKeyError, match="chmod 600"):
        read_private_key(private)


def test_missing_or_garbled_keys_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(LedgerKeyError, match="mlgate init"):
        read_private_key(tmp_path / "absent.key")
    with pytest.raises(LedgerKeyError, match="--public-key"):
        read_verifier_key(tmp_path / "absent.pub")
    garbled = tmp_path / "garbled.key"
    garbled.write_text("PRIVATE+KEY+nonsense\n")
    garbled.chmod(0o600)
    with pytest.raises(LedgerKeyError, match="does not hold"):
        read_private_key(garbled)
