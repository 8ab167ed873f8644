"""Typed ledger events and their canonical bytes (RFC 8785, JSON Canonicalization Scheme).

A ledger entry is the exact byte string hashed into the Merkle tree, so it must
be reproducible by anyone: JCS fixes key order, number form and string escaping.
Entries carry digests of what they refer to, never the payloads themselves, so a
payload can later be erased (a privacy request) while every proof still checks.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import rfc8785

from mlgate.errors import LedgerError

__all__ = [
    "ENTRY_FORMAT_VERSION",
    "EventKind",
    "LedgerEntry",
    "LedgerEvent",
    "canonical_json",
    "digest_bytes",
    "digest_json",
    "format_time",
]

ENTRY_FORMAT_VERSION = 1
_KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_DIGEST_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
# RFC 8785 serialises numbers as IEEE doubles: larger integers would lose digits.
_MAX_SAFE_INTEGER = 2**53 - 1

Scalar = str | int | bool | None


class EventKind(StrEnum):
    """Kinds this release writes. Later capabilities add theirs; the pattern is the contract."""

    LEDGER_INITIALIZED = "ledger.initialized"
    MODEL_REGISTERED = "model.registered"
    ALIAS_MOVED = "model.alias_moved"


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of ``value``.

    Ledger entries (ASCII keys, strings, safe integers, booleans, null) take the
    standard library's encoder, which for exactly that subset writes the RFC 8785
    bytes: code-point key order equals UTF-16 order for ASCII keys, and the string
    escapes are the same. It is about four times faster than the pure-Python
    ``rfc8785`` package, which still handles everything else (floats, other keys);
    a test pins the two against each other.
    """
    if _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8"
        )
    return bytes(rfc8785.dumps(value))


def _plain(value: Any) -> bool:
    """True for documents the standard encoder writes in RFC 8785 form."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return bool(-_MAX_SAFE_INTEGER <= value <= _MAX_SAFE_INTEGER)
    if kind is dict:
        return all(type(k) is str and k.isascii() and _plain(v) for k, v in value.items())
    if kind is list:
        return all(_plain(item) for item in value)
    return False


def digest_bytes(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_json(value: Any) -> str:
    """Digest of a JSON document's canonical form: the same document always digests alike."""
    return digest_bytes(canonical_json(value))


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: fixed width, so entries sort and compare as text."""
    if moment.tzinfo is None:
        raise LedgerError("ledger times must be timezone-aware; pass datetime.now(UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LedgerEvent:
    """What happened, who caused it, what it refers to (by id and digest)."""

    kind: str
    actor: str
    subject: Mapping[str, Scalar] = field(default_factory=dict)
    digests: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, Scalar] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _KIND_PATTERN.match(self.kind):
            raise LedgerError(
                f"event kind {self.kind!r} is malformed: expected dotted lower-case words "
                "such as 'model.registered'"
            )
        if not self.actor:
            raise LedgerError("every ledger event needs an actor (user or service identity)")
        for name, value in self.digests.items():
            if not _DIGEST_PATTERN.match(value):
                raise LedgerError(
                    f"digest {name!r} = {value!r} is not 'sha256:<64 hex>'; "
                    "store digests, never raw data, in the ledger"
                )
        for section in (self.subject, self.attributes):
            for name, scalar in section.items():
                if isinstance(scalar, float):
                    raise LedgerError(
                        f"field {name!r} is a float; ledger entries hold exact values only: "
                        "record a string or scaled integer instead"
                    )
                if isinstance(scalar, int) and abs(scalar) > _MAX_SAFE_INTEGER:
                    raise LedgerError(
                        f"field {name!r} = {scalar} is outside RFC 8785's exact integer range "
                        f"(±{_MAX_SAFE_INTEGER}); record it as a string"
                    )

    def to_entry(self, time: datetime) -> bytes:
        document = {
            "v": ENTRY_FORMAT_VERSION,
            "kind": self.kind,
            "time": format_time(time),
            "actor": self.actor,
            "subject": dict(self.subject),
            "digests": dict(self.digests),
            "attributes": dict(self.attributes),
        }
        return canonical_json(document)


@dataclass(frozen=True)
class LedgerEntry:
    """One stored entry: its position and its exact leaf bytes."""

    index: int
    data: bytes

    def document(self) -> dict[str, Any]:
        parsed = json.loads(self.data)
        if not isinstance(parsed, dict):
            raise LedgerError(f"entry {self.index} is not a JSON object")
        return parsed

    @property
    def kind(self) -> str:
        return str(self.document().get("kind", "?"))
