"""When a signal starts a retraining run: cooldown, confirmation and one run at a time.

A drift detector on a noisy stream alarms now and then with no real change; retraining on
each alarm would start a storm of runs that each cost a training and a canary. So a signal
of an automatic kind (drift, data quality, performance decay, schedule) starts a run only
when

1. its kind is enabled (``on``);
2. no run of the loop is active (at most one retraining per model at a time);
3. the cooldown since the last run started has passed;
4. ``confirm`` drift, quality or performance signals arrived within ``confirm_window_s``
   (hysteresis: one alarm is not enough; with ``confirm: 1`` it is). A schedule signal
   needs no confirmation; it is deliberate.

A manual trigger skips 3 and 4 (the operator asked) but never 2. Every decision, fired or
suppressed, comes back with its reason, which the runner ledgers. The policy is pure: it
keeps the recent signals in memory and takes times as arguments, so tests drive it with
any clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from mlgate.errors import LoopConfigError
from mlgate.ledger.events import Scalar

__all__ = [
    "SIGNAL_KINDS",
    "Decision",
    "Signal",
    "SignalKind",
    "TriggerConfig",
    "TriggerPolicy",
    "parse_triggers",
]

SignalKind = Literal["drift", "quality", "performance", "schedule", "manual"]
SIGNAL_KINDS: tuple[SignalKind, ...] = get_args(SignalKind)
_DEFAULT_ON: frozenset[SignalKind] = frozenset({"drift", "quality", "performance", "manual"})


@dataclass(frozen=True)
class Signal:
    """Something that may warrant retraining, with the numbers that say why."""

    kind: SignalKind
    reason: str
    at: float  # Unix seconds
    details: Mapping[str, Scalar] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    fire: bool
    reason: str
    signal: Signal

    def attributes(self) -> dict[str, Scalar]:
        """The decision as ledger attributes (exact values only: numbers as text)."""
        return {
            "signal": self.signal.kind,
            "signal_reason": self.signal.reason[:300],
            "decision": "fired" if self.fire else "suppressed",
            "reason": self.reason[:300],
            **{f"signal_{k}": v for k, v in self.signal.details.items()},
        }


@dataclass(frozen=True)
class TriggerConfig:
    on: frozenset[SignalKind] = _DEFAULT_ON
    cooldown_s: float = 600.0
    confirm: int = 2
    confirm_window_s: float = 600.0
    every_s: float | None = None  # schedule: a run every this many seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "on": sorted(self.on),
            "cooldown_s": self.cooldown_s,
            "confirm": self.confirm,
            "confirm_window_s": self.confirm_window_s,
            "every_s": self.every_s,
        }


def parse_triggers(data: object, *, where: str = "triggers") -> TriggerConfig:
    """The ``triggers:`` mapping of a loop file; LoopConfigError names the bad key."""
    if data is None:
        return TriggerConfig()
    if not isinstance(data, Mapping):
        raise LoopConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    if True in data and "on" not in data:  # YAML 1.1 reads a bare `on:` key as true
        data = {("on" if key is True else key): value for key, value in data.items()}
    known = {"on", "cooldown_s", "confirm", "confirm_window_s", "every_s"}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise LoopConfigError(f"{where} has unknown keys {unknown}; known: {sorted(known)}")
    on = data.get("on", sorted(_DEFAULT_ON))
    if not isinstance(on, list) or not all(kind in SIGNAL_KINDS for kind in on):
        raise LoopConfigError(f"{where}.on must be a list of {list(SIGNAL_KINDS)}, got {on!r}")
    every = data.get("every_s")
    if "schedule" in on and every is None:
        raise LoopConfigError(f"{where}.on lists schedule but {where}.every_s is not set")
    return TriggerConfig(
        on=frozenset(on),
        cooldown_s=_seconds(data.get("cooldown_s", 600.0), f"{where}.cooldown_s", zero=True),
        confirm=_count(data.get("confirm", 2), f"{where}.confirm"),
        confirm_window_s=_seconds(data.get("confirm_window_s", 600.0), f"{where}.confirm_window_s"),
        every_s=None if every is None else _seconds(every, f"{where}.every_s"),
    )


def _seconds(value: object, where: str, *, zero: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or float(value) < 0 or (float(value) == 0 and not zero):  # type: ignore[arg-type]
        bound = ">= 0" if zero else "> 0"
        raise LoopConfigError(f"{where} must be a number of seconds {bound}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LoopConfigError(f"{where} must be an integer of at least 1, got {value!r}")
    return value


class TriggerPolicy:
    """Decides, signal by signal; remembers the recent automatic signals for confirmation."""

    def __init__(self, config: TriggerConfig) -> None:
        self.config = config
        self._recent: deque[float] = deque()

    def decide(
        self, signal: Signal, *, last_run_at: float | None, active_run: int | None
    ) -> Decision:
        config = self.config
        if signal.kind not in config.on:
            return Decision(False, f"{signal.kind} triggers are not enabled (triggers.on)", signal)
        if active_run is not None:
            return Decision(False, f"run {active_run} is still active: one run at a time", signal)
        if signal.kind == "manual":
            return Decision(True, "manual trigger", signal)
        if last_run_at is not None and signal.at - last_run_at < config.cooldown_s:
            left = config.cooldown_s - (signal.at - last_run_at)
            return Decision(
                False, f"cooldown: {left:.0f} s of {config.cooldown_s:g} s left", signal
            )
        if signal.kind == "schedule":
            return Decision(True, f"scheduled every {config.every_s:g} s", signal)
        while self._recent and signal.at - self._recent[0] > config.confirm_window_s:
            self._recent.popleft()
        self._recent.append(signal.at)
        if len(self._recent) < config.confirm:
            return Decision(
                False,
                f"unconfirmed: {len(self._recent)} of {config.confirm} signals within "
                f"{config.confirm_window_s:g} s",
                signal,
            )
        self._recent.clear()
        return Decision(
            True, f"{config.confirm} signal(s) within {config.confirm_window_s:g} s", signal
        )

    def scheduled(self, now: float, last_run_at: float | None) -> Signal | None:
        """A schedule signal when ``every_s`` has passed since the last run (or none ran)."""
        every = self.config.every_s
        if every is None or "schedule" not in self.config.on:
            return None
        if last_run_at is not None and now - last_run_at < every:
            return None
        return Signal("schedule", f"every {every:g} s", now)
