"""Experimentation benchmark: statistics checked against references, peeking, bandit regret.

    .venv/bin/python -m bench.experiments --write BENCHMARKS.md   # a few minutes
    .venv/bin/python -m bench.experiments --quick                 # under a minute

Two parts, each in its own module so it can run alone:

* ``bench/_experiments_stats.py``: the A/B statistics against statsmodels and numerical
  integration on random inputs, and 1,000 simulated A/A experiments with 20 looks each
  (peeking at a fixed-horizon test against the always-valid sequential test);
* ``bench/_experiments_bandits.py``: regret and CPU per decision of mlgate's bandits side
  by side with MABWiser's, in the same run, on the issue's Bernoulli and contextual setups.

The section written into BENCHMARKS.md carries the command that produced it.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _experiments_bandits, _experiments_stats
from bench._report import publish, write_marked_section

MARK_START = "<!-- experiments:start -->"
MARK_END = "<!-- experiments:end -->"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.experiments", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer simulations and rounds")
    p.add_argument("--skip-bandits", action="store_true", help="statistics only")
    p.add_argument("--write", type=Path, help="update this file's experiments section")
    p.add_argument("--out", type=Path, help="write raw results as JSON here")
    return p


def write_section(path: Path, section: str) -> None:
    write_marked_section(path, section, MARK_START, MARK_END)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    command = shlex.join([".venv/bin/python", "-m", "bench.experiments", *arguments])
    started = time.perf_counter()
    stats_text, stats_raw = _experiments_stats.run(args.quick)
    parts = [stats_text]
    results: dict[str, Any] = {"stats": stats_raw}
    if not args.skip_bandits:
        bandit_text, bandit_raw = _experiments_bandits.run(args.quick)
        parts.append(bandit_text)
        results["bandits"] = bandit_raw
    elapsed = time.perf_counter() - started
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = "\n".join(
        [
            MARK_START,
            "## Experiments (A/B statistics, sequential testing, bandits)",
            "",
            f"Produced by `{command}` on {stamp} ({platform.python_version()}, "
            f"{platform.machine()}, {elapsed:.0f} s). Peers run in the same process and "
            "the same run; compare ratios, not absolute times.",
            "",
            *(part.rstrip("\n") + "\n" for part in parts),
            MARK_END,
            "",
        ]
    )
    publish(
        "experiments", section, results, out=args.out, write=args.write, write_section=write_section
    )
    return results


if __name__ == "__main__":
    main()
