"""Conversions between registry records and database rows, in one place."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from mlgate.registry.records import AliasMove, Lineage, ModelVersion
from mlgate.registry.signature import Signature

__all__ = ["alias_move_from_row", "version_from_row", "version_to_row"]


def version_to_row(version: ModelVersion) -> dict[str, Any]:
    return {**version.record(), "ledger_seq": version.ledger_seq}


def version_from_row(row: Row[Any], alias_names: tuple[str, ...] = ()) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=int(row.version),
        sha256=row.sha256,
        flavor=row.flavor,
        size_bytes=int(row.size_bytes),
        signature=Signature.from_json(row.signature),
        params=row.params,
        metrics=row.metrics,
        tags=row.tags,
        lineage=Lineage.from_json(row.lineage),
        flavor_metadata=row.flavor_metadata,
        trusted_types=tuple(row.trusted_types),
        created_at=row.created_at,
        created_by=row.created_by,
        ledger_seq=int(row.ledger_seq),
        aliases=alias_names,
    )


def alias_move_from_row(row: Row[Any]) -> AliasMove:
    return AliasMove(
        name=row.name,
        alias=row.alias,
        from_version=row.from_version,
        to_version=int(row.to_version),
        moved_at=row.moved_at,
        actor=row.actor,
        ledger_seq=int(row.ledger_seq),
    )
