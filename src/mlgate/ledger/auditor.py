"""Offline verification of a ledger export, needing only Python and ``cryptography``.

This module is copied into every export bundle as ``verifier/verify.py`` beside
verbatim copies of ``merkle.py`` and ``note.py``; the exporter rewrites the one
import line below so the bundle runs without mlgate installed. ``mlgate ledger
verify`` uses the same functions on the live database, so the auditor and the
operator run one verifier, not two that could disagree.

Usage inside a bundle::

    python verifier/verify.py BUNDLE_DIR [--public-key KEY_OR_FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mlgate.ledger import merkle, note  # bundle: import merkle, note

__all__ = [
    "BundleSummary",
    "VerificationFailure",
    "check_canonical",
    "check_checkpoints",
    "leaf_hashes_in_order",
    "main",
    "verify_bundle",
]

ENTRIES_FILE = "entries.jsonl"
CHECKPOINTS_DIR = "checkpoints"
PUBLIC_KEY_FILE = "ledger.pub"
MANIFEST_FILE = "manifest.json"
_REQUIRED_FIELDS = ("v", "kind", "time", "actor")


class VerificationFailure(Exception):
    """The log does not verify; ``index`` is the first bad entry when it is known."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


def leaf_hashes_in_order(entries: Iterable[tuple[int, bytes]]) -> list[bytes]:
    """Recompute every leaf hash, insisting on indices 0, 1, 2, ... with no gap."""
    hashes: list[bytes] = []
    leaf = merkle.leaf_hash
    for index, data in entries:
        expected = len(hashes)
        if index != expected:
            if index > expected:
                raise VerificationFailure(
                    f"entry {expected} is missing (the next stored entry is {index})", expected
                )
            raise VerificationFailure(f"entry {index} appears twice or out of order", index)
        hashes.append(leaf(data))
    return hashes


def check_canonical(index: int, data: bytes) -> None:
    """An entry must be one JSON object in RFC 8785 form with the required fields."""
    try:
        document = json.loads(data)
    except ValueError as exc:
        raise VerificationFailure(f"entry {index} is not valid JSON: {exc}", index) from exc
    if not isinstance(document, dict) or any(k not in document for k in _REQUIRED_FIELDS):
        raise VerificationFailure(
            f"entry {index} lacks one of the fields {', '.join(_REQUIRED_FIELDS)}", index
        )
    try:
        again = _canonical(document)
    except TypeError as exc:
        raise VerificationFailure(f"entry {index}: {exc}", index) from exc
    if again.encode("utf-8") != data:
        raise VerificationFailure(f"entry {index} is not in canonical (RFC 8785) form", index)


def check_checkpoints(
    levels: merkle.MerkleLevels,
    size: int,
    checkpoints: Iterable[tuple[str, str]],
    verifier_key: str,
    origin: str | None = None,
) -> list[note.Checkpoint]:
    """Verify each (label, signed note): signature, origin, size and root against the tree."""
    verified: list[tuple[str, note.Checkpoint]] = []
    for label, signed in checkpoints:
        try:
            body = note.open_note(signed, [verifier_key])
            checkpoint = note.Checkpoint.from_text(body)
        except note.NoteError as exc:
            raise VerificationFailure(f"checkpoint {label}: {exc}") from exc
        if origin is not None and checkpoint.origin != origin:
            raise VerificationFailure(
                f"checkpoint {label} is for log {checkpoint.origin!r}, not {origin!r}"
            )
        if checkpoint.size > size:
            raise VerificationFailure(
                f"checkpoint {label} vouches for {checkpoint.size} entries but only {size} "
                f"exist: entries {size}..{checkpoint.size - 1} were deleted",
                size,
            )
        verified.append((label, checkpoint))
    good_sizes = [0]
    for label, checkpoint in sorted(verified, key=lambda item: item[1].size):
        if levels.root_hash(checkpoint.size) != checkpoint.root_hash:
            lower = max(good_sizes)
            last = checkpoint.size - 1
            where = f"entry {lower}" if lower == last else f"an entry in {lower}..{last}"
            raise VerificationFailure(
                f"checkpoint {label} (size {checkpoint.size}) does not match the log: "
                f"{where} differs from what was signed",
                lower if lower == last else None,
            )
        good_sizes.append(checkpoint.size)
    return [checkpoint for _, checkpoint in verified]


def _canonical(value: object) -> str:
    """RFC 8785 for the float-free documents the ledger holds, with the standard library.

    Strings escape exactly as ``json.dumps(ensure_ascii=False)`` does (RFC 8785
    section 3.2.2.2); keys sort by UTF-16 code units (section 3.2.3), which differs
    from Python's code-point order once characters beyond U+FFFF appear.
    """
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda item: item[0].encode("utf-16-be"))
        return "{" + ",".join(f"{_canonical(k)}:{_canonical(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_canonical(item) for item in value) + "]"
    if isinstance(value, float):
        raise TypeError("ledger entries hold no floating-point numbers")
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class BundleSummary:
    size: int
    root_hash: str
    checkpoints: int
    origin: str


def _read_key(argument: str | None, bundle: Path) -> str:
    if argument is None:
        return (bundle / PUBLIC_KEY_FILE).read_text(encoding="utf-8").strip()
    candidate = Path(argument)
    if candidate.is_file():
        return candidate.read_text(encoding="utf-8").strip()
    return argument.strip()


def _read_entries(path: Path) -> list[bytes]:
    raw = path.read_bytes()
    if raw and not raw.endswith(b"\n"):
        raise VerificationFailure(f"{path.name} is truncated: its last line has no newline")
    return raw.split(b"\n")[:-1] if raw else []


def verify_bundle(bundle: Path, verifier_key: str | None = None) -> BundleSummary:
    """Verify an export folder completely; raise :class:`VerificationFailure` at the first fault."""
    key = _read_key(verifier_key, bundle)
    manifest = json.loads((bundle / MANIFEST_FILE).read_text(encoding="utf-8"))
    origin = str(manifest["origin"])
    entries = _read_entries(bundle / ENTRIES_FILE)
    for index, data in enumerate(entries):
        check_canonical(index, data)
    hashes = leaf_hashes_in_order(enumerate(entries))
    levels = merkle.MerkleLevels.from_leaf_hashes(hashes)
    notes = sorted((bundle / CHECKPOINTS_DIR).glob("*.note"))
    if not notes:
        raise VerificationFailure("the bundle holds no signed checkpoint to verify against")
    checked = check_checkpoints(
        levels,
        len(hashes),
        [(path.name, path.read_text(encoding="utf-8")) for path in notes],
        key,
        origin,
    )
    root = levels.root_hash(len(hashes)).hex()
    if int(manifest["size"]) != len(hashes) or manifest["root_hash"] != root:
        raise VerificationFailure(
            f"manifest says size {manifest['size']} root {manifest['root_hash']}, "
            f"entries give size {len(hashes)} root {root}"
        )
    if max(c.size for c in checked) != len(hashes):
        raise VerificationFailure(
            "no checkpoint covers the whole export: the last entries are unsigned", None
        )
    return BundleSummary(size=len(hashes), root_hash=root, checkpoints=len(checked), origin=origin)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an mlgate ledger export offline.")
    parser.add_argument("bundle", type=Path, help="the export folder")
    parser.add_argument(
        "--public-key",
        help="verifier key (string or file) obtained independently of this bundle; "
        "defaults to the bundle's own ledger.pub",
    )
    args = parser.parse_args(argv)
    try:
        summary = verify_bundle(args.bundle, args.public_key)
    except VerificationFailure as exc:
        where = f" (first bad entry: {exc.index})" if exc.index is not None else ""
        print(f"FAILED: {exc}{where}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"FAILED: the bundle is incomplete or unreadable: {exc}", file=sys.stderr)
        return 2
    print(
        f"OK: {summary.size} entries, {summary.checkpoints} signed checkpoint(s) verified; "
        f"origin {summary.origin}; root {summary.root_hash}"
    )
    if args.public_key is None:
        print(
            "note: checked against the bundle's own key; pass --public-key with a copy "
            "obtained independently to rule out a replaced key"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
