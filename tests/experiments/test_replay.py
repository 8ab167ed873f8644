"""Replay evaluation (Li et al. 2011) on synthetic logs whose true answers are known."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.errors import ExperimentInputError
from mlgate.experiments.bandits import UCB1, ContextEncoder, EpsilonGreedy, LinUCB
from mlgate.experiments.replay import (
    EventLog,
    LoggedEvent,
    NonUniformLogWarning,
    load_log,
    replay,
)

ARMS = ["a", "b", "c", "d", "e"]
RATES = {"a": 0.05, "b": 0.075, "c": 0.10, "d": 0.125, "e": 0.15}


class Always:
    """A fixed policy: plays one arm whatever happens (the replay protocol, nothing more)."""

    def __init__(self, arms: Sequence[str], arm: str) -> None:
        self.arms = tuple(arms)
        self.arm = arm

    def pull(self, context: Any = None) -> str:
        return self.arm

    def update(self, arm: Any, reward: float, context: Any = None) -> None:
        assert arm == self.arm


def uniform_log(size: int, seed: int, weights: Sequence[float] | None = None) -> EventLog:
    rng = np.random.default_rng(seed)
    p = None if weights is None else np.asarray(weights) / np.sum(weights)
    arms = rng.choice(len(ARMS), size=size, p=p)
    rewards = (rng.random(size) < np.array([RATES[a] for a in ARMS])[arms]).astype(float)
    propensity = np.full(size, 1 / len(ARMS)) if p is None else p[arms]
    return EventLog(tuple(ARMS[i] for i in arms), rewards, propensities=propensity)


def test_replay_of_a_fixed_policy_estimates_its_true_mean() -> None:
    log = uniform_log(50_000, seed=1)
    result = replay(Always(ARMS, "d"), log)
    low, high = result.ci
    assert low < RATES["d"] < high
    assert result.matched == result.pulls["d"] == sum(a == "d" for a in log.arms)
    assert result.total == 50_000
    assert 0.19 < result.match_rate < 0.21
    assert result.uniformity.uniform
    assert result.ips_mean is not None and result.ips_ci is not None
    assert result.ips_ci[0] < RATES["d"] < result.ips_ci[1]


def test_replay_intervals_cover_the_truth_about_as_often_as_promised() -> None:
    covered = 0
    for seed in range(60):  # a truly uniform log fails the chi-square test 1% of the time
        log = uniform_log(4_000, seed=seed)
        low, high = replay(Always(ARMS, "c"), log, confidence=0.9, on_nonuniform="ignore").ci
        covered += low < RATES["c"] < high
    assert 45 <= covered <= 60  # 90% nominal: 54 expected, binomial sd about 2.3


def test_replay_of_ucb1_beats_uniform() -> None:
    log = uniform_log(60_000, seed=2)
    uniform = replay(EpsilonGreedy(ARMS, epsilon=1.0, seed=0), log)
    ucb = replay(UCB1(ARMS, alpha=0.2, seed=0), log)
    assert uniform.ci[0] < np.mean(list(RATES.values())) < uniform.ci[1]
    assert ucb.mean_reward > uniform.ci[1]
    assert max(ucb.pulls, key=ucb.pulls.__getitem__) == "e"


def test_non_uniform_log_is_flagged() -> None:
    log = uniform_log(20_000, seed=3, weights=[4, 1, 1, 1, 1])
    with pytest.warns(NonUniformLogWarning, match="not uniformly randomised.*inverse-propensity"):
        result = replay(Always(ARMS, "a"), log)
    assert not result.uniformity.uniform
    assert result.uniformity.p_value < 1e-6
    assert result.uniformity.counts["a"] > 2 * result.uniformity.counts["b"]
    # The propensities make the inverse-propensity estimate right anyway.
    assert result.ips_ci is not None and result.ips_ci[0] < RATES["a"] < result.ips_ci[1]
    with pytest.raises(ExperimentInputError, match="not uniformly randomised"):
        replay(Always(ARMS, "a"), log, on_nonuniform="error")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = replay(Always(ARMS, "a"), log, on_nonuniform="ignore")
    assert quiet.uniformity.p_value == result.uniformity.p_value


def test_contextual_replay_learns_the_segments() -> None:
    rng = np.random.default_rng(4)
    size = 30_000
    segments = rng.choice(["young", "old"], size=size)
    arms = rng.choice(["a", "b"], size=size)
    best = np.where(segments == "young", "a", "b")
    rewards = (rng.random(size) < np.where(arms == best, 0.6, 0.2)).astype(float)
    events = [
        LoggedEvent(str(a), float(r), {"segment": str(s)})
        for a, r, s in zip(arms, rewards, segments, strict=True)
    ]
    encoder = ContextEncoder(categorical={"segment": ["young", "old"]})
    contextual = replay(LinUCB(["a", "b"], encoder, alpha=0.5, seed=0), events)
    blind = replay(UCB1(["a", "b"], seed=0), events)
    assert contextual.mean_reward > 0.55
    assert contextual.ci[0] > blind.ci[1]


def test_result_is_json_able() -> None:
    result = replay(Always(ARMS, "a"), uniform_log(500, seed=5))
    document = json.loads(json.dumps(result.to_dict()))
    assert document["matched"] == result.matched
    assert document["uniformity"]["uniform"] is True
    empty = replay(Always(ARMS, "a"), [LoggedEvent("b", 1.0), LoggedEvent("c", 0.0)])
    assert empty.matched == 0
    assert empty.to_dict()["mean_reward"] is None


def test_log_arms_and_events_are_checked() -> None:
    with pytest.raises(ExperimentInputError, match=r"logs arms \['z'\] that are not"):
        replay(Always(ARMS, "a"), [LoggedEvent("a", 1.0), LoggedEvent("z", 1.0)])
    with pytest.raises(ExperimentInputError, match="no events"):
        replay(Always(ARMS, "a"), [])
    with pytest.raises(ExperimentInputError, match="1 of 2 events have a context"):
        EventLog.from_events([LoggedEvent("a", 1.0, {"x": 1}), LoggedEvent("b", 1.0)])
    with pytest.raises(ExperimentInputError, match=r"propensity .* is not in \(0, 1\]"):
        EventLog.from_events([LoggedEvent("a", 1.0, propensity=0.0)])
    with pytest.raises(ExperimentInputError, match="reward in row 1 must be a finite"):
        EventLog.from_events([LoggedEvent("a", float("nan"))])
    with pytest.raises(ExperimentInputError, match="confidence"):
        replay(Always(ARMS, "a"), [LoggedEvent("a", 1.0)], confidence=1.0)


def rows() -> list[dict[str, Any]]:
    return [
        {"arm": arm, "reward": float(i % 3 == 0), "propensity": 0.5, "age": i, "seg": "xy"[i % 2]}
        for i, arm in enumerate(["1", "2"] * 10)
    ]


def write(path: Path, data: list[dict[str, Any]]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in data))
    elif path.suffix == ".csv":
        header = list(data[0])
        lines = [",".join(header)] + [",".join(str(row[k]) for k in header) for row in data]
        path.write_text("\n".join(lines) + "\n")
    else:
        pq.write_table(pa.Table.from_pylist(data), path)
    return path


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_logs_load_from_files(tmp_path: Path, suffix: str) -> None:
    log = load_log(write(tmp_path / f"log{suffix}", rows()))
    assert len(log) == 20
    assert log.rewards.tolist() == [float(i % 3 == 0) for i in range(20)]
    assert log.propensities is not None and set(log.propensities.tolist()) == {0.5}
    assert log.contexts is not None and log.contexts[3] == {"age": 3, "seg": "y"}
    # CSV reads arm "1" as the integer 1; it still matches a policy's "1" arm, and vice versa.
    assert replay(Always(["1", "2"], "1"), log).matched == 10
    result = replay(UCB1([1, 2]), load_log(tmp_path / f"log{suffix}", context_columns=[]))
    assert result.total == 20


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("log.txt", "arm,reward\n", "unknown log format '.txt'"),
        ("log.csv", "arm,score\na,1\n", r"no 'reward' column \(columns: \['arm', 'score'\]\)"),
        ("log.csv", "arm,reward\na,yes\n", "reward in row 1 must be a number, found 'yes'"),
        ("log.csv", "arm,reward\na,\n", "reward in row 1 must be a number, found None"),
        ("log.csv", "arm,reward\n,1\n", "row 1 has no 'arm'"),
        ("log.jsonl", '{"arm": "a", "reward": 1}\n{"arm": \n', "cannot read it as JSON"),
        ("log.parquet", "not parquet at all", "cannot read it as PARQUET"),
        ("log.csv", "arm,reward,propensity\na,1,2\n", r"propensity .* not in \(0, 1\]"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, name: str, content: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ExperimentInputError, match=match):
        load_log(path)


def test_missing_file_and_context_columns(tmp_path: Path) -> None:
    with pytest.raises(ExperimentInputError, match="no such log file"):
        load_log(tmp_path / "absent.csv")
    path = write(tmp_path / "log.csv", rows())
    with pytest.raises(ExperimentInputError, match=r"no context columns \['income'\]"):
        load_log(path, context_columns=["income"])
