"""Where a model version went after registration: its canaries and the endpoint revisions
that routed to it.

An endpoint revision names its targets as versions or aliases; an alias is resolved to
the version it pointed at when the revision was deployed (its ledger index), from the
model's alias history, so a later alias move does not rewrite what was served then.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from mlgate.errors import MlgateError
from mlgate.experiments.canary.status import CanaryStatus, status_from_row
from mlgate.registry.records import AliasMove, ModelVersion
from mlgate.serving.spec import endpoint_from_json, targets_of
from mlgate.store.schema import canaries, endpoint_history
from mlgate.workspace import Workspace

__all__ = ["Deployments"]


class Deployments:
    """One lineage query's view of deployments: the endpoint history is read once for all."""

    def __init__(self, workspace: Workspace) -> None:
        self.ws = workspace
        self._history: list[tuple[Any, set[int | str]]] | None = None

    def canaries(self, version: ModelVersion) -> tuple[CanaryStatus, ...]:
        """The canaries that tried ``version`` as their candidate, oldest first."""
        with self.ws.store.read() as conn:
            rows = conn.execute(
                sa.select(canaries)
                .where(canaries.c.candidate == str(version.version))
                .order_by(canaries.c.id)
            ).all()
        return tuple(s for s in map(status_from_row, rows) if s.model == version.name)

    def revisions(
        self, version: ModelVersion, moves: list[AliasMove]
    ) -> tuple[dict[str, Any], ...]:
        """Endpoint revisions whose targets resolved to this version when they were deployed."""
        if self._history is None:
            with self.ws.store.read() as conn:
                rows = conn.execute(
                    sa.select(endpoint_history)
                    .where(endpoint_history.c.spec.is_not(None))
                    .order_by(endpoint_history.c.id)
                ).all()
            self._history = []
            for row in rows:
                try:
                    self._history.append((row, targets_of(endpoint_from_json(row.spec))))
                except MlgateError:
                    continue  # a spec this release no longer reads routes nothing it can name
        found = []
        for row, targets in self._history:
            if row.spec.get("model") != version.name:
                continue
            via = sorted(
                str(t) for t in targets if _resolve(t, row.ledger_seq, moves) == version.version
            )
            if via:
                keys = ("revision", "updated_at", "updated_by", "ledger_seq")
                found.append(
                    {"endpoint": row.name, **{k: getattr(row, k) for k in keys}, "via": via}
                )
        return tuple(found)


def _resolve(target: int | str, seq: int, moves: list[AliasMove]) -> int | None:
    """What ``target`` named at ledger index ``seq`` (``latest`` is not resolved)."""
    if isinstance(target, int):
        return target
    earlier = [m for m in moves if m.alias == target and m.ledger_seq < seq]
    return earlier[-1].to_version if earlier else None
