"""The composition root: one object wiring store, ledger and registry from Settings.

The CLI (and later the server) build a :class:`Workspace` once and pass it
around; nothing below it reads the environment or keeps global state.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from mlgate.config import Settings
from mlgate.errors import ConfigError, LedgerKeyError
from mlgate.ledger import note
from mlgate.ledger.checkpoints import Checkpointer, StoredCheckpoint, list_checkpoints
from mlgate.ledger.events import EventKind, LedgerEvent
from mlgate.ledger.export import ExportSummary, check_destination, export_bundle
from mlgate.ledger.keys import create_key_pair, read_private_key, read_verifier_key
from mlgate.ledger.log import MerkleLog
from mlgate.ledger.verify import VerifyReport, verify_log
from mlgate.registry.artifacts import ArtifactStore
from mlgate.registry.audit import audit_registry
from mlgate.registry.service import Registry
from mlgate.store import Store, ensure_current, open_store, upgrade
from mlgate.store.schema import ledger_meta

__all__ = ["InitReport", "Workspace"]

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class InitReport:
    home: Path
    store_url: str
    origin: str
    verifier_key: str
    schema_before: str | None
    schema_after: str
    created_key: bool
    created_ledger: bool

    def to_json(self) -> dict[str, object]:
        return {
            "home": str(self.home),
            "store": self.store_url,
            "origin": self.origin,
            "public_key": self.verifier_key,
            "schema_before": self.schema_before,
            "schema": self.schema_after,
            "created_key": self.created_key,
            "created_ledger": self.created_ledger,
        }


class Workspace:
    def __init__(
        self, settings: Settings, store: Store, origin: str, clock: Clock = _utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.origin = origin
        self.clock = clock
        self.log = MerkleLog(clock)
        self.artifacts = ArtifactStore(settings.artifacts_dir)
        self.registry = Registry(store, self.artifacts, self.log, clock)

    # -- lifecycle ---------------------------------------------------------------

    @classmethod
    def init(cls, settings: Settings, clock: Clock = _utc_now) -> InitReport:
        """Create or upgrade everything; safe to run again and from several processes."""
        store = open_store(settings.store_url)
        try:
            before, after = upgrade(store)
            settings.home.mkdir(parents=True, exist_ok=True)  # only once the store answered
            with store.write() as conn:
                log = MerkleLog(clock)
                log.lock_size(conn)  # serialises concurrent inits on PostgreSQL
                meta = _read_meta(conn)
                created_key = False
                if settings.private_key_path.exists():
                    verifier_key = note.verifier_key_from_private(
                        read_private_key(settings.private_key_path)
                    )
                elif "origin" in meta:
                    raise LedgerKeyError(
                        f"the store at {store.url} already has a ledger ({meta['origin']}) "
                        f"signed by {meta['verifier_key']}, but {settings.private_key_path} "
                        "is missing: copy that ledger's keys/ folder into this home"
                    )
                else:
                    origin = f"mlgate.local/ledger-{secrets.token_hex(6)}"
                    verifier_key = create_key_pair(
                        settings.private_key_path, settings.public_key_path, origin
                    )
                    created_key = True
                created_ledger = "origin" not in meta
                if created_ledger:
                    origin = note.key_name(verifier_key)
                    conn.execute(
                        ledger_meta.insert(),
                        [
                            {"key": "origin", "value": origin},
                            {"key": "verifier_key", "value": verifier_key},
                        ],
                    )
                    log.append(
                        conn,
                        LedgerEvent(
                            kind=EventKind.LEDGER_INITIALIZED,
                            actor=settings.actor,
                            subject={"origin": origin},
                            attributes={"public_key": verifier_key},
                        ),
                    )
                elif meta["verifier_key"] != verifier_key:
                    raise LedgerKeyError(
                        f"the key in {settings.private_key_path} ({verifier_key}) is not the "
                        f"key of this store's ledger ({meta['verifier_key']}): point --home "
                        "at the matching folder"
                    )
                origin = note.key_name(verifier_key)
            if not settings.public_key_path.exists():
                settings.public_key_path.write_text(verifier_key + "\n", encoding="utf-8")
        finally:
            store.dispose()
        return InitReport(
            home=settings.home,
            store_url=store.url,
            origin=origin,
            verifier_key=verifier_key,
            schema_before=before,
            schema_after=after,
            created_key=created_key,
            created_ledger=created_ledger,
        )

    @classmethod
    def open(cls, settings: Settings, clock: Clock = _utc_now) -> Workspace:
        store = open_store(settings.store_url, create=False)
        try:
            ensure_current(store)
            with store.read() as conn:
                meta = _read_meta(conn)
        except BaseException:
            store.dispose()
            raise
        if "origin" not in meta:
            store.dispose()
            raise ConfigError(f"the store at {store.url} has no ledger yet: run `mlgate init`")
        return cls(settings, store, meta["origin"], clock)

    def close(self) -> None:
        self.store.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- ledger operations -------------------------------------------------------

    def verifier_key(self, override: str | None = None) -> str:
        """The trust anchor: an explicit key (string or file) or the home's public key."""
        if override:
            path = Path(override)
            return read_verifier_key(path) if path.is_file() else override.strip()
        return read_verifier_key(self.settings.public_key_path)

    def checkpoint(self) -> StoredCheckpoint:
        signer = Checkpointer(
            self.log, self.origin, read_private_key(self.settings.private_key_path), self.clock
        )
        with self.store.write() as conn:
            return signer.create(conn)

    def checkpoints(self) -> list[StoredCheckpoint]:
        with self.store.read() as conn:
            return list_checkpoints(conn)

    def verify(
        self, public_key: str | None = None, progress: Callable[[str], None] | None = None
    ) -> VerifyReport:
        """Verify the ledger, then the registry rows against the digests it recorded."""
        key = self.verifier_key(public_key)
        with self.store.read() as conn:
            report = verify_log(conn, self.log, key, self.origin, progress)
            if progress is not None:
                progress("checking registry rows against their ledger entries")
            audit = audit_registry(conn, self.log)
        return replace(report, registry_versions=audit.versions, alias_moves=audit.alias_moves)

    def export(self, destination: Path) -> ExportSummary:
        """Export everything, signing a fresh checkpoint first if the log has grown."""
        check_destination(destination)  # a refused export must not sign anything
        with self.store.read() as conn:
            size = self.log.size(conn)
            signed = max((c.size for c in list_checkpoints(conn)), default=-1)
        if signed < size:
            self.checkpoint()
        with self.store.read() as conn:
            return export_bundle(conn, self.log, destination, self.verifier_key(), self.origin)


def _read_meta(conn: sa.Connection) -> dict[str, str]:
    return {str(key): str(value) for key, value in conn.execute(sa.select(ledger_meta))}
