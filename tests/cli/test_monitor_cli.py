"""``mlgate monitor`` end to end: the real executable on a real store and prediction log."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
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


def _coded(path: Path, n: int, codes: list[int], seed: int) -> None:
    """f0 and an integer column ``code`` drawn from ``codes``."""
    rng = np.random.default_rng(seed)
    rows = ["f0,code"] + [f"{float(rng.normal())!r},{rng.choice(codes)}" for _ in range(n)]
    path.write_text("\n".join(rows) + "\n")


def test_integer_columns_can_be_declared_categorical(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "outputs.csv").write_text("label\n" + "\n".join(str(i % 3) for i in range(300)))
    _coded(tmp_path / "ref.csv", 3000, [0, 1, 2], seed=0)
    fitted = cli.json(
        "monitor", "iris", "--fit-profile", tmp_path / "ref.csv",
        "--fit-output-profile", tmp_path / "outputs.csv",
        "--categorical", "label", "--categorical", "code",
    )  # fmt: skip
    assert list(fitted["profiles"].values()) == [
        {"f0": "numeric", "code": "categorical"},
        {"label": "categorical"},
    ]
    unknown = cli.run(
        "monitor", "iris", "--fit-profile", tmp_path / "ref.csv", "--categorical", "x"
    )
    assert_one_error_line(unknown, "--categorical", "'x'")
    (cli.home / "profiles" / "iris.outputs.json").unlink()  # inputs only from here on
    _coded(tmp_path / "stream.csv", 1000, [0, 1, 2, 2, 2, 2], seed=1)
    result = cli.ok(
        "monitor", "iris", "--source", f"file:{tmp_path / 'stream.csv'}", "--window", "500",
        "--json",
    )  # fmt: skip
    lines = [json.loads(line) for line in result.out.splitlines()]
    drifted = {line["alarm"]["feature"] for line in lines if "alarm" in line}
    assert drifted == {"code"} and lines[-1]["summary"]["records"] == 1000


def test_incompatible_detector_and_loss_are_refused(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv")
    for detector in ("cusum", "hddm_a"):
        refused = cli.run(
            "monitor", "iris", "--labels", "--detector", detector, "--loss", "squared"
        )
        assert_one_error_line(refused, detector, "[0, 1]", "--detector adwin")


def test_user_errors_are_one_line_not_internal_errors(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    (cli.home / "profiles").write_text("a file where the profiles folder should be")
    assert_one_error_line(
        cli.run("monitor", "iris", "--fit-profile", tmp_path / "ref.csv"), "cannot save"
    )
    (cli.home / "profiles").unlink()
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv")
    bad_url = cli.run("monitor", "iris", "--source", "redis://localhost:notaport/0?stream=s")
    assert_one_error_line(bad_url, "redis://HOST:PORT/DB")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        in_use = cli.run("monitor", "iris", "--once", "--metrics-port", str(port))
    assert_one_error_line(in_use, f"port {port}", "--metrics-port")


def test_alarms_the_ledger_refuses_fail_the_run_at_the_end(cli: Cli, tmp_path: Path) -> None:
    _reference(tmp_path / "ref.csv")
    cli.ok("monitor", "iris", "--fit-profile", tmp_path / "ref.csv")
    _log(cli.settings, n_requests=200, shift_from=100)
    with sqlite3.connect(cli.home / "mlgate.db") as db:
        db.execute(
            "CREATE TRIGGER offline BEFORE INSERT ON ledger_entries "
            "BEGIN SELECT RAISE(ABORT, 'the ledger is offline'); END"
        )
    result = cli.run(
        "monitor", "iris", "--window", "500", "--once", "--json", "--columns", "x=f0,f1,f2,f3"
    )
    assert result.code == 1 and "Traceback" not in result.stderr, str(result)
    summary = json.loads(result.out.splitlines()[-1])["summary"]
    assert summary["alarms"] == 2 and summary["ledger_entries"] == []
    assert summary["unledgered_alarms"] == 2 and summary["sink_failures"] >= 2
    errors = result.stderr.strip().splitlines()
    assert errors[-1].startswith("error: 2 alarms could not be written to the ledger")
    assert all("the ledger is offline" in line for line in errors[:-1]), result.stderr


def test_help_says_positions_are_not_kept(cli: Cli) -> None:
    text = " ".join(cli.ok("monitor", "--help").out.split())
    assert "not kept across restarts" in text and "--tail" in text


def test_the_stream_package_exports_what_the_cli_uses() -> None:
    from mlgate.monitoring.stream import DriftKind, windows

    assert DriftKind.__args__ == ("data_drift", "prediction_drift")  # type: ignore[attr-defined]
    assert set(windows.__all__) == {"CountWindow", "TimeWindow", "WindowSpec"}
