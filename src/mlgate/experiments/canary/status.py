"""A canary as stored, and what one tick did to it: the shapes the API and CLI print."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from mlgate.experiments.canary.config import CanaryConfig
from mlgate.experiments.canary.judge import Judgement
from mlgate.ledger.events import format_time

__all__ = [
    "ACTIVE_STATES",
    "Action",
    "CanaryDecision",
    "CanaryState",
    "CanaryStatus",
    "parse_time",
    "status_from_row",
]

CanaryState = Literal["running", "paused", "held", "promoted", "rolled_back", "aborted"]
Action = Literal["stepped", "promoted", "failed", "rolled_back", "paused", "held", "taken_over"]
ACTIVE_STATES: tuple[CanaryState, ...] = ("running", "paused", "held")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def parse_time(text: str) -> datetime:
    """The inverse of :func:`mlgate.ledger.events.format_time`."""
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


@dataclass(frozen=True)
class CanaryStatus:
    """One canary as stored. ``percent`` is the candidate's share of traffic now."""

    id: int
    endpoint: str
    baseline: str
    candidate: str
    state: CanaryState
    step_index: int
    config: CanaryConfig
    original_spec: dict[str, Any]
    step_started_at: str
    failures: int
    inconclusive: int
    last_report: dict[str, Any] | None
    revision: int
    created_at: str
    created_by: str
    updated_at: str

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    @property
    def model(self) -> str:
        return str(self.original_spec.get("model") or self.endpoint)

    @property
    def percent(self) -> float:
        if self.state in ("rolled_back", "aborted"):
            return 0.0
        return self.config.steps[self.step_index]

    @property
    def next_judgement_at(self) -> str | None:
        """When a tick judges it next; None when no clock will (held, or ended)."""
        if self.state not in ("running", "paused"):
            return None
        due = parse_time(self.updated_at) + timedelta(seconds=self.config.interval_s)
        return format_time(due)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "endpoint": self.endpoint,
            "model": self.model,
            "baseline": self.baseline,
            "candidate": self.candidate,
            "state": self.state,
            "active": self.active,
            "step_index": self.step_index,
            "steps": list(self.config.steps),
            "percent": self.percent,
            "failures": self.failures,
            "failure_limit": self.config.failure_limit,
            "inconclusive": self.inconclusive,
            "inconclusive_limit": self.config.inconclusive_limit,
            "interval_s": self.config.interval_s,
            "step_started_at": self.step_started_at,
            "next_judgement_at": self.next_judgement_at,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at,
            "revision": self.revision,
            "config": self.config.to_json(),
            "last_report": self.last_report,
        }


def status_from_row(row: Any) -> CanaryStatus:
    return CanaryStatus(
        id=int(row.id),
        endpoint=row.endpoint,
        baseline=row.baseline,
        candidate=row.candidate,
        state=row.state,
        step_index=int(row.step_index),
        config=CanaryConfig.from_json(row.config),
        original_spec=dict(row.original_spec),
        step_started_at=row.step_started_at,
        failures=int(row.failures),
        inconclusive=int(row.inconclusive),
        last_report=row.last_report,
        revision=int(row.revision),
        created_at=row.created_at,
        created_by=row.created_by,
        updated_at=row.updated_at,
    )


@dataclass(frozen=True)
class CanaryDecision:
    """What one tick did to one canary (``status`` is the canary after it)."""

    action: Action
    status: CanaryStatus
    judgement: Judgement | None

    def to_json(self) -> dict[str, Any]:
        return {
            "canary_id": self.status.id,
            "endpoint": self.status.endpoint,
            "action": self.action,
            "state": self.status.state,
            "step_index": self.status.step_index,
            "percent": self.status.percent,
            "judgement": None if self.judgement is None else self.judgement.to_json(),
        }
