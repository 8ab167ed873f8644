"""What a judgement does to a canary: the row changes and the ledger entries, no I/O.

Kept pure so that the rules (pass steps or promotes, fail counts towards the failure
limit, inconclusive pauses and, in a row, holds) read in one place and the controller
only commits what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlgate.experiments.canary.judge import Judgement
from mlgate.experiments.canary.status import Action, CanaryStatus
from mlgate.ledger.events import LedgerEvent, Scalar, digest_json

__all__ = [
    "CANARY_ABORTED",
    "CANARY_JUDGED",
    "CANARY_PAUSED",
    "CANARY_PROMOTED",
    "CANARY_RESUMED",
    "CANARY_ROLLED_BACK",
    "CANARY_STARTED",
    "CANARY_STEP",
    "Transition",
    "after_judgement",
    "number_text",
]

CANARY_STARTED = "canary.started"
CANARY_JUDGED = "canary.judged"
CANARY_STEP = "canary.step"
CANARY_PROMOTED = "canary.promoted"
CANARY_ROLLED_BACK = "canary.rolled_back"
CANARY_PAUSED = "canary.paused"
CANARY_RESUMED = "canary.resumed"
CANARY_ABORTED = "canary.aborted"

_REASON_CHARS = 200


@dataclass(frozen=True)
class Transition:
    action: Action
    changes: dict[str, Any]
    events: tuple[LedgerEvent, ...]


def number_text(value: float) -> str:
    """A number for a ledger attribute, where floats are not allowed: 5.0 -> "5"."""
    return f"{value:g}"


def after_judgement(
    status: CanaryStatus, judgement: Judgement, *, since: str, until: str, actor: str
) -> Transition:
    """The row changes (``last_report`` included) and entries that ``judgement`` causes."""
    config = status.config
    report = {
        "judged_at": until,
        "window": {"since": since, "until": until},
        "step_index": status.step_index,
        "percent": config.steps[status.step_index],
        "baseline": status.baseline,
        "candidate": status.candidate,
        **judgement.to_json(),
    }
    changes: dict[str, Any] = {"last_report": report, "inconclusive": 0}
    action: Action
    kind: str | None
    outcome: dict[str, Scalar]
    if judgement.verdict == "pass":
        next_step = status.step_index + 1
        last = next_step >= config.judged_steps
        action, kind = ("promoted", CANARY_PROMOTED) if last else ("stepped", CANARY_STEP)
        changes.update(
            state="promoted" if last else "running", step_index=next_step, step_started_at=until
        )
        outcome = {"step": next_step, "percent": number_text(config.steps[next_step])}
    elif judgement.verdict == "fail":
        failures = status.failures + 1
        rolled_back = failures >= config.failure_limit
        action, kind = ("rolled_back", CANARY_ROLLED_BACK) if rolled_back else ("failed", None)
        changes.update(state="rolled_back" if rolled_back else "running", failures=failures)
        outcome = {"failures": failures, "reason": "failure_limit"}
    else:
        count = status.inconclusive + 1
        held = count >= config.inconclusive_limit
        action, kind = ("held" if held else "paused"), CANARY_PAUSED
        changes.update(state=action, inconclusive=count)
        outcome = {
            "held": held,
            "reason": "inconclusive_limit" if held else "inconclusive",
            "inconclusive": count,
        }
    subject: dict[str, Scalar] = {"endpoint": status.endpoint, "canary": status.id}
    digests = {"report": digest_json(report)}
    judged = LedgerEvent(
        kind=CANARY_JUDGED,
        actor=actor,
        subject=subject,
        digests=digests,
        attributes={
            "step": status.step_index,
            "percent": number_text(config.steps[status.step_index]),
            "verdict": judgement.verdict,
            "score": None if judgement.score is None else f"{judgement.score:.2f}",
            "requests_baseline": judgement.requests_baseline,
            "requests_canary": judgement.requests_canary,
            "failures": changes.get("failures", status.failures),
            "reason": judgement.reason[:_REASON_CHARS],
        },
    )
    if kind is None:
        return Transition(action, changes, (judged,))
    followed = LedgerEvent(kind, actor, subject, digests, {"action": action, **outcome})
    return Transition(action, changes, (judged, followed))
