"""Content-addressed artifact storage on the local file system.

An artifact lives at ``ROOT/sha256/ab/cdef...`` named by the SHA-256 of its
bytes, so identical files are stored once and a path can never point at other
bytes without the mismatch being detectable. Every read re-hashes: the digest in
the registry is the only trusted fact, the file system is not.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

from mlgate.errors import ArtifactIntegrityError

__all__ = ["ArtifactStore", "sha256_hex"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ArtifactStore:
    """Write-once blobs keyed by their SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, digest: str) -> Path:
        if not _HEX64.match(digest):
            raise ArtifactIntegrityError(f"{digest!r} is not a sha256 hex digest")
        return self.root / "sha256" / digest[:2] / digest[2:]

    def put(self, data: bytes) -> str:
        """Store ``data`` durably (write, fsync, rename) and return its digest."""
        digest = sha256_hex(data)
        path = self.path_for(digest)
        if path.exists() and self._matches(path, digest):
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o444)  # a reminder, not a defence: reads re-hash anyway
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        """Return the bytes for ``digest``; refuse them if they no longer hash to it."""
        path = self.path_for(digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactIntegrityError(
                f"artifact sha256:{digest} is missing from {self.root}: restore it from a "
                "backup; the registry will not serve a version without its exact bytes"
            ) from exc
        actual = sha256_hex(data)
        if actual != digest:
            raise ArtifactIntegrityError(
                f"artifact {path} was altered: expected sha256 {digest}, found {actual}. "
                "Refusing to load it; restore the original file or register a new version."
            )
        return data

    @staticmethod
    def _matches(path: Path, digest: str) -> bool:
        return sha256_hex(path.read_bytes()) == digest
