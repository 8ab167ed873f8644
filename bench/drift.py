"""Batch drift benchmark: mlgate's ``compare()`` beside Evidently's ``DataDriftPreset``.

Run from the repository root::

    .venv/bin/python -m bench.drift --write BENCHMARKS.md   # the full run, about 9 minutes
    .venv/bin/python -m bench.drift --quick                 # 100,000 rows, about 2 minutes
    .venv/bin/python -m bench.drift --skip-evidently        # mlgate alone, no venv, no pip

The data (``bench/_drift_data.py``: 20 numeric and 5 categorical features, 9 of them
drifted) is generated with a seeded NumPy generator and written once to Parquet under
``bench/out/drift/``. Both tools read the same files, each in a child process of its own
(``bench/_drift_child.py``) started with its own interpreter: mlgate's venv, and Evidently's
in ``bench/out/evidently-venv`` (created on the first run). The child times its phases
(import, reading Parquet, the drift computation); the parent adds the whole process's wall
time, CPU time and peak RSS from ``wait4``. Then:

1. **speed** at every ``--rows`` size, one child per tool;
2. **verdicts** per feature at the largest size, against the truth the data was built with;
3. **agreement** of the statistics both tools compute (``bench/_drift_agree.py`` says which
   and how definitions are matched), with Evidently forced to each test through its
   ``ValueDrift`` metric at ``--agree-rows``;
4. **false alarms** on drift-free data: the current windows drawn from the reference's
   distributions, ``--null-seeds`` of them for mlgate and ``--evidently-null-seeds`` for
   Evidently, at the defaults of each;
5. **streaming**: a ``DriftMonitor`` on a profile of the reference, fed ``--stream-records``
   records in batches of ``--stream-batch`` (slices of the current window, cycled): cost
   per record and feature, and RSS over the stream.

The machine is shared: compare the ratios of one run, not absolute times.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._drift_agree import agreement_rows, forced_methods, preset_rows
from bench._drift_data import FEATURES, categorical_names, numeric_names, write_window
from bench._drift_render import MARK_END, MARK_START, render_markdown
from bench._report import publish, write_marked_section

__all__ = ["MARK_END", "MARK_START", "main", "render_markdown", "run", "write_section"]

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_drift_child.py"
DEFAULT_DATA_DIR = HERE / "out" / "drift"
DEFAULT_EVIDENTLY_VENV = HERE / "out" / "evidently-venv"
# pandas 3 removed pandas.core.dtypes.common.infer_dtype_from_object, which Evidently 0.7.23
# imports at start-up, and Evidently does not bound pandas: pin it below 3.
EVIDENTLY_PACKAGES = ("evidently", "pandas<3")
EVIDENTLY_FALLBACK = ("evidently>=0.7,<0.8", "pandas<3")  # if the newest has another API
EVIDENTLY_PROBE = (
    "from evidently import Report, Dataset, DataDefinition; "
    "from evidently.presets import DataDriftPreset; from evidently.metrics import ValueDrift"
)
REFERENCE_SEED, CURRENT_SEED, NULL_SEED = 1, 2, 101
FULL_ROWS = (1_000_000, 100_000)
QUICK_ROWS = (100_000,)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- data ----------------------------------------------------------------------------------


def data_tag() -> str:
    """A short fingerprint of the feature list: cached files are rebuilt when it changes."""
    spec = "|".join(f"{f.name}:{f.description}:{f.missing}" for f in FEATURES)
    return hashlib.sha256(spec.encode()).hexdigest()[:8]


def window(data_dir: Path, role: str, rows: int, seed: int) -> Path:
    """The Parquet file of one window, generated unless it is already there."""
    path = data_dir / f"{role}-{rows}-s{seed}-{data_tag()}.parquet"
    if not path.exists():
        started = time.perf_counter()
        write_window(path, rows, seed, current=role != "reference", null=role == "null")
        say(f"  wrote {path.name} ({time.perf_counter() - started:.1f} s)")
    return path


# -- Evidently's venv ----------------------------------------------------------------------


def _pip(python: Path, packages: Sequence[str]) -> subprocess.CompletedProcess[str]:
    say(f"  pip install {' '.join(shlex.quote(p) for p in packages)}")
    return subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        + list(packages),
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _probe(python: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    return subprocess.run(
        [str(python), "-I", "-c", EVIDENTLY_PROBE],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


_VERSIONS_PROBE = (
    "import importlib.metadata as m, json, sys; print(json.dumps({'python': "
    "sys.version.split()[0], **{p: m.version(p) for p in sys.argv[1:]}}))"
)


def versions(python: Path, packages: Sequence[str]) -> dict[str, str]:
    """Versions of ``packages`` as ``python`` sees them (asked apart from the timed runs)."""
    done = subprocess.run(
        [str(python), "-I", "-c", _VERSIONS_PROBE, *packages],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise SystemExit(f"error: cannot read package versions from {python}: {done.stderr[-300:]}")
    found: dict[str, str] = json.loads(done.stdout)
    return found


def ensure_evidently(venv: Path) -> Path:
    """The Evidently venv's interpreter, with Evidently's 0.7 API importable."""
    python = venv / "bin" / "python"
    if python.exists() and _probe(python).returncode == 0:
        return python
    if not python.exists():
        say(f"creating the Evidently venv at {venv} (first run only, a minute or two)")
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SystemExit(f"error: cannot create the Evidently venv at {venv}: {exc}") from exc
    for packages in (EVIDENTLY_PACKAGES, EVIDENTLY_FALLBACK):
        done = _pip(python, packages)
        if done.returncode != 0:
            raise SystemExit(
                f"error: pip could not install {' '.join(packages)} into {venv}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}\n"
                "run with --skip-evidently to measure mlgate alone"
            )
        probe = _probe(python)
        if probe.returncode == 0:
            return python
        say(f"  that Evidently does not have the 0.7 API: {probe.stderr.strip()[-300:]}")
    raise SystemExit(
        f"error: no Evidently with the 0.7 API (Report, Dataset, DataDefinition, "
        f"DataDriftPreset, ValueDrift) could be installed into {venv}; delete it and retry, "
        "or run with --skip-evidently"
    )


# -- children --------------------------------------------------------------------------------


def run_child(
    python: Path, job: dict[str, Any], scratch: Path, *, check: bool = True
) -> dict[str, Any]:
    """Run one job in its own process; its result plus the process's wall, CPU and RSS.

    A failed child stops the benchmark, or with ``check=False`` comes back as
    ``{"error": the tail of its output}``.
    """
    name = f"{job['tool']}-{job['runs'][0]['label']}"
    job_file, result_file, log_file = (scratch / f"{name}.{ext}" for ext in ("job", "json", "log"))
    job = {**job, "result": str(result_file), "numeric": numeric_names()}
    job["categorical"] = categorical_names()
    job_file.write_text(json.dumps(job), encoding="utf-8")
    env = {**os.environ, "DO_NOT_TRACK": "1"}
    with log_file.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(python), "-I", str(CHILD), str(job_file)], stdout=log, stderr=log, env=env
        )
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not result_file.exists():
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-2000:]
        if not check:
            return {"error": f"exit status {proc.returncode}: {tail}"}
        raise SystemExit(f"error: the {job['tool']} child failed ({proc.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    phases = result["phases"]
    result["process"] = {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "user_s": usage.ru_utime,
        "system_s": usage.ru_stime,
        "peak_rss_bytes": usage.ru_maxrss * 1024.0,
        "startup_s": wall - sum(p["wall_s"] for p in phases.values()),
        "loadavg_after": os.getloadavg()[0],
    }
    return result


def _speed_summary(result: dict[str, Any], label: str) -> dict[str, Any]:
    phases = result["phases"]
    return {
        **result["process"],
        "import_s": phases["import"]["wall_s"],
        "import_cpu_s": phases["import"]["cpu_s"],
        "import_rss_bytes": phases["import"]["peak_rss_bytes"],
        "read_s": phases[f"{label}.read"]["wall_s"],
        "read_cpu_s": phases[f"{label}.read"]["cpu_s"],
        "compute_s": phases[f"{label}.compute"]["wall_s"],
        "compute_cpu_s": phases[f"{label}.compute"]["cpu_s"],
    }


# -- the run ---------------------------------------------------------------------------------


def _flagged(report: dict[str, Any]) -> list[str]:
    return [name for name, f in report["features"].items() if f["drifted"]]


def _false_alarm_entry(seed: int, flagged: list[str], dataset: bool) -> dict[str, Any]:
    return {
        "seed": seed,
        "flagged": flagged,
        "share": len(flagged) / len(FEATURES),
        "dataset_drift": dataset,
    }


@dataclass(frozen=True)
class _Bench:
    """What every step of a run needs: options, interpreters, data files, scratch folder."""

    args: argparse.Namespace
    ours: Path
    evidently: Path | None
    files: dict[int, tuple[Path, Path]]  # rows -> (reference, current)
    nulls: list[Path]
    scratch: Path

    def child(self, tool: str, runs: list[dict[str, Any]], check: bool = True) -> dict[str, Any]:
        python = self.ours if tool == "mlgate" else self.evidently
        assert python is not None
        return run_child(python, {"tool": tool, "runs": runs}, self.scratch, check=check)


def _speed(bench: _Bench, results: dict[str, Any]) -> tuple[dict[int, Any], dict[int, Any]]:
    """Time both tools at every size; keep mlgate's reports and Evidently's preset results."""
    args = bench.args
    reports: dict[int, dict[str, Any]] = {}
    presets: dict[int, dict[str, Any]] = {}
    for n in sorted({*args.rows, args.agree_rows}, reverse=True):
        ref, cur = bench.files[n]
        run = {"label": f"speed{n}", "reference": str(ref), "current": str(cur)}
        label = f"speed{n}"
        say(f"{n:,} rows: mlgate, {args.repeat} run(s)")
        ours = _timed(bench, "mlgate", run, (ref, cur), args.repeat)
        reports[n] = ours["runs"][0]["report"]
        entry = {"mlgate": _median_summary(ours, label)}
        if bench.evidently is not None:
            say(f"{n:,} rows: Evidently (DataDriftPreset), {args.repeat} run(s)")
            theirs = _timed(bench, "evidently", {**run, "what": "preset"}, (ref, cur), args.repeat)
            presets[n] = theirs["runs"][0]
            entry["evidently"] = _median_summary(theirs, label)
            results["agreement"] += preset_rows(n, reports[n], presets[n])
        if n in args.rows:
            results["speed"][str(n)] = entry
    return reports, presets


def _warm_page_cache(paths: Sequence[Path]) -> None:
    """Read the files once, so that no tool pays for the disk and each finds them cached."""
    for path in paths:
        with path.open("rb") as f:
            while f.read(1 << 24):
                pass


def _timed(
    bench: _Bench, tool: str, run: dict[str, Any], files: Sequence[Path], repeat: int
) -> dict[str, Any]:
    """``repeat`` fresh processes of one tool on the same job; each result keeps its timings.

    The page cache is warmed before every run. The returned result is the first run's (its
    report), with every run's timings under ``"repeats"``.
    """
    results = []
    for _ in range(repeat):
        _warm_page_cache(files)
        results.append(bench.child(tool, [run]))
    return {**results[0], "repeats": results}


def _median_summary(result: dict[str, Any], label: str) -> dict[str, Any]:
    """The timings of the run with the median end-to-end time, and every run's wall time."""
    runs = sorted(result["repeats"], key=lambda r: r["process"]["wall_s"])
    summary = _speed_summary(runs[(len(runs) - 1) // 2], label)
    summary["walls_s"] = [r["process"]["wall_s"] for r in result["repeats"]]
    return summary


def _forced_agreement(bench: _Bench, report: dict[str, Any]) -> list[dict[str, Any]]:
    n = bench.args.agree_rows
    ref, cur = bench.files[n]
    say(f"agreement at {n:,} rows: Evidently forced to ks, psi and jensenshannon")
    run = {
        "label": f"agree{n}",
        "reference": str(ref),
        "current": str(cur),
        "what": "methods",
        "methods": forced_methods(numeric_names(), categorical_names()),
    }
    forced = bench.child("evidently", [run])["runs"][0]["values"]
    return agreement_rows(n, ref, cur, report, forced)


def _false_alarms(bench: _Bench) -> dict[str, Any]:
    args = bench.args
    reference = bench.files[args.null_rows][0]
    runs = [
        {"label": f"null{i}", "reference": str(reference), "current": str(path)}
        for i, path in enumerate(bench.nulls)
    ]
    out: dict[str, Any] = {"rows": args.null_rows, "mlgate": [], "evidently": []}
    if runs:
        say(f"false alarms: mlgate, {len(runs)} drift-free windows")
        for i, r in enumerate(bench.child("mlgate", runs)["runs"]):
            report = r["report"]
            out["mlgate"].append(
                _false_alarm_entry(NULL_SEED + i, _flagged(report), bool(report["drifted"]))
            )
    k = min(args.evidently_null_seeds, len(runs))
    if bench.evidently is not None and k:
        say(f"false alarms: Evidently, {k} drift-free window(s)")
        theirs = bench.child("evidently", [{**r, "what": "preset"} for r in runs[:k]])
        for i, r in enumerate(theirs["runs"]):
            flagged = [name for name, c in r["columns"].items() if c["drifted"]]
            dataset = bool(r["dataset"]["share"] >= 0.5)  # the preset's drift_share
            out["evidently"].append(_false_alarm_entry(NULL_SEED + i, flagged, dataset))
    return out


def _streaming(bench: _Bench) -> dict[str, Any] | None:
    args = bench.args
    if args.stream_records <= 0:
        return None
    if importlib.util.find_spec("mlgate.monitoring.stream") is None:
        return {"error": "mlgate.monitoring.stream is not there: streaming not measured"}
    ref, cur = bench.files[args.agree_rows]
    say(f"streaming: {args.stream_records:,} records in batches of {args.stream_batch:,}")
    run = {
        "label": "stream",
        "what": "stream",
        "reference": str(ref),
        "current": str(cur),
        "records": args.stream_records,
        "batch": args.stream_batch,
        "window": args.stream_window,
    }
    result = bench.child("mlgate", [run], check=False)
    if "error" in result:
        say(f"  the streaming run failed: {result['error'][-500:]}")
        return result
    return {**result["runs"][0], "rows": args.agree_rows, "process": result["process"]}


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    started = time.perf_counter()
    meta: dict[str, Any] = {
        "command": command,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "platform": platform.platform(terse=True),
        "rows": args.rows,
        "agree_rows": args.agree_rows,
        "null_rows": args.null_rows,
        "null_seeds": args.null_seeds,
        "evidently_null_seeds": 0 if args.skip_evidently else args.evidently_null_seeds,
        "stream_records": args.stream_records,
        "repeat": args.repeat,
        "features": len(FEATURES),
        "data_tag": data_tag(),
    }
    evidently = None if args.skip_evidently else ensure_evidently(args.evidently_venv)
    ours = Path(sys.executable)
    meta["mlgate_versions"] = versions(ours, ("mlgate", "numpy", "scipy", "pyarrow"))
    if evidently is not None:
        meta["evidently_versions"] = versions(
            evidently, ("evidently", "pandas", "scikit-learn", "numpy", "scipy", "pyarrow")
        )
    say(f"data in {args.data_dir}")
    sizes = sorted({*args.rows, args.agree_rows, args.null_rows}, reverse=True)
    files = {
        n: (
            window(args.data_dir, "reference", n, REFERENCE_SEED),
            window(args.data_dir, "current", n, CURRENT_SEED),
        )
        for n in sizes
    }
    nulls = [
        window(args.data_dir, "null", args.null_rows, NULL_SEED + i) for i in range(args.null_seeds)
    ]
    results: dict[str, Any] = {
        "meta": meta,
        "features": [
            {"name": f.name, "kind": f.kind, "description": f.description, "drifted": f.drifted}
            for f in FEATURES
        ],
        "speed": {},
        "agreement": [],
    }
    with tempfile.TemporaryDirectory(prefix="mlgate-drift-bench-") as tmp:
        bench = _Bench(args, ours, evidently, files, nulls, Path(tmp))
        reports, presets = _speed(bench, results)
        top = max(args.rows)
        results["verdicts"] = {"rows": top, "mlgate": reports[top], "evidently": presets.get(top)}
        if evidently is not None:
            results["agreement"] += _forced_agreement(bench, reports[args.agree_rows])
        results["false_alarms"] = _false_alarms(bench)
        results["streaming"] = _streaming(bench)
    meta["loadavg_end"] = os.getloadavg()
    meta["seconds"] = time.perf_counter() - started
    return results


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the drift markers of ``path``; other sections are kept."""
    write_marked_section(path, section, MARK_START, MARK_END)


# -- command line ------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(part.replace("_", "")) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or min(values) < 100:
        raise argparse.ArgumentTypeError(f"row counts must be at least 100, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.drift",
        description="Batch drift: mlgate's compare() beside Evidently's DataDriftPreset.",
    )
    p.add_argument("--quick", action="store_true", help="100,000 rows, 2 drift-free windows")
    p.add_argument("--rows", type=_int_list, help="window sizes to time (default 1000000,100000)")
    p.add_argument(
        "--agree-rows", type=int, help="rows of the forced-test agreement run (default: smallest)"
    )
    p.add_argument(
        "--null-rows", type=int, help="rows of the drift-free windows (default: largest)"
    )
    p.add_argument("--null-seeds", type=int, help="drift-free windows for mlgate (default 3)")
    p.add_argument(
        "--evidently-null-seeds",
        type=int,
        default=1,
        help="how many of them Evidently judges too (default 1; each costs as much as a timing)",
    )
    p.add_argument(
        "--stream-records",
        type=int,
        help="records through the streaming monitor (default 10,000,000; 0 to skip)",
    )
    p.add_argument("--stream-batch", type=int, default=1_000, help="records per update (1,000)")
    p.add_argument(
        "--stream-window", type=int, default=100_000, help="tumbling count window (100,000)"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="timed runs per tool and size, each a fresh process; the median is reported (3)",
    )
    p.add_argument("--skip-evidently", action="store_true", help="measure mlgate alone")
    p.add_argument("--evidently-venv", type=Path, default=DEFAULT_EVIDENTLY_VENV)
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--write", type=Path, help="replace the drift section of this Markdown file")
    p.add_argument("--out", type=Path, help="every number as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    args.rows = args.rows or list(QUICK_ROWS if args.quick else FULL_ROWS)
    args.agree_rows = args.agree_rows or min(args.rows)
    args.null_rows = args.null_rows or max(args.rows)
    args.null_seeds = 2 if args.null_seeds is None and args.quick else args.null_seeds
    args.null_seeds = 3 if args.null_seeds is None else args.null_seeds
    if args.stream_records is None:
        args.stream_records = 1_000_000 if args.quick else 10_000_000
    command = shlex.join([".venv/bin/python", "-m", "bench.drift", *arguments])
    results = run(args, command)
    section = render_markdown(results)
    publish("drift", section, results, out=args.out, write=args.write, write_section=write_section)
    return results


if __name__ == "__main__":
    main()
