"""C2SP signed notes and tlog checkpoints, signed with Ed25519.

Implements https://c2sp.org/signed-note ("Format", "Signatures", "Ed25519
signatures") and https://c2sp.org/tlog-checkpoint ("Note text"), byte for byte
as golang.org/x/mod/sumdb/note does. Matching that reference implementation is
the point: a checkpoint signed here can be checked, or cosigned, by existing
Go-ecosystem witnesses and verifiers that nobody here wrote.

Parsing is deliberately stricter than the Go package where strictness cannot
reject anything a conforming signer emits (canonical base64 only, ASCII decimal
sizes, 32-byte root hashes), so that one checkpoint has exactly one text form.

This file is copied verbatim into the offline auditor bundle, so it imports only
the standard library and ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "NoteError",
    "NoteVerificationError",
    "generate_key",
    "key_name",
    "open_note",
    "sign_note",
    "verifier_key_from_private",
]

_ALG_ED25519 = 0x01
_PRIVATE_PREFIX = "PRIVATE+KEY+"
_SIG_PREFIX = "\u2014 "  # em dash, space
_MAX_SIGNATURES = 100  # as golang.org/x/mod/sumdb/note; the spec demands at least 16
_ROOT_HASH_SIZE = 32  # SHA-256, the RFC 6962 tree hash
_MAX_SIZE = 1 << 64  # tree sizes are uint64 in RFC 6962/9162 and the Go tooling
_KEY_HASH = re.compile(r"[0-9a-fA-F]{8}")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class NoteError(ValueError):
    """Malformed note, key or checkpoint text."""


class NoteVerificationError(NoteError):
    """No signature from a known key verifies, or a known key's signature is bad."""


class _Key(NamedTuple):
    name: str
    key_hash: int
    public: bytes  # 32-byte Ed25519 public key


def _check_chars(text: str, what: str) -> bytes:
    """Signed notes are UTF-8 with no ASCII control character but newline."""
    if any(c < " " and c != "\n" for c in text):
        raise NoteError(f"{what} contains an ASCII control character")
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None


def _valid_name(name: str) -> bool:
    """Key names: non-empty, no Unicode space, no '+' (control characters ruled out too)."""
    return bool(name) and "+" not in name and not any(c.isspace() or c < " " for c in name)


def _check_name(name: str) -> None:
    if not _valid_name(name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def _b64decode(text: str, what: str) -> bytes:
    """Strict RFC 4648 §4 base64: only the canonical encoding of some bytes is accepted."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _key_hash(name: str, public: bytes) -> int:
    """Key ID = SHA-256(key name || 0x0A || 0x01 || public key)[:4], big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([_ALG_ED25519]) + public)
    return int.from_bytes(digest.digest()[:4], "big")


def _parse_key_hash(text: str) -> int:
    if not _KEY_HASH.fullmatch(text):
        raise NoteError(f"key hash {text!r} is not 8 hexadecimal digits")
    return int(text, 16)


def _parse_key_material(text: str, what: str) -> bytes:
    raw = _b64decode(text, what)
    if len(raw) != 33 or raw[0] != _ALG_ED25519:
        raise NoteError(f"{what} is not an Ed25519 key (0x01 followed by 32 bytes)")
    return raw[1:]


def _parse_private(key: str) -> tuple[_Key, Ed25519PrivateKey]:
    if not key.startswith(_PRIVATE_PREFIX):
        raise NoteError("a private key must start with 'PRIVATE+KEY+'")
    fields = key[len(_PRIVATE_PREFIX) :].split("+", 2)
    if len(fields) != 3:
        raise NoteError("malformed private key: expected PRIVATE+KEY+<name>+<hash>+<key>")
    name, hash_text, material = fields
    _check_name(name)
    key_hash = _parse_key_hash(hash_text)
    private = Ed25519PrivateKey.from_private_bytes(_parse_key_material(material, "private key"))
    public = private.public_key().public_bytes_raw()
    if _key_hash(name, public) != key_hash:
        raise NoteError("the private key's hash does not match its name and public key")
    return _Key(name, key_hash, public), private


def _parse_verifier(key: str) -> _Key:
    fields = key.split("+", 2)
    if len(fields) != 3:
        raise NoteError("malformed verifier key: expected <name>+<hash>+<key>")
    name, hash_text, material = fields
    _check_name(name)
    key_hash = _parse_key_hash(hash_text)
    public = _parse_key_material(material, "verifier key")
    if _key_hash(name, public) != key_hash:
        raise NoteError("the verifier key's hash does not match its name and public key")
    return _Key(name, key_hash, public)


def _verifier_string(key: _Key) -> str:
    material = _b64encode(bytes([_ALG_ED25519]) + key.public)
    return f"{key.name}+{key.key_hash:08x}+{material}"


def generate_key(name: str) -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private key string, verifier key string)."""
    _check_name(name)
    private = Ed25519PrivateKey.generate()
    key = _Key(name, 0, private.public_key().public_bytes_raw())
    key = key._replace(key_hash=_key_hash(name, key.public))
    seed = _b64encode(bytes([_ALG_ED25519]) + private.private_bytes_raw())
    return f"{_PRIVATE_PREFIX}{name}+{key.key_hash:08x}+{seed}", _verifier_string(key)


def verifier_key_from_private(private_key: str) -> str:
    return _verifier_string(_parse_private(private_key)[0])


def key_name(key: str) -> str:
    """Name of a private or verifier key string (the whole key is validated)."""
    if key.startswith(_PRIVATE_PREFIX):
        return _parse_private(key)[0].name
    return _parse_verifier(key).name


def sign_note(text: str, private_key: str) -> str:
    """The signed note: ``text``, a blank line and one signature line."""
    key, private = _parse_private(private_key)
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    signature = private.sign(_check_chars(text, "note text"))
    blob = _b64encode(key.key_hash.to_bytes(4, "big") + signature)
    return f"{text}\n{_SIG_PREFIX}{key.name} {blob}\n"


def open_note(note: str, verifier_keys: Sequence[str]) -> str:
    """Verify ``note`` against ``verifier_keys`` and return its text.

    As the spec requires, signatures from unknown keys (even ones sharing a name
    or a key ID, but not both, with a known key) are ignored; a failing signature
    from a known key rejects the whole note, as does having no verified one.
    """
    if isinstance(verifier_keys, str):
        raise TypeError("verifier_keys must be a sequence of key strings, not one string")
    known: dict[tuple[str, int], Ed25519PublicKey] = {}
    for parsed in map(_parse_verifier, verifier_keys):
        public = Ed25519PublicKey.from_public_bytes(parsed.public)
        previous = known.setdefault((parsed.name, parsed.key_hash), public)
        if previous.public_bytes_raw() != parsed.public:
            raise NoteError(f"two verifier keys share the ID {parsed.name}+{parsed.key_hash:08x}")

    _check_chars(note, "note")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, signatures = note[: split + 1], note[split + 2 :]
    if not signatures.endswith("\n"):
        raise NoteError("note must end with a newline-terminated signature line")
    lines = signatures[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise NoteError(f"note has more than {_MAX_SIGNATURES} signatures")

    body, verified = text.encode("utf-8"), False
    for line in lines:
        name, _, blob = line.removeprefix(_SIG_PREFIX).partition(" ")
        if not line.startswith(_SIG_PREFIX) or not _valid_name(name) or not blob:
            raise NoteError(f"malformed signature line {line!r}")
        raw = _b64decode(blob, "signature")
        if len(raw) < 5:
            raise NoteError(f"signature line {line!r} is too short")
        key_hash = int.from_bytes(raw[:4], "big")
        verifier = known.get((name, key_hash))
        if verifier is None:
            continue
        try:
            verifier.verify(raw[4:], body)
        except InvalidSignature:
            raise NoteVerificationError(
                f"invalid signature for key {name}+{key_hash:08x}"
            ) from None
        verified = True
    if not verified:
        raise NoteVerificationError("the note has no signature from any of the given keys")
    return text


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint note text: origin, tree size, root hash and extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of lines")
        for line in (self.origin, *self.extensions):
            if not isinstance(line, str) or not line or "\n" in line:
                raise NoteError(f"checkpoint line {line!r} must be a non-empty single line")
            _check_chars(line, "checkpoint line")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise NoteError(f"checkpoint size {self.size!r} must be an integer")
        if not 0 <= self.size < _MAX_SIZE:
            raise NoteError(f"checkpoint size {self.size} must be in [0, 2**64)")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _ROOT_HASH_SIZE:
            raise NoteError(f"checkpoint root hash must be {_ROOT_HASH_SIZE} bytes")

    def to_text(self) -> str:
        lines = (self.origin, str(self.size), _b64encode(self.root_hash), *self.extensions)
        return "\n".join(lines) + "\n"

    @classmethod
    def from_text(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise NoteError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint text needs origin, size and root hash lines")
        origin, size, root, *extensions = lines
        if len(size) > 20 or not _DECIMAL.fullmatch(size):
            raise NoteError(f"checkpoint size {size!r} is not a decimal number")
        return cls(origin, int(size), _b64decode(root, "root hash"), tuple(extensions))
