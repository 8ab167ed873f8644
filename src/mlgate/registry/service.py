"""The model registry: immutable versions, movable aliases, each change ledgered.

Each change and its ledger entry share one database transaction, so the
registry and the ledger can never disagree: a registration without its entry, or
an entry without its registration, cannot be committed. The artifact bytes are
written before the transaction (content-addressed, so a failed transaction
leaves at most an unreferenced blob, never a version without bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import (
    AliasNotFoundError,
    DuplicateVersionError,
    ModelNotFoundError,
    SignatureError,
    VersionNotFoundError,
)
from mlgate.ledger.events import EventKind, LedgerEvent, digest_json, format_time
from mlgate.ledger.log import MerkleLog
from mlgate.registry._rows import alias_move_from_row, version_from_row, version_to_row
from mlgate.registry.artifacts import ArtifactStore
from mlgate.registry.flavors import Inspection, LoadedModel, detect_flavor, flavor_named
from mlgate.registry.flavors.torch import TorchFlavor
from mlgate.registry.records import (
    AliasMove,
    Lineage,
    ModelSummary,
    ModelVersion,
    check_alias_name,
    check_metrics,
    check_model_name,
    check_params,
    check_tags,
)
from mlgate.registry.signature import Signature
from mlgate.store.engine import Store
from mlgate.store.schema import alias_history, aliases, model_versions, models

__all__ = ["Registry", "VersionRef"]

VersionRef = int | str  # a version number, an alias, or "latest"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Registry:
    def __init__(
        self,
        store: Store,
        artifacts: ArtifactStore,
        log: MerkleLog,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._log = log
        self._clock = clock

    # -- changes ----------------------------------------------------------------

    def register(
        self,
        name: str,
        data: bytes,
        *,
        actor: str,
        flavor: str | None = None,
        signature: Signature | None = None,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        lineage: Lineage | None = None,
        trusted_types: Sequence[str] = (),
    ) -> ModelVersion:
        """Validate ``data`` as a model, store it, and record a new version atomically."""
        check_model_name(name)
        checked_params = check_params(params or {})
        checked_metrics = check_metrics(metrics or {})
        checked_tags = check_tags(tags or {})
        handler = flavor_named(flavor) if flavor else detect_flavor(data)
        if isinstance(handler, TorchFlavor):
            # TorchScript records no shapes: the override may be the only signature there is.
            inspection = handler.inspect(data, trusted_types=trusted_types, signature=signature)
        else:
            inspection = handler.inspect(data, trusted_types=trusted_types)
        final_signature = _override_signature(inspection.signature, signature)
        digest = self._artifacts.put(data)
        with self._store.write() as conn:
            seq = self._log.lock_size(conn)
            existing = conn.execute(
                sa.select(model_versions.c.version).where(
                    model_versions.c.name == name, model_versions.c.sha256 == digest
                )
            ).scalar_one_or_none()
            if existing is not None:
                raise DuplicateVersionError(
                    f"this file (sha256 {digest[:12]}...) is already {name} version {existing}; "
                    f"versions are immutable, so use version {existing} or register a changed file"
                )
            latest = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.name == name
                )
            ).scalar_one_or_none()
            now = format_time(self._clock())
            if latest is None:
                conn.execute(models.insert().values(name=name, created_at=now))
            version = ModelVersion(
                name=name,
                version=(latest or 0) + 1,
                sha256=digest,
                flavor=inspection.flavor,
                size_bytes=len(data),
                signature=final_signature,
                params=checked_params,
                metrics=checked_metrics,
                tags=checked_tags,
                lineage=lineage or Lineage(),
                flavor_metadata=dict(inspection.metadata),
                trusted_types=tuple(inspection.trusted_types),
                created_at=now,
                created_by=actor,
                ledger_seq=seq,
            )
            conn.execute(model_versions.insert().values(**version_to_row(version)))
            appended = self._log.append(
                conn,
                LedgerEvent(
                    kind=EventKind.MODEL_REGISTERED,
                    actor=actor,
                    subject={"model": name, "version": version.version},
                    digests={
                        "artifact": "sha256:" + digest,
                        "record": digest_json(version.record()),
                    },
                    attributes={"flavor": inspection.flavor},
                ),
            )
            assert appended == seq, "the ledger head is locked for this transaction"
        return version

    def move_alias(self, name: str, alias: str, version: int, *, actor: str) -> AliasMove:
        """Point ``alias`` at ``version`` (creating the alias if new), atomically with its entry."""
        check_alias_name(alias)
        with self._store.write() as conn:
            seq = self._log.lock_size(conn)
            self._require_version(conn, name, version)
            current = conn.execute(
                sa.select(aliases.c.version).where(aliases.c.name == name, aliases.c.alias == alias)
            ).scalar_one_or_none()
            move = AliasMove(
                name=name,
                alias=alias,
                from_version=None if current is None else int(current),
                to_version=version,
                moved_at=format_time(self._clock()),
                actor=actor,
                ledger_seq=seq,
            )
            values = {"version": version, "moved_at": move.moved_at, "ledger_seq": seq}
            if current is None:
                conn.execute(aliases.insert().values(name=name, alias=alias, **values))
            else:
                conn.execute(
                    aliases.update()
                    .where(aliases.c.name == name, aliases.c.alias == alias)
                    .values(**values)
                )
            conn.execute(alias_history.insert().values(**move.to_json()))
            self._log.append(
                conn,
                LedgerEvent(
                    kind=EventKind.ALIAS_MOVED,
                    actor=actor,
                    subject={"model": name, "alias": alias, "version": version},
                    digests={"record": digest_json(move.record())},
                    attributes={"from_version": move.from_version},
                ),
            )
        return move

    # -- queries ----------------------------------------------------------------

    def get(self, name: str, ref: VersionRef = "latest") -> ModelVersion:
        with self._store.read() as conn:
            version = self._resolve(conn, name, ref)
            row = conn.execute(
                sa.select(model_versions).where(
                    model_versions.c.name == name, model_versions.c.version == version
                )
            ).one()
            return version_from_row(row, self._aliases_of(conn, name).get(version, ()))

    def versions(self, name: str) -> list[ModelVersion]:
        with self._store.read() as conn:
            self._require_model(conn, name)
            by_version = self._aliases_of(conn, name)
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.name == name)
                .order_by(model_versions.c.version)
            )
            return [version_from_row(row, by_version.get(int(row.version), ())) for row in rows]

    def models(self) -> list[ModelSummary]:
        with self._store.read() as conn:
            stats = conn.execute(
                sa.select(
                    models.c.name,
                    models.c.created_at,
                    sa.func.max(model_versions.c.version),
                    sa.func.count(model_versions.c.version),
                )
                .join(model_versions, model_versions.c.name == models.c.name)
                .group_by(models.c.name, models.c.created_at)
                .order_by(models.c.name)
            ).all()
            alias_rows = conn.execute(sa.select(aliases.c.name, aliases.c.alias, aliases.c.version))
            by_model: dict[str, dict[str, int]] = {}
            for alias_row in alias_rows:
                by_model.setdefault(alias_row.name, {})[alias_row.alias] = int(alias_row.version)
        return [
            ModelSummary(
                name=row[0],
                created_at=row[1],
                latest_version=int(row[2]),
                version_count=int(row[3]),
                aliases=by_model.get(row[0], {}),
            )
            for row in stats
        ]

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self._store.read() as conn:
            self._require_model(conn, name)
            query = sa.select(alias_history).where(alias_history.c.name == name)
            if alias is not None:
                query = query.where(alias_history.c.alias == alias)
            rows = conn.execute(query.order_by(alias_history.c.id))
            return [alias_move_from_row(row) for row in rows]

    def read_artifact(self, version: ModelVersion) -> bytes:
        """The version's bytes, re-hashed against the registered digest on every call."""
        return self._artifacts.get(version.sha256)

    def load(self, name: str, ref: VersionRef = "latest") -> tuple[ModelVersion, LoadedModel]:
        version = self.get(name, ref)
        data = self.read_artifact(version)
        inspection = Inspection(
            flavor=version.flavor,
            signature=version.signature,
            metadata=dict(version.flavor_metadata),
            trusted_types=version.trusted_types,
        )
        return version, flavor_named(version.flavor).load(data, inspection)

    # -- helpers ----------------------------------------------------------------

    def _require_model(self, conn: Connection, name: str) -> None:
        found = conn.execute(sa.select(models.c.name).where(models.c.name == name)).first()
        if found is None:
            raise ModelNotFoundError(
                f"no model named {name!r}: register one with `mlgate models register {name} FILE`"
            )

    def _require_version(self, conn: Connection, name: str, version: int) -> None:
        self._require_model(conn, name)
        found = conn.execute(
            sa.select(model_versions.c.version).where(
                model_versions.c.name == name, model_versions.c.version == version
            )
        ).first()
        if found is None:
            known = conn.execute(
                sa.select(sa.func.max(model_versions.c.version)).where(
                    model_versions.c.name == name
                )
            ).scalar_one()
            raise VersionNotFoundError(
                f"{name} has no version {version}: its versions are 1..{known}"
            )

    def _resolve(self, conn: Connection, name: str, ref: VersionRef) -> int:
        self._require_model(conn, name)
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            self._require_version(conn, name, int(ref))
            return int(ref)
        if ref == "latest":
            return int(
                conn.execute(
                    sa.select(sa.func.max(model_versions.c.version)).where(
                        model_versions.c.name == name
                    )
                ).scalar_one()
            )
        target = conn.execute(
            sa.select(aliases.c.version).where(aliases.c.name == name, aliases.c.alias == ref)
        ).scalar_one_or_none()
        if target is None:
            known = sorted(self._aliases_of_names(conn, name))
            raise AliasNotFoundError(
                f"{name} has no alias {ref!r} (its aliases: {', '.join(known) or 'none'}); "
                f"set one with `mlgate models alias {name} {ref} VERSION`"
            )
        return int(target)

    def _aliases_of(self, conn: Connection, name: str) -> dict[int, tuple[str, ...]]:
        found: dict[int, list[str]] = {}
        for row in conn.execute(
            sa.select(aliases.c.alias, aliases.c.version)
            .where(aliases.c.name == name)
            .order_by(aliases.c.alias)
        ):
            found.setdefault(int(row.version), []).append(row.alias)
        return {version: tuple(names) for version, names in found.items()}

    def _aliases_of_names(self, conn: Connection, name: str) -> list[str]:
        return [
            str(alias)
            for alias in conn.execute(
                sa.select(aliases.c.alias).where(aliases.c.name == name)
            ).scalars()
        ]


def _override_signature(inferred: Signature, override: Signature | None) -> Signature:
    """An override may refine datatypes and shapes but must name the model's real tensors."""
    if override is None:
        return inferred
    for side in ("inputs", "outputs"):
        have = {spec.name for spec in getattr(inferred, side)}
        want = {spec.name for spec in getattr(override, side)}
        if have != want:
            raise SignatureError(
                f"the signature override's {side} {sorted(want)} do not match the model's "
                f"{sorted(have)}: keep the tensor names, change only datatypes and shapes"
            )
    return override
