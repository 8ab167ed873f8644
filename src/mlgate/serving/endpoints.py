"""Endpoints: the names clients call and their traffic policies, versioned and ledgered.

A deploy is checked against the registry first (every version and alias it names
must exist, and all of them must accept the same inputs, or routing between them
would turn a valid request into a 400 by chance), then written with its history
row and a ledger entry in one transaction. Running servers notice the new ledger
size within their poll interval and swap policies without a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from mlgate.errors import MlgateError, PolicyError
from mlgate.ledger.events import LedgerEvent, digest_json, format_time
from mlgate.ledger.log import MerkleLog
from mlgate.registry.service import Registry
from mlgate.serving.spec import EndpointSpec, endpoint_from_json, endpoint_to_json, targets_of
from mlgate.store.engine import Store
from mlgate.store.schema import endpoint_history, endpoints

__all__ = ["DeployedEndpoint", "EndpointStore"]

ENDPOINT_DEPLOYED = "endpoint.deployed"
ENDPOINT_REMOVED = "endpoint.removed"


@dataclass(frozen=True)
class DeployedEndpoint:
    spec: EndpointSpec
    revision: int
    updated_at: str
    updated_by: str
    ledger_seq: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "revision": self.revision,
            "updated_at": self.updated_at,
            "updated_by": self.updated_by,
            "ledger_seq": self.ledger_seq,
            "spec": endpoint_to_json(self.spec),
        }


class EndpointStore:
    def __init__(
        self, store: Store, registry: Registry, log: MerkleLog, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._registry = registry
        self._log = log
        self._clock = clock

    def check(self, spec: EndpointSpec) -> dict[str, int]:
        """Resolve every target now; return {target: version} or raise PolicyError."""
        resolved: dict[str, int] = {}
        signatures = {}
        for target in sorted(targets_of(spec), key=str):
            try:
                version = self._registry.get(spec.model, target)
            except MlgateError as exc:
                raise PolicyError(f"endpoint {spec.name!r} routes to {target!r}: {exc}") from exc
            resolved[str(target)] = version.version
            signatures[version.version] = version.signature
        inputs = {v: sig.inputs for v, sig in signatures.items()}
        if len(set(inputs.values())) > 1:
            described = ", ".join(
                f"v{v}: {[s.to_json() for s in spec_inputs]}" for v, spec_inputs in inputs.items()
            )
            raise PolicyError(
                f"endpoint {spec.name!r} mixes versions with different inputs ({described}); "
                "route only between versions that accept the same request"
            )
        return resolved

    def deploy(self, spec: EndpointSpec, *, actor: str) -> DeployedEndpoint:
        self.check(spec)
        document = endpoint_to_json(spec)
        with self._store.write() as conn:
            seq = self._log.lock_size(conn)
            current = conn.execute(
                sa.select(endpoints.c.revision).where(endpoints.c.name == spec.name)
            ).scalar_one_or_none()
            revision = (current or 0) + 1
            now = format_time(self._clock())
            row = {
                "name": spec.name,
                "spec": document,
                "revision": revision,
                "updated_at": now,
                "updated_by": actor,
                "ledger_seq": seq,
            }
            if current is None:
                conn.execute(endpoints.insert().values(**row))
            else:
                conn.execute(endpoints.update().where(endpoints.c.name == spec.name).values(**row))
            conn.execute(endpoint_history.insert().values(**row))
            self._log.append(
                conn,
                LedgerEvent(
                    kind=ENDPOINT_DEPLOYED,
                    actor=actor,
                    subject={"endpoint": spec.name, "revision": revision, "model": spec.model},
                    digests={"spec": digest_json(document)},
                ),
            )
        return DeployedEndpoint(spec, revision, now, actor, seq)

    def remove(self, name: str, *, actor: str) -> None:
        with self._store.write() as conn:
            seq = self._log.lock_size(conn)
            current = conn.execute(
                sa.select(endpoints.c.revision).where(endpoints.c.name == name)
            ).scalar_one_or_none()
            if current is None:
                raise PolicyError(f"there is no deployed endpoint {name!r} to remove")
            conn.execute(endpoints.delete().where(endpoints.c.name == name))
            conn.execute(
                endpoint_history.insert().values(
                    name=name,
                    spec=None,
                    revision=current + 1,
                    updated_at=format_time(self._clock()),
                    updated_by=actor,
                    ledger_seq=seq,
                )
            )
            self._log.append(
                conn,
                LedgerEvent(
                    kind=ENDPOINT_REMOVED,
                    actor=actor,
                    subject={"endpoint": name, "revision": current + 1},
                ),
            )

    def deployed(self) -> list[DeployedEndpoint]:
        with self._store.read() as conn:
            rows = conn.execute(sa.select(endpoints).order_by(endpoints.c.name)).all()
        return [_from_row(row) for row in rows]

    def get(self, name: str) -> DeployedEndpoint | None:
        with self._store.read() as conn:
            row = conn.execute(sa.select(endpoints).where(endpoints.c.name == name)).first()
        return None if row is None else _from_row(row)

    def history(self, name: str) -> list[dict[str, Any]]:
        with self._store.read() as conn:
            rows = conn.execute(
                sa.select(endpoint_history)
                .where(endpoint_history.c.name == name)
                .order_by(endpoint_history.c.id)
            ).all()
        return [
            {
                "revision": row.revision,
                "updated_at": row.updated_at,
                "updated_by": row.updated_by,
                "ledger_seq": row.ledger_seq,
                "removed": row.spec is None,
                "spec": row.spec,
            }
            for row in rows
        ]


def _from_row(row: Any) -> DeployedEndpoint:
    return DeployedEndpoint(
        spec=endpoint_from_json(row.spec),
        revision=int(row.revision),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
        ledger_seq=int(row.ledger_seq),
    )
