"""Retraining-loop benchmark: drift to detection, gate and promotion; worse and better
candidates (issue 6, "Measured").

    .venv/bin/python -m bench.loop --write BENCHMARKS.md   # 50 + 10 + 50 + 50 scenarios
    .venv/bin/python -m bench.loop --quick                 # 10 + 2 + 10 + 10

Every scenario is one seed of :class:`mlgate.loop.synthetic.SyntheticWorld` on a fresh
SQLite workspace with a champion trained on the world before the drift, and the real
:class:`~mlgate.loop.runner.LoopRunner` (training in its child process, the real gates,
the real canary). Four parts, each in its own module:

* ``bench/_loop_drift.py``: drift at a seeded record; records and seconds to the first
  alarm, the trigger, the passed gate (no server: the records are fed by hand);
* ``bench/_loop_live.py``: the same story for the first ``--live`` seeds on a real server
  with live traffic, through the canary to the promotion;
* ``bench/_loop_candidates.py``: worse candidates of five kinds (goal: none promoted) and
  genuinely better ones (goal: at least 95% promoted).

Scenarios run one after the other (the machines are shared); the section written into
BENCHMARKS.md carries the command, the machine and the run time.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _loop_render as render
from bench._loop_candidates import WORSE_KINDS, better_scenario, worse_scenario
from bench._loop_drift import drift_scenario
from bench._loop_live import live_scenario
from bench._loop_setup import CHUNK, loop_config, say
from bench._report import publish, write_marked_section

MARK_START = "<!-- loop:start -->"
MARK_END = "<!-- loop:end -->"
SEEDS = {"drift": 1000, "worse": 2000, "better": 3000}  # live uses the first drift seeds


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.loop", description=__doc__)
    p.add_argument("--drift", type=int, default=50, help="drift scenarios (no server)")
    p.add_argument("--live", type=int, default=10, help="drift scenarios on a live server")
    p.add_argument("--worse", type=int, default=50, help="worse candidates, kinds in turn")
    p.add_argument("--better", type=int, default=50, help="genuinely better candidates")
    p.add_argument("--budget", type=int, default=3000, help="records after the onset, at most")
    p.add_argument("--live-limit-s", type=float, default=120.0, help="seconds per live scenario")
    p.add_argument("--quick", action="store_true", help="10 + 2 + 10 + 10 scenarios")
    p.add_argument("--write", type=Path, help="update this file's loop section")
    p.add_argument("--out", type=Path, help="write raw results as JSON here")
    p.add_argument("--from-json", type=Path, help="render a saved --out file; measure nothing")
    return p


def write_section(path: Path, section: str) -> None:
    write_marked_section(path, section, MARK_START, MARK_END)


def _each(
    part: str, count: int, run: Callable[[int], dict[str, Any]], show: Callable[[Any], str]
) -> list[dict[str, Any]]:
    results = []
    for i in range(count):
        started = time.perf_counter()
        result = run(i)
        results.append(result)
        say(
            f"{part} {i + 1}/{count} (seed {result['seed']}): {show(result)} "
            f"[{time.perf_counter() - started:.1f} s]"
        )
    return results


def _events(result: dict[str, Any], unit: str) -> str:
    shown = [f"{k} +{v[unit]:,}" for k, v in result["events"].items()]
    return ", ".join(shown) or "nothing"


def measure(args: argparse.Namespace) -> dict[str, Any]:
    kinds = len(WORSE_KINDS)

    def worse(i: int) -> dict[str, Any]:
        kind, of_kind = i % kinds, len(range(i % kinds, args.worse, kinds))
        return worse_scenario(SEEDS["worse"] + i, WORSE_KINDS[kind], i // kinds, of_kind)

    return {
        "since_trigger": loop_config().training.since_trigger,
        "drift": _each(
            "drift",
            args.drift,
            lambda i: drift_scenario(SEEDS["drift"] + i, budget=args.budget),
            lambda r: _events(r, "records") + f"; runs {[x['state'] for x in r['runs']]}",
        ),
        "live": _each(
            "live",
            args.live,
            lambda i: live_scenario(SEEDS["drift"] + i, time_limit_s=args.live_limit_s),
            lambda r: _events(r, "requests") + f"; {r['outcome']}",
        ),
        "worse": _each(
            "worse", args.worse, worse, lambda r: f"{r['kind']}: {r['stopped']} {r['reasons']}"
        ),
        "better": _each(
            "better",
            args.better,
            lambda i: better_scenario(SEEDS["better"] + i),
            lambda r: f"{r['stopped']} {r['reasons']}",
        ),
    }


def render_section(
    results: dict[str, Any], args: argparse.Namespace, command: str, elapsed: float
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        MARK_START,
        "## Retraining loop (issue 6)",
        "",
        f"Produced by `{command}` on {stamp} ({platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs, shared; {elapsed / 60:.1f} min). Each "
        "scenario is one seed of the synthetic world (`mlgate.loop.synthetic`: 6 features; "
        "after the drift two features move and the labelling rule changes) on a fresh SQLite "
        "workspace. Champion: a logistic regression on 2,000 rows of the world before. The "
        "loop file is `tests/loop/conftest.py`'s: drift windows of 200 records, ADWIN on the "
        "champion's errors, `confirm: 1`, no cooldown; training on the newest 600 labelled "
        "records"
        + (
            " stored after the trigger when a drift or performance alarm started the run "
            "(`training.since_trigger`; at least 300)"
            if results.get("since_trigger")
            else " (at least 300)"
        )
        + ", 30% held out, with the built-in LogisticRegression in its child process; "
        "gates: accuracy ≥ 0.7, ≥ 0.02 over the champion, McNemar at α 0.01, signature. "
        "Seconds are wall-clock on this machine (read the medians); records are not.",
        "",
    ]
    if results["drift"]:
        lines += [
            f"### Drift: from the onset to detection and a passed gate ({len(results['drift'])}"
            " scenarios, no server)",
            "",
            f"The world changes at a seeded record in [600, 800). Labelled records go into the "
            f"inbox {CHUNK} per runner step, and only while no run is active or the active run "
            "waits for labelled rows, so the record counts are the data the loop needed, not "
            "what arrived while it trained. The workspace clock moves with the records (50 a "
            "second: the inbox holds labels back 1 s, so the performance monitor sees them one "
            "step late), so a seed gives the same record counts on any machine; the seconds "
            "are wall-clock and include each training. A scenario ends when a run that passed "
            f"its gates is registered and its canary started, or {args.budget:,} records after "
            "the onset.",
            "",
            *render.drift_table(results["drift"], args.budget),
            "",
        ]
    if results["live"]:
        lines += [
            f"### Live traffic: through the canary to the promotion ({len(results['live'])} of "
            "the drift seeds, a real server)",
            "",
            "As `mlgate demo`: a real server in a thread serves OIP v2 on 127.0.0.1, a client "
            "thread sends requests as fast as they are answered and posts each label 40 "
            "requests later; the loop reads the prediction log (`source: prediction_log`), "
            "and the canary (steps 10%, 50%, 100%, judged every 1 s on at least 20 requests "
            "a side, error rate and reward) runs on the same traffic. Requests keep coming "
            "while the loop trains, so request counts depend on this machine's speed. Only a "
            f"subset runs on a server, to keep `make bench` short; limit {args.live_limit_s:.0f}"
            " s a scenario.",
            "",
            *render.live_table(results["live"]),
            "",
        ]
    goals = []
    if results["worse"]:
        table, promoted = render.worse_table(results["worse"])
        lines += [
            f"### Worse candidates ({len(results['worse'])} scenarios; goal: none promoted)",
            "",
            "The world does not change. After 600 clean records, 600 more stream in, "
            f"{CHUNK} per step (and more of the same while a run waits for labelled rows), "
            "and they are bad (label noise, poisoned rows) or the trainer is (shuffled labels, "
            "a dropped or blanked feature: `bench/_loop_trainers.py`). A run starts on the "
            "monitors' alarm, else by hand once the 600 are in (as a schedule would). A run "
            "that passes its gates counts as promoted. The last column compares the candidate "
            "with the champion on 5,000 fresh rows the loop never saw.",
            "",
            *table,
            "",
        ]
        goals.append(
            f"- Goal (issue 6): no worse candidate promoted: {promoted} of "
            f"{len(results['worse'])} passed the gates {render.goal_mark(promoted == 0)}"
        )
    if results["better"]:
        table, promoted = render.better_table(results["better"])
        share = promoted / len(results["better"])
        lines += [
            f"### Better candidates ({len(results['better'])} scenarios; goal: ≥ 95% promoted)",
            "",
            "After 600 clean records of the world before, records of the world after stream "
            f"in, {CHUNK} per step: 700, and more while a run waits for labelled rows. "
            "Promoted here means gates passed, version registered and canary started (the "
            "canary on live traffic is the table above). Better is checked on 5,000 fresh "
            "rows of the new world.",
            "",
            *table,
            "",
        ]
        goals.append(
            f"- Goal (issue 6): at least 95% of genuinely better candidates promoted: "
            f"{promoted} of {len(results['better'])} ({share:.0%}) "
            + render.goal_mark(share >= 0.95)
        )
    lines += [*goals, MARK_END, ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    if args.from_json:
        results: dict[str, Any] = json.loads(args.from_json.read_text(encoding="utf-8"))
        args.budget, args.live_limit_s = results["budget"], results["live_limit_s"]
    else:
        if args.quick:
            args.drift, args.live, args.worse, args.better = 10, 2, 10, 10
        started = time.perf_counter()
        results = measure(args)
        results |= {
            "command": shlex.join([".venv/bin/python", "-m", "bench.loop", *arguments]),
            "elapsed_s": time.perf_counter() - started,
            "budget": args.budget,
            "live_limit_s": args.live_limit_s,
        }
    section = render_section(results, args, results["command"], results["elapsed_s"])
    publish("loop", section, results, out=args.out, write=args.write, write_section=write_section)
    return results


if __name__ == "__main__":
    # The loop logs each quarantine and failed run as a warning; the progress lines say it.
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    main()
