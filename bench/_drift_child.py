"""One tool's side of the drift benchmark, in a process of its own (run as a script).

Usage: ``PYTHON bench/_drift_child.py JOB.json``. The job names the tool (``mlgate`` or
``evidently``), the runs (reference and current Parquet files, what to compute) and where
to write the result. ``bench/drift.py`` starts it with mlgate's interpreter or with the
Evidently venv's, so the two tools never share imports or memory.

Only the standard library is imported before the job says which tool to load, so the
``import`` phase measures the tool itself. Each phase records wall time and CPU time
(user + system, from ``getrusage`` of this process) and the peak RSS so far; the parent
adds the whole process's wall time, CPU time and peak RSS from ``wait4``.

The file must stay importable by Evidently's interpreter: nothing from mlgate or bench at
module level, and no syntax newer than Python 3.11.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Phases:
    """Wall time, CPU time and peak RSS of named phases of this process."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, float]] = {}

    @staticmethod
    def _now() -> tuple[float, float]:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return time.perf_counter(), usage.ru_utime + usage.ru_stime

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        wall0, cpu0 = self._now()
        yield
        wall1, cpu1 = self._now()
        self.records[name] = {
            "wall_s": wall1 - wall0,
            "cpu_s": cpu1 - cpu0,
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0,
        }


# -- mlgate ------------------------------------------------------------------------------


def run_mlgate(job: dict[str, Any], phases: Phases) -> list[dict[str, Any]]:
    with phases("import"):
        from mlgate.monitoring.drift import compare
        from mlgate.monitoring.tabular import read_frame

    out = []
    for run in job["runs"]:
        label = run["label"]
        with phases(f"{label}.read"):
            reference = read_frame(run["reference"])
            current = read_frame(run["current"])
        if run.get("what") == "stream":
            out.append({"label": label, **_stream(run, reference, current, phases)})
            continue
        with phases(f"{label}.compute"):
            report = compare(reference, current).to_json()
        del reference, current
        out.append({"label": label, "report": report})
    return out


def _rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _stream(
    run: dict[str, Any], reference: dict[str, Any], current: dict[str, Any], phases: Phases
) -> dict[str, Any]:
    """Feed ``records`` records, ``batch`` at a time, to a DriftMonitor on count windows.

    The batches are slices (views) of the current window, taken in turn and cycled, so
    the stream costs no generation and holds no memory of its own.
    """
    from mlgate.monitoring.profile import fit_profile
    from mlgate.monitoring.stream import CountWindow, DriftMonitor

    label, records, size = run["label"], run["records"], run["batch"]
    with phases(f"{label}.fit"):
        profile = fit_profile(reference)
    del reference
    n = len(next(iter(current.values())))
    batches = [
        {k: v[i : i + size] for k, v in current.items()} for i in range(0, n - size + 1, size)
    ]
    monitor = DriftMonitor(profile, CountWindow(run["window"]))
    alarms = [a.feature for a in monitor.update(batches[0])]
    rss = [(size, _rss_bytes())]
    every = max(1, 1_000_000 // size)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0, wall0 = usage.ru_utime + usage.ru_stime, time.perf_counter()
    for i in range(1, records // size):
        alarms += [a.feature for a in monitor.update(batches[i % len(batches)])]
        if (i + 1) % every == 0:
            rss.append(((i + 1) * size, _rss_bytes()))
    wall = time.perf_counter() - wall0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    timed = (records // size - 1) * size
    return {
        "records": records // size * size,
        "timed_records": timed,
        "batch": size,
        "window": run["window"],
        "features": len(monitor.features),
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime - cpu0,
        "windows_judged": monitor.windows_judged,
        "alarms": alarms,
        "rss": rss,
    }


# -- Evidently ---------------------------------------------------------------------------

_P_VALUE_MARK = "p_value"  # Evidently's display names of p-value tests end in "p_value"


def _evidently_dataset(path: str, numeric: list[str], categorical: list[str]) -> Any:
    import pandas as pd  # type: ignore[import-untyped, unused-ignore]
    from evidently import DataDefinition, Dataset  # type: ignore[import-not-found, unused-ignore]

    frame = pd.read_parquet(path)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    return Dataset.from_pandas(frame, data_definition=definition)


def _preset_result(metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Per column: the method Evidently's preset chose, its threshold, value and verdict."""
    columns: dict[str, Any] = {}
    dataset: dict[str, Any] = {}
    for metric in metrics:
        config, value = metric["config"], metric["value"]
        if config["type"].endswith("DriftedColumnsCount"):
            dataset = {"count": value["count"], "share": value["share"]}
        elif config["type"].endswith("ValueDrift"):
            method, threshold = config["method"], config["threshold"]
            is_p = method.endswith(_P_VALUE_MARK)
            drifted = value <= threshold if is_p else value >= threshold
            columns[config["column"]] = {
                "method": method,
                "threshold": threshold,
                "value": value,
                "drifted": bool(drifted),
            }
    return {"columns": columns, "dataset": dataset}


def run_evidently(job: dict[str, Any], phases: Phases) -> list[dict[str, Any]]:
    os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage reporting from the benchmark
    with phases("import"):
        from evidently import Report  # type: ignore[import-not-found, unused-ignore]
        from evidently.metrics import ValueDrift  # type: ignore[import-not-found, unused-ignore]
        from evidently.presets import (  # type: ignore[import-not-found, unused-ignore]
            DataDriftPreset,
        )

    numeric, categorical = job["numeric"], job["categorical"]
    out = []
    for run in job["runs"]:
        label = run["label"]
        with phases(f"{label}.read"):
            reference = _evidently_dataset(run["reference"], numeric, categorical)
            current = _evidently_dataset(run["current"], numeric, categorical)
        with phases(f"{label}.compute"):
            if run["what"] == "preset":
                snapshot = Report([DataDriftPreset()]).run(current, reference)
                result = _preset_result(snapshot.dict()["metrics"])
            else:  # "methods": chosen tests per column, ValueDrift being the preset's metric
                pairs = [(column, method) for column, method in run["methods"]]
                report = Report([ValueDrift(column=c, method=m) for c, m in pairs])
                metrics = report.run(current, reference).dict()["metrics"]
                values = []
                for (column, method), metric in zip(pairs, metrics, strict=True):
                    if metric["config"]["column"] != column:
                        raise RuntimeError(f"metric order changed: {metric['config']}")
                    values.append(
                        {
                            "column": column,
                            "method": method,
                            "display": metric["config"]["method"],
                            "value": metric["value"],
                        }
                    )
                result = {"values": values}
        del reference, current
        out.append({"label": label, **result})
    return out


def _plain(value: Any) -> Any:
    """numpy scalars in a result (json cannot write them) as Python numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    phases = Phases()
    runner = run_mlgate if job["tool"] == "mlgate" else run_evidently
    runs = runner(job, phases)
    result = {
        "tool": job["tool"],
        "python": sys.version.split()[0],
        "phases": phases.records,
        "runs": runs,
    }
    tmp = job["result"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(result, f, default=_plain)
    os.replace(tmp, job["result"])


if __name__ == "__main__":
    main(sys.argv[1])
