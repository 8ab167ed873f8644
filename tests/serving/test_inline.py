"""The inline policy alone: which calls may run on the event loop, from their durations.

Durations are given, not measured, so these tests say what the rule is without depending
on how fast this machine is; tests/serving/test_batcher.py drives it through a batcher.
"""

from __future__ import annotations

import time

from mlgate.serving._inline import InlinePolicy, cpu_if_preempted, thread_usage

BUDGET = 0.002
FAST = BUDGET / 10
SIZE = 20


def _policy_sent_to_the_threads() -> InlinePolicy:
    policy = InlinePolicy(BUDGET)
    for _ in range(40):
        policy.observe(SIZE, FAST)
    assert policy.allows(SIZE)
    for _ in range(4):  # more than 3 of the last 256 over budget: off the loop
        policy.observe(SIZE, 1.5 * BUDGET)
    assert not policy.allows(SIZE)
    return policy


def _stretched(i: int) -> float:
    """A fast model timed on a busy server's thread: 40 % of calls over budget (GIL waits)."""
    return 1.5 * BUDGET if i % 5 < 2 else FAST


def test_calls_stretched_by_gil_waits_keep_a_model_off_the_loop_until_its_second_chance() -> None:
    # The slow window alone would never let the model back; the median, after 1,024
    # calls off the loop (the fourth slow call was the first), does.
    policy = _policy_sent_to_the_threads()
    for i in range(1022):
        policy.observe(SIZE, _stretched(i))
        assert not policy.allows(SIZE)
    policy.observe(SIZE, FAST)
    assert policy.allows(SIZE)


def test_a_model_sent_off_by_a_burst_of_slow_calls_returns_when_the_window_clears() -> None:
    policy = _policy_sent_to_the_threads()
    for _ in range(252):
        policy.observe(SIZE, FAST)
    assert not policy.allows(SIZE)  # the four slow calls are still among the last 256
    policy.observe(SIZE, FAST)
    assert policy.allows(SIZE)


def test_a_model_slow_at_the_median_gets_no_second_chance() -> None:
    policy = _policy_sent_to_the_threads()
    for i in range(4096):
        policy.observe(SIZE, 1.5 * BUDGET if i % 5 < 3 else FAST)
    assert not policy.allows(SIZE)


def test_a_second_chance_that_proves_slow_ends_after_four_slow_calls() -> None:
    policy = _policy_sent_to_the_threads()
    for i in range(1023):
        policy.observe(SIZE, _stretched(i))
    assert policy.allows(SIZE)
    for _ in range(3):
        policy.observe(SIZE, 1.5 * BUDGET)  # timed inline now: these are real
        assert policy.allows(SIZE)
    policy.observe(SIZE, 1.5 * BUDGET)
    assert not policy.allows(SIZE)


def test_a_zero_budget_never_runs_inline_even_after_many_calls() -> None:
    policy = InlinePolicy(0.0)
    for _ in range(3000):
        policy.observe(SIZE, 0.0)
    assert not policy.allows(SIZE)


def test_one_call_far_over_budget_sends_the_next_call_to_a_thread() -> None:
    policy = InlinePolicy(BUDGET)
    for _ in range(40):
        policy.observe(SIZE, FAST)
    policy.observe(SIZE, 11 * BUDGET)
    assert not policy.allows(SIZE)


def test_a_batch_larger_than_any_seen_fast_is_not_extrapolated_to() -> None:
    policy = InlinePolicy(BUDGET)
    for _ in range(40):
        policy.observe(SIZE, FAST)
    assert policy.allows(SIZE) and not policy.allows(SIZE + 1)


# -- preemption: the OS taking the CPU away is not the model's time ----------------------------


def _inline_policy() -> InlinePolicy:
    policy = InlinePolicy(BUDGET)
    for _ in range(40):
        policy.observe(SIZE, FAST)
    return policy


def test_calls_over_budget_only_because_the_os_preempted_them_keep_a_model_inline() -> None:
    policy = _inline_policy()
    for _ in range(20):
        policy.observe(SIZE, 3 * BUDGET, preempted_cpu_s=FAST)
    assert policy.allows(SIZE)


def test_a_preempted_call_that_also_used_its_budget_of_cpu_counts_as_slow() -> None:
    policy = _inline_policy()
    for _ in range(4):
        policy.observe(SIZE, 3 * BUDGET, preempted_cpu_s=1.2 * BUDGET)
    assert not policy.allows(SIZE)


def test_no_preemption_explains_a_call_past_ten_budgets() -> None:
    policy = _inline_policy()
    policy.observe(SIZE, 11 * BUDGET, preempted_cpu_s=FAST)
    assert not policy.allows(SIZE)


def test_cpu_time_counts_only_across_a_preemption() -> None:
    assert cpu_if_preempted((1.0, 5), (1.25, 5)) is None  # not preempted: wall time stands
    assert cpu_if_preempted((1.0, 5), (1.25, 7)) == 0.25
    assert cpu_if_preempted((1.0, 5), (0.5, 6)) == 0.0  # a clock never runs back; guard anyway


def test_thread_usage_reads_this_threads_cpu_time_and_preemptions() -> None:
    cpu0, switches0 = thread_usage()
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:  # 50 ms of this thread's own CPU
        pass
    cpu1, switches1 = thread_usage()
    assert cpu1 - cpu0 >= 0.05
    assert switches1 >= switches0 >= 0
