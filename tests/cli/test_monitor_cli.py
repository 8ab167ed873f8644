"""``mlgate monitor`` end to end: the real executable on a real store and prediction log."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from mlgate.config import Settings
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.workspace import Workspace
from tests.cli.test_cli import Cli, assert_one_error_line

T0 = 1_700_000_000.0


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(home=tmp_path / "home", store=None, cwd=tmp_path)
    cli.ok("init")
    return cli


def _reference(path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = ["f0,f1,f2,f3,segment"]
    for row, segment in zip(rng.normal(size=(3000, 4)), rng.choice(["a", "b"], 3000), strict=True):
        rows.append(",".join(repr(float(v)) for v in row) + f",{segment}")
    path.write_text("\n".join(rows) + "\n")


def _log(settings: Settings, n_requests: int, shift_from: int) -> None:
    """Requests of 10 rows each; feature f0 shifts from request ``shift_from`` on."""
    rng = np.random.default_rng(1)
    with Workspace.open(settings) as workspace:
        writer = PredictionLogWriter(workspace.store, batch_size=100)
        for i in range(n_requests):
            x = rng.normal(size=(10, 4))
            if i >= shift_from:
                x[:, 0] += 2.0
            writer.record(
                PredictionRecord(
                    request_id=f"r{i}",
                    endpoint="iris",
                    version="3",
                    route="primary",
                    status="ok",
                    shadow=False,
                    inputs={"x": x},
                    outputs={"label": np.zeros(10, dtype=np.int64)},
                    latency_ms=1.0,
                    created_at=T0 + i,
                )
            )
        asyncio.run(writer.close())


def test_fit_then_monitor_the_prediction_log(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    fitted = cli.json("monitor", "iris", "--fit-profile", tmp_path / "ref.csv")
    target = cli.home / "profiles" / "iris.json"
    assert fitted == {
        "profiles": {
            str(target): {
                "f0": "numeric",
                "f1": "numeric",
                "f2": "numeric",
                "f3": "numeric",
                "segment": "categorical",
            }
        }
    }
    _log(cli.settings, n_requests=200, shift_from=100)
    # The reference has a column more than the tensor: name the tensor's columns.
    result = cli.ok(
        "monitor", "iris", "--window", "500", "--once", "--json", "--columns", "x=f0,f1,f2,f3"
    )
    lines = [json.loads(line) for line in result.out.splitlines()]
    alarms = [line["alarm"] for line in lines if "alarm" in line]
    summary = lines[-1]["summary"]
    drift = [a for a in alarms if a["kind"] == "data_drift"]
    assert [(a["feature"], a["window"]["start"]) for a in drift] == [("f0", 1000)]
    assert drift[0]["version"] == "3" and drift[0]["endpoint"] == "iris"
    # "segment" is not in the log: its missing share is a quality alarm, once
    quality = [a for a in alarms if a["kind"] == "quality"]
    assert [a["feature"] for a in quality] == ["segment"]
    assert summary["records"] == 2000 and summary["alarms"] == len(alarms) == 2
    assert summary["stopped"] == "once" and len(summary["ledger_entries"]) == 2
    shown = cli.json("ledger", "show", str(summary["ledger_entries"][0]))
    assert shown["entry"]["kind"] == "monitor.alarm"
    cli.ok("ledger", "verify")


def test_monitor_a_file_with_plain_output(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv", "--categorical", "segment")
    rng = np.random.default_rng(2)
    rows = ["f0,f1,f2,f3,segment"]
    for i in range(1500):
        segment = "c" if i >= 1000 else str(rng.choice(["a", "b"]))
        rows.append(",".join(repr(float(v)) for v in rng.normal(size=4)) + f",{segment}")
    (tmp_path / "stream.csv").write_text("\n".join(rows) + "\n")
    result = cli.ok(
        "monitor", "iris", "--source", f"file:{tmp_path / 'stream.csv'}", "--window", "500",
        "--slide", "250", "--max-records", "1500",
    )  # fmt: skip
    out = result.out
    assert "ALARM data_drift segment: psi" in out
    assert "data_drift window 4 (records 1000-1500)" in out
    assert "monitored 1500 records (0 rejected): 1 alarms" in out


def test_monitor_refuses_clearly(cli: Cli, tmp_path: Path) -> None:
    assert_one_error_line(
        cli.run("monitor", "iris", "--once"), "no reference profile", "--fit-profile"
    )
    _reference(tmp_path / "ref.csv")
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv")
    both = cli.run("monitor", "iris", "--window", "10", "--window-seconds", "5", "--once")
    assert both.code == 2 and "not both" in both.stderr
    unknown = cli.run("monitor", "iris", "--source", "kafka://x", "--once")
    assert unknown.code == 2 and "unknown --source" in unknown.stderr
    bad_slide = cli.run("monitor", "iris", "--window", "10", "--slide", "3", "--once")
    assert bad_slide.code == 2 and "multiple" in bad_slide.stderr


def test_a_version_gets_its_own_profile(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv", "--version", "3")
    assert (cli.home / "profiles" / "iris.v3.json").exists()
    assert not (cli.home / "profiles" / "iris.json").exists()
    _log(cli.settings, n_requests=60, shift_from=1000)
    result = cli.ok(
        "monitor", "iris", "--version", "3", "--window", "200", "--once", "--json",
        "--columns", "x=f0,f1,f2,f3",
    )  # fmt: skip
    summary = json.loads(result.out.splitlines()[-1])["summary"]
    assert summary["records"] == 600 and summary["windows"] == {"data_drift": 3}


def test_the_live_table_shows_each_feature_and_the_alarms() -> None:
    from rich.console import Console

    from mlgate.cli._monitor_view import monitor_table
    from mlgate.monitoring.profile import fit_profile
    from mlgate.monitoring.stream import CountWindow, DriftMonitor, LoopStatus

    rng = np.random.default_rng(0)
    monitor = DriftMonitor(fit_profile({"f0": rng.normal(size=2000)}), CountWindow(500))
    status = LoopStatus(records=500)
    status.recent_alarms.extend(monitor.update({"f0": rng.normal(size=500) + 3}))
    console = Console(record=True, width=160)
    console.print(monitor_table("iris", "predlog", status, [monitor], None))
    text = console.export_text()
    assert "f0" in text and "yes" in text and "ALARM data_drift f0: psi" in text
