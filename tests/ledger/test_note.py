"""Tests for mlgate.ledger.note: C2SP signed-note and tlog-checkpoint."""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.ledger import note
from mlgate.ledger.note import (
    Checkpoint,
    NoteError,
    NoteVerificationError,
    generate_key,
    key_name,
    open_note,
    sign_note,
    verifier_key_from_private,
)

# Golden vectors from golang.org/x/mod sumdb/note/note_test.go (TestSign, TestOpen).
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
NOTE = TEXT + "\n" + PETER_SIG


def _malformed(call: Callable[[], object]) -> None:
    """Assert NoteError that is about syntax, not about signatures."""
    with pytest.raises(NoteError) as info:
        call()
    assert not isinstance(info.value, NoteVerificationError), info.value


def _splice(text: str, at: int, insert: str) -> str:
    """Insert at a UTF-8 byte offset, as the Go tests do on []byte."""
    raw = text.encode()
    return (raw[:at] + insert.encode() + raw[at:]).decode()


# -- golden vectors ---------------------------------------------------------------------


def test_go_sign_vector_is_reproduced_byte_for_byte() -> None:
    assert sign_note(TEXT, PETER_SKEY) == NOTE  # Ed25519 is deterministic
    assert verifier_key_from_private(PETER_SKEY) == PETER_VKEY
    assert key_name(PETER_VKEY) == key_name(PETER_SKEY) == "PeterNeumann"
    assert key_name(ENOCH_VKEY) == "EnochRoot"


def test_go_open_vectors() -> None:
    assert open_note(NOTE, [PETER_VKEY]) == TEXT
    both = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(both, [PETER_VKEY]) == TEXT  # Enoch's signature: unknown, ignored
    assert open_note(both, [ENOCH_VKEY]) == TEXT
    assert open_note(both, [PETER_VKEY, ENOCH_VKEY]) == TEXT
    assert open_note(both, [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY]) == TEXT
    with pytest.raises(NoteVerificationError):
        open_note(both, [])
    repeated = TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG
    assert open_note(repeated, [PETER_VKEY]) == TEXT


def test_go_invalid_signature() -> None:
    bad = TEXT + "\n" + _splice(PETER_SIG, 60, "ABCD")
    with pytest.raises(NoteVerificationError, match="PeterNeumann\\+c74f20a3"):
        open_note(bad, [PETER_VKEY])
    bad_enoch = TEXT + "\n" + PETER_SIG + _splice(ENOCH_SIG, 60, "ABCD")
    assert open_note(bad_enoch, [PETER_VKEY]) == TEXT  # unknown key: not checked


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\udcff" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "\u2014 Bad Name " + PETER_SIG.split(" ")[2].rstrip("\n"),
        TEXT + "\n" + "\u2014 Bad Name " + PETER_SIG.split(" ")[2],
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG.replace("\u2014", "-"),
        TEXT + "\n" + PETER_SIG.replace("x08go/", "x08go!"),  # malformed base64
        TEXT + "\n" + PETER_SIG.replace("AM=", "AN="),  # non-canonical base64
        TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",  # too short
        TEXT + "\n" + "\u2014 PeterNeumann \n",
        TEXT + "\n" + PETER_SIG * 101,
        TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG,
    ],
)
def test_go_malformed_notes(message: str) -> None:
    _malformed(lambda: open_note(message, [PETER_VKEY]))


def _mangled(key: str) -> list[str]:
    """Every proper substring and every one-character increment, as the Go tests do."""
    out = [key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)]
    out.remove(key)
    out += [key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))]
    return out


def test_go_verifier_key_manglings_are_rejected() -> None:
    bad = _mangled(PETER_VKEY) + [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ]
    assert key_name(bad[-1]) == "PeterNeumann"  # Go parses the hash case-insensitively
    for key in bad[:-1]:
        _malformed(partial(open_note, NOTE, [key]))
        _malformed(partial(key_name, key))
    _malformed(lambda: open_note(NOTE, [PETER_SKEY]))


def test_go_private_key_manglings_are_rejected() -> None:
    for key in [*_mangled(PETER_SKEY), PETER_VKEY]:
        _malformed(partial(verifier_key_from_private, key))
        _malformed(partial(sign_note, TEXT, key))


# -- behaviour ------------------------------------------------------------------------


def test_generated_keys() -> None:
    skey, vkey = generate_key("example.com/log")
    assert skey.startswith("PRIVATE+KEY+example.com/log+")
    assert verifier_key_from_private(skey) == vkey
    assert key_name(skey) == key_name(vkey) == "example.com/log"
    raw = base64.b64decode(vkey.split("+", 2)[2])
    assert len(raw) == 33 and raw[0] == 1
    assert open_note(sign_note(TEXT, skey), [vkey]) == TEXT
    assert generate_key("example.com/log") != (skey, vkey)


@pytest.mark.parametrize("name", ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u3000b", "a\nb"])
def test_invalid_key_names(name: str) -> None:
    _malformed(lambda: generate_key(name))


def test_tampering_is_detected() -> None:
    with pytest.raises(NoteVerificationError):
        open_note(NOTE.replace("cryptography", "cryptographY"), [PETER_VKEY])
    blob = base64.b64decode(PETER_SIG.split(" ")[2])
    for position in (4, 40, 67):  # signature bytes, after the 4-byte key ID
        flipped = blob[:position] + bytes([blob[position] ^ 1]) + blob[position + 1 :]
        line = f"\u2014 PeterNeumann {base64.b64encode(flipped).decode()}\n"
        with pytest.raises(NoteVerificationError):
            open_note(TEXT + "\n" + line, [PETER_VKEY])


def test_other_key_with_the_same_name() -> None:
    impostor_skey, impostor_vkey = generate_key("PeterNeumann")
    forged = sign_note(TEXT, impostor_skey)
    with pytest.raises(NoteVerificationError):  # different key ID: ignored, nothing verifies
        open_note(forged, [PETER_VKEY])
    # The impostor's signature relabelled with Peter's key ID must be checked and fail.
    blob = base64.b64decode(forged.rsplit(" ", 1)[1])
    relabelled = base64.b64encode(bytes.fromhex("c74f20a3") + blob[4:]).decode()
    with pytest.raises(NoteVerificationError, match="invalid signature"):
        open_note(f"{TEXT}\n\u2014 PeterNeumann {relabelled}\n", [PETER_VKEY])
    # A valid signature from a known key does not excuse a bad one from another known key.
    with pytest.raises(NoteVerificationError):
        open_note(NOTE + f"\u2014 PeterNeumann {relabelled}\n", [PETER_VKEY, impostor_vkey])


def test_unknown_key_only() -> None:
    with pytest.raises(NoteVerificationError):
        open_note(NOTE, [ENOCH_VKEY])


def test_verifier_keys_must_be_a_sequence() -> None:
    with pytest.raises(TypeError):
        open_note(NOTE, PETER_VKEY)


def test_colliding_verifier_keys_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(note, "_key_hash", lambda name, public: 0)
    (_, first), (_, second) = generate_key("log"), generate_key("log")
    assert first.split("+")[1] == second.split("+")[1] == "00000000"
    _malformed(lambda: open_note(NOTE, [first, second]))


def test_sign_rejects_bad_text() -> None:
    _malformed(lambda: sign_note("abc", PETER_SKEY))
    _malformed(lambda: sign_note("a\x00b\n", PETER_SKEY))
    _malformed(lambda: sign_note("a\udcffb\n", PETER_SKEY))


def test_text_may_contain_blank_lines() -> None:
    for text in ["a\n\nb\n", "a\n\n", "\n", "a\n\n\n"]:
        assert open_note(sign_note(text, PETER_SKEY), [PETER_VKEY]) == text


# -- checkpoints ------------------------------------------------------------------------

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_checkpoint_text() -> None:
    cp = Checkpoint("example.com/log", 20852163, ROOT)
    assert cp.to_text() == f"example.com/log\n20852163\n{ROOT_B64}\n"
    assert Checkpoint.from_text(cp.to_text()) == cp
    ext = Checkpoint("o", 0, ROOT, ("ext one", "ext two"))
    assert ext.to_text() == f"o\n0\n{ROOT_B64}\next one\next two\n"
    assert Checkpoint.from_text(ext.to_text()) == ext


def test_signed_checkpoint_round_trip() -> None:
    skey, vkey = generate_key("example.com/log")
    body = Checkpoint("example.com/log", 7, ROOT).to_text()
    assert Checkpoint.from_text(open_note(sign_note(body, skey), [vkey])).size == 7


@pytest.mark.parametrize(
    "text",
    [
        f"o\n12a\n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n+1\n{ROOT_B64}\n",
        f"o\n01\n{ROOT_B64}\n",
        f"o\n 1\n{ROOT_B64}\n",
        f"o\n1_0\n{ROOT_B64}\n",
        f"o\n\u0661\n{ROOT_B64}\n",  # ARABIC-INDIC DIGIT ONE
        f"o\n\n{ROOT_B64}\n",
        f"o\n{2**64}\n{ROOT_B64}\n",
        f"o\n{'9' * 5000}\n{ROOT_B64}\n",
        f"o\n1\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"o\n1\n{base64.b64encode(ROOT + b'x').decode()}\n",
        f"o\n1\n{ROOT_B64[:-2]}\n",
        f"o\n1\n{ROOT_B64.replace('A', '*')}\n",
        f"o\n1\n{ROOT_B64}",
        f"\n1\n{ROOT_B64}\n",
        f"o\n1\n{ROOT_B64}\n\n",
        f"o\n1\n{ROOT_B64}\next\n\n",
        "o\n1\n",
        "",
    ],
)
def test_malformed_checkpoints(text: str) -> None:
    _malformed(lambda: Checkpoint.from_text(text))


def test_invalid_checkpoint_fields() -> None:
    cases: list[tuple[Any, ...]] = [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", True, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
        ("o", 1, ROOT, ["ext"]),
    ]
    for args in cases:
        _malformed(partial(Checkpoint, *args))


_LINE = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\n"), min_size=1
)
_NAME = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")).filter(
        lambda c: c != "+" and not c.isspace()
    ),
    min_size=1,
    max_size=40,
)


@given(
    origin=_LINE,
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(_LINE, max_size=3).map(tuple),
)
def test_checkpoint_round_trip(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    cp = Checkpoint(origin, size, root, extensions)
    assert Checkpoint.from_text(cp.to_text()) == cp


@settings(max_examples=50)
@given(name=_NAME, lines=st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")))))
def test_sign_open_round_trip(name: str, lines: list[str]) -> None:
    text = "".join(line + "\n" for line in lines) or "\n"
    skey, vkey = generate_key(name)
    assert key_name(vkey) == name
    signed = sign_note(text, skey)
    assert open_note(signed, [vkey]) == text
    assert open_note(signed, [ENOCH_VKEY, vkey]) == text
    with pytest.raises(NoteVerificationError):
        open_note(signed, [PETER_VKEY])
