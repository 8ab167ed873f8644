"""Streaming monitor benchmark: update cost per record and feature, and memory over 10M records.

Run from the repository root::

    .venv/bin/python -m bench.stream                       # 10,000,000 records, ~1 minute
    .venv/bin/python -m bench.stream --quick               # 1,000,000 records
    .venv/bin/python -m bench.stream --write BENCHMARKS.md --out stream-bench.json

The workload is 20 numeric and 5 categorical features (the batch benchmark's shape),
fed as frames of 1,000 records. Three numbers:

1. **Update cost** (``DriftMonitor.update`` with a window too long to close during the
   measurement): encoding each record into its reference bin or category and counting it
   into the window's panes, per record and feature, numeric and categorical apart.
2. **Judging cost**: one window judgement (PSI, KL, JS, chi-square per feature, the BH
   correction, the missing-rate check), and the total per record and feature with a
   sliding window of 10,000 records judged every 1,000, so judgement is included.
3. **Memory** over ``--records`` records (default 10 million): the process's resident
   set sampled every million records (it must stay flat: no record is kept), and the
   monitor's own state (pane count arrays).

Batches are drawn once and cycled, so the timings measure the monitor, not the random
number generator. :func:`measure` returns every number for a caller (M6's table).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import write_marked_section
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import CountWindow, DriftMonitor

__all__ = ["main", "measure", "render_markdown", "write_section"]

MARK_START = "<!-- stream:start -->"
MARK_END = "<!-- stream:end -->"
N_NUMERIC, N_CATEGORICAL = 20, 5
CATEGORIES = [f"cat-{i}" for i in range(8)]
BATCH = 1000
POOL = 16


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _frame(rng: np.random.Generator, n: int, numeric: int, categorical: int) -> dict[str, Any]:
    frame: dict[str, Any] = {f"x{i}": rng.normal(size=n) for i in range(numeric)}
    for i in range(categorical):
        frame[f"c{i}"] = rng.choice(CATEGORIES, size=n).astype(object)
    return frame


def _rss_mib() -> float:
    """Resident set size now (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _time_updates(monitor: DriftMonitor, pool: list[dict[str, Any]], batches: int) -> float:
    start = time.perf_counter()
    for i in range(batches):
        monitor.update(pool[i % len(pool)])
    return time.perf_counter() - start


def measure(
    records: int = 10_000_000,
    *,
    timing_batches: int = 500,
    seed: int = 7,
    progress: Callable[[str], None] = say,
) -> dict[str, Any]:
    """Every number of the benchmark (see the module docstring), as a JSON-able dict."""
    rng = np.random.default_rng(seed)
    reference = _frame(rng, 100_000, N_NUMERIC, N_CATEGORICAL)
    profile = fit_profile(reference)
    numeric_profile = fit_profile({k: v for k, v in reference.items() if k.startswith("x")})
    categorical_profile = fit_profile({k: v for k, v in reference.items() if k.startswith("c")})
    del reference
    pool = [_frame(rng, BATCH, N_NUMERIC, N_CATEGORICAL) for _ in range(POOL)]
    never = CountWindow(10**12)  # a window that does not close: the update alone

    results: dict[str, Any] = {"batch": BATCH, "features": N_NUMERIC + N_CATEGORICAL}
    per_feature: dict[str, float] = {}
    for label, prof, width in (
        ("all", profile, N_NUMERIC + N_CATEGORICAL),
        ("numeric", numeric_profile, N_NUMERIC),
        ("categorical", categorical_profile, N_CATEGORICAL),
    ):
        names = list(prof.features)
        frames = [{k: f[k] for k in names} for f in pool]
        monitor = DriftMonitor(prof, never)
        _time_updates(monitor, frames, 20)  # warm up
        best = min(_time_updates(monitor, frames, timing_batches) for _ in range(3))
        per_feature[label] = best / (timing_batches * BATCH * width) * 1e9
        progress(f"update, {label}: {per_feature[label]:.1f} ns per record and feature")
    results["update_ns_per_record_feature"] = per_feature

    sliding = DriftMonitor(profile, CountWindow(10_000, 1_000))
    _time_updates(sliding, pool, 20)
    judged_before = sliding.windows_judged
    elapsed = min(_time_updates(sliding, pool, timing_batches) for _ in range(3))
    windows = (sliding.windows_judged - judged_before) / 3
    total_ns = elapsed / (timing_batches * BATCH * (N_NUMERIC + N_CATEGORICAL)) * 1e9
    update_s = per_feature["all"] * 1e-9 * BATCH * (N_NUMERIC + N_CATEGORICAL)
    per_run = windows  # one window per batch: the slide is the batch size
    judge_ms = (elapsed - timing_batches * update_s) / per_run * 1e3 if per_run else float("nan")
    results["sliding_10000_by_1000"] = {
        "ns_per_record_feature": total_ns,
        "windows_per_batch": windows / timing_batches,
        "judge_ms_per_window": judge_ms,
    }
    progress(f"sliding 10,000 by 1,000: {total_ns:.1f} ns per record and feature, judging included")

    gc.collect()
    monitor = DriftMonitor(profile, CountWindow(100_000, 10_000))
    samples: list[dict[str, float]] = [{"records": 0, "rss_mib": _rss_mib()}]
    start = time.perf_counter()
    done = 0
    step = max(BATCH, records // 10)
    while done < records:
        monitor.update(pool[(done // BATCH) % POOL])
        done += BATCH
        if done % step == 0 or done >= records:
            samples.append({"records": done, "rss_mib": _rss_mib()})
            progress(f"{done:,} records, RSS {samples[-1]['rss_mib']:.1f} MiB")
    elapsed = time.perf_counter() - start
    state_bytes = monitor.state_nbytes
    first = samples[1]["rss_mib"] if len(samples) > 1 else samples[0]["rss_mib"]
    results["memory"] = {
        "records": done,
        "seconds": elapsed,
        "records_per_s": done / elapsed,
        "windows_judged": monitor.windows_judged,
        "rss_mib": samples,
        "rss_growth_after_first_sample_mib": samples[-1]["rss_mib"] - first,
        "monitor_state_kib": state_bytes / 1024,
    }
    return results


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    u = results["update_ns_per_record_feature"]
    s = results["sliding_10000_by_1000"]
    m = results["memory"]
    rss = m["rss_mib"]
    lines = [
        MARK_START,
        "## Streaming monitors",
        "",
        f"Produced by `{meta['command']}` on {meta['started']}: {meta['cpus']} CPU cores, "
        f"shared and noisy; Python {meta['python']}, NumPy {meta['numpy']}. "
        f"{results['features']} features ({N_NUMERIC} numeric with 10 reference bins, "
        f"{N_CATEGORICAL} categorical with 8 categories), frames of {results['batch']:,} records.",
        "",
        "| measure | value | goal |",
        "|---|---:|---|",
        f"| update, per record and feature (all features) | {u['all']:.0f} ns | < 2,000 ns |",
        f"| update, numeric features only | {u['numeric']:.0f} ns | |",
        f"| update, categorical features only | {u['categorical']:.0f} ns | |",
        f"| sliding window 10,000 by 1,000, judging included | "
        f"{s['ns_per_record_feature']:.0f} ns | < 2,000 ns |",
        f"| one window judged ({results['features']} features) | "
        f"{s['judge_ms_per_window']:.1f} ms | |",
        f"| throughput over {m['records']:,} records (window 100,000 by 10,000) | "
        f"{m['records_per_s']:,.0f} records/s | |",
        f"| resident memory after {rss[1]['records']:,} / {rss[-1]['records']:,} records | "
        f"{rss[1]['rss_mib']:.1f} / {rss[-1]['rss_mib']:.1f} MiB | flat |",
        f"| monitor state (pane counts) | {m['monitor_state_kib']:.0f} KiB | bounded |",
        "",
        "The update encodes each value into its reference bin (`np.searchsorted`) or category "
        "(one dictionary lookup) and adds the batch's codes to the open pane with one "
        "`np.bincount`; no record is kept, so memory does not grow with the stream.",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    write_marked_section(path, section, MARK_START, MARK_END)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=None, help="records for the memory run")
    parser.add_argument("--quick", action="store_true", help="1,000,000 records")
    parser.add_argument("--timing-batches", type=int, default=500)
    parser.add_argument("--write", type=Path, help="update this Markdown file's stream section")
    parser.add_argument("--out", type=Path, help="write every number as JSON")
    args = parser.parse_args(argv)
    records = args.records or (1_000_000 if args.quick else 10_000_000)
    command = "python -m bench.stream " + " ".join(argv if argv is not None else sys.argv[1:])
    results = measure(records, timing_batches=args.timing_batches)
    results["meta"] = {
        "command": command.strip(),
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    section = render_markdown(results)
    print(section)
    if args.write:
        write_section(args.write, section)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
