"""The trigger policy: cooldown, confirmation (hysteresis), one run at a time, every reason."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import LoopConfigError
from mlgate.loop.triggers import Signal, TriggerConfig, TriggerPolicy, parse_triggers


def drift(at: float) -> Signal:
    return Signal("drift", "2 features drifted", at, {"alarms": 2})


def test_one_alarm_is_not_enough_two_within_the_window_fire() -> None:
    policy = TriggerPolicy(TriggerConfig(confirm=2, confirm_window_s=60, cooldown_s=0))
    first = policy.decide(drift(0), last_run_at=None, active_run=None)
    assert not first.fire and first.reason.startswith("unconfirmed: 1 of 2")
    second = policy.decide(drift(30), last_run_at=None, active_run=None)
    assert second.fire
    assert second.attributes()["decision"] == "fired"


def test_signals_further_apart_than_the_window_never_confirm() -> None:
    policy = TriggerPolicy(TriggerConfig(confirm=2, confirm_window_s=60, cooldown_s=0))
    decisions = [policy.decide(drift(t), last_run_at=None, active_run=None) for t in (0, 61, 122)]
    assert not any(d.fire for d in decisions)


def test_cooldown_suppresses_and_says_how_long_is_left() -> None:
    policy = TriggerPolicy(TriggerConfig(confirm=1, cooldown_s=600))
    decision = policy.decide(drift(1100), last_run_at=1000, active_run=None)
    assert not decision.fire
    assert decision.reason == "cooldown: 500 s of 600 s left"
    assert policy.decide(drift(1600), last_run_at=1000, active_run=None).fire


def test_an_active_run_suppresses_even_a_manual_trigger() -> None:
    policy = TriggerPolicy(TriggerConfig())
    manual = Signal("manual", "operator", 0.0)
    decision = policy.decide(manual, last_run_at=None, active_run=7)
    assert not decision.fire and "run 7 is still active" in decision.reason
    assert policy.decide(manual, last_run_at=0.0, active_run=None).fire  # no cooldown, no confirm


def test_disabled_kinds_are_suppressed_by_name() -> None:
    policy = TriggerPolicy(TriggerConfig(on=frozenset({"manual"})))
    decision = policy.decide(drift(0), last_run_at=None, active_run=None)
    assert not decision.fire and "drift triggers are not enabled" in decision.reason


def test_schedule_fires_once_per_period_without_confirmation() -> None:
    policy = TriggerPolicy(parse_triggers({"on": ["schedule"], "every_s": 100, "cooldown_s": 0}))
    assert policy.scheduled(50, last_run_at=0) is None
    signal = policy.scheduled(100, last_run_at=0)
    assert signal is not None
    assert policy.decide(signal, last_run_at=0, active_run=None).fire


@given(st.lists(st.floats(min_value=0, max_value=10_000), min_size=1, max_size=60))
def test_a_noisy_signal_cannot_start_a_storm(times: list[float]) -> None:
    """However the alarms fall, two fired runs are at least the cooldown apart."""
    policy = TriggerPolicy(TriggerConfig(confirm=2, confirm_window_s=300, cooldown_s=600))
    last: float | None = None
    fired: list[float] = []
    for at in sorted(times):
        if policy.decide(drift(at), last_run_at=last, active_run=None).fire:
            fired.append(at)
            last = at
    assert all(b - a >= 600 for a, b in zip(fired, fired[1:], strict=False))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1], "triggers must be a mapping"),
        ({"cooldown": 5}, "unknown keys ['cooldown']"),
        ({"on": ["drift", "storm"]}, "triggers.on must be a list of"),
        ({"on": ["schedule"]}, "every_s is not set"),
        ({"confirm": 0}, "triggers.confirm must be an integer of at least 1"),
        ({"cooldown_s": -1}, "triggers.cooldown_s must be a number of seconds >= 0"),
        ({"confirm_window_s": float("nan")}, "confirm_window_s must be a number"),
    ],
)
def test_bad_trigger_sections_name_the_key(data: object, message: str) -> None:
    with pytest.raises(LoopConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_triggers(data)


def test_a_bare_yaml_on_key_is_read_as_on() -> None:
    import yaml

    config = parse_triggers(yaml.safe_load("on: [manual]\ncooldown_s: 5\n"))
    assert config.on == frozenset({"manual"}) and config.cooldown_s == 5
