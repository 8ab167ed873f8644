"""The drift benchmark's Markdown section, from the results :func:`bench.drift.run` returns.

Every table reads only the results dict (also written by ``--out``), so a stored run can
be rendered again.
"""

from __future__ import annotations

import math
from typing import Any

from bench._drift_agree import GOAL

__all__ = ["MARK_END", "MARK_START", "render_markdown"]

MARK_START = "<!-- drift:start -->"
MARK_END = "<!-- drift:end -->"
SPEED_GOAL = 50.0
FALSE_ALARM_GOAL = 0.05


def _s(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 10 else f"{seconds:.2f} s"


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:,.0f} MB"


def _x(theirs: float, ours: float) -> str:
    return f"{theirs / ours:,.1f}×" if ours > 0 else "—"


def _goal(met: bool) -> str:
    return "✅" if met else "❌"


def _speed_lines(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    with_evidently = all("evidently" in e for e in results["speed"].values())
    for n, entry in results["speed"].items():
        ours, theirs = entry["mlgate"], entry.get("evidently")
        rows = [
            ("End to end (process wall time)", "wall_s", _s),
            ("CPU time of the process (user + system)", "cpu_s", _s),
            ("  interpreter start-up, job file in and result out", "startup_s", _s),
            ("  import", "import_s", _s),
            ("  read both Parquet files", "read_s", _s),
            ("  drift of 25 features (compute + result)", "compute_s", _s),
            ("Drift computation, CPU time", "compute_cpu_s", _s),
            ("Peak RSS", "peak_rss_bytes", _gb),
        ]
        head = f"| {int(n):,} + {int(n):,} rows | mlgate |"
        head += " Evidently | Evidently ÷ mlgate |" if theirs else ""
        lines += ["", head, "|---|---:|" + ("---:|---:|" if theirs else "")]
        for title, key, fmt in rows:
            cells = f"| {title} | {fmt(ours[key])} |"
            if theirs:
                cells += f" {fmt(theirs[key])} | {_x(theirs[key], ours[key])} |"
            lines.append(cells)
        if len(ours.get("walls_s", [])) > 1:
            spread = f"| every run's end-to-end time | {_walls(ours)} |"
            lines.append(spread + (f" {_walls(theirs)} | |" if theirs else ""))
    if with_evidently:
        goals = []
        for n, entry in results["speed"].items():
            ratio = entry["evidently"]["wall_s"] / entry["mlgate"]["wall_s"]
            compute = entry["evidently"]["compute_s"] / entry["mlgate"]["compute_s"]
            goal = (
                f"{int(n):,} rows: {ratio:,.1f}× end to end {_goal(ratio >= SPEED_GOAL)} "
                f"({compute:,.1f}× on the drift computation alone)"
            )
            ours = entry["mlgate"]
            floor = ours["startup_s"] + ours["import_s"]
            allowed = entry["evidently"]["wall_s"] / SPEED_GOAL
            if ratio < SPEED_GOAL and floor >= allowed:
                goal += (
                    f": out of reach at this size, since mlgate's interpreter start-up and "
                    f"imports (NumPy, SciPy, pyarrow) alone take {_s(floor)}, longer than "
                    f"Evidently's time ÷ {SPEED_GOAL:.0f} ({_s(allowed)})"
                )
            goals.append(goal)
        lines += [
            "",
            f"Goal (issue 4): at least {SPEED_GOAL:.0f}× faster than Evidently end to end. "
            + "; ".join(goals)
            + ".",
        ]
    return lines


def _walls(summary: dict[str, Any]) -> str:
    return ", ".join(_s(w) for w in summary.get("walls_s", [summary["wall_s"]]))


def _ours_cell(f: dict[str, Any]) -> str:
    verdict = "**drifted**" if f["drifted"] else "no"
    by, threshold = f["decided_by"], f["threshold"]
    if by in ("ks", "chi2") or (by == f["test"] and not f["drifted"]):
        return f"{verdict} ({by} p={f['p_value_adjusted']:.2g})"
    value = f.get(by)
    if isinstance(value, (int, float)) and threshold is not None:
        sign = "≥" if value >= threshold else "<"
        return f"{verdict} ({by} {value:.3g} {sign} {threshold:.3g})"
    return f"{verdict} ({by})"


def _evidently_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return "—"
    verdict = "**drifted**" if c["drifted"] else "no"
    method = c["method"].replace(" (normed)", "").replace(" distance", "")
    return f"{verdict} ({method} {c['value']:.3g}, threshold {c['threshold']:g})"


def _verdict_lines(results: dict[str, Any]) -> list[str]:
    v = results["verdicts"]
    ours, theirs = v["mlgate"]["features"], (v["evidently"] or {}).get("columns")
    lines = [
        "",
        f"### Verdicts at {v['rows']:,} rows",
        "",
        "Each tool at its defaults. mlgate: KS (numeric) or two-sample chi-square "
        "(categorical), Benjamini-Hochberg across features, and an effect size (PSI, "
        "Wasserstein / std or JS) over its threshold; the cell gives what decided. "
        "Evidently: the test its preset chose for the column and size, and its threshold.",
        "",
        "| Feature | Reference → current | Drifted by design | mlgate | Evidently |",
        "|---|---|:-:|---|---|",
    ]
    right = {"mlgate": 0, "evidently": 0}
    for f in results["features"]:
        name, truth = f["name"], f["drifted"]
        mine = ours[name]
        right["mlgate"] += mine["drifted"] == truth
        theirs_cell = "—"
        if theirs is not None:
            right["evidently"] += theirs[name]["drifted"] == truth
            theirs_cell = _evidently_cell(theirs[name])
        lines.append(
            f"| `{name}` | {f['description']} | {'yes' if truth else 'no'} | "
            f"{_ours_cell(mine)} | {theirs_cell} |"
        )
    total = len(results["features"])
    summary = f"Right verdicts: mlgate {right['mlgate']} of {total}"
    if theirs is not None:
        summary += f", Evidently {right['evidently']} of {total}"
    return [*lines, "", summary + "."]


def _fmt_diff(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.1e}"


def _agreement_lines(results: dict[str, Any]) -> list[str]:
    rows = results["agreement"]
    if not rows:
        return []
    lines = [
        "",
        "### Agreement with Evidently",
        "",
        "The largest absolute difference over the columns where both compute the same "
        f"number; goal (issue 4): {GOAL:g}. Where the definitions differ, mlgate's functions "
        "are fed Evidently's bins and compared on Evidently's definition; the rows marked "
        "*not the same statistic* show how far the reported values are apart, for reading, "
        "not as a goal. `bench/_drift_agree.py` spells out each definition.",
        "",
        "| Statistic | Kind | Rows | Columns | Max abs difference (column) | How compared | Goal |",
        "|---|---|---:|---:|---|---|:-:|",
    ]
    notes: list[str] = []
    for r in rows:
        where = f" (`{r['worst_column']}`)" if r["worst_column"] else ""
        goal = _goal(r["max_abs_diff"] <= GOAL) if r["compared"] and r["columns"] else "—"
        name = r["statistic"] if r["compared"] else f"{r['statistic']}: *not the same statistic*"
        lines.append(
            f"| {name} | {r['kind']} | {r['rows']:,} | {r['columns']} | "
            f"{_fmt_diff(r['max_abs_diff'])}{where} | {r['definition']} | {goal} |"
        )
        if r["left_out"]:
            which = "; ".join(f"`{column}`: {why}" for column, why in r["left_out"].items())
            notes.append(
                f"- {r['statistic']} ({r['kind']}, {r['rows']:,} rows), "
                f"{len(r['left_out'])} column(s) left out: {which}."
            )
    if notes:
        lines += [
            "",
            "Left out, because Evidently and mlgate treat an empty bin differently (Evidently "
            "replaces an empty share with 1e-4, or the smallest share / 1e6; mlgate adds a 0.5 "
            "pseudo-count to every bin), so no input makes the two the same number:",
            "",
            *notes,
        ]
    lines += [
        "",
        "Not compared: the categorical chi-square. Evidently's is the one-sample "
        "goodness-of-fit test that takes the reference's shares as exact; mlgate's is the "
        "two-sample test of homogeneity (issue 4: the one-sample form flags about half of "
        "drift-free columns). At more than 1,000 reference rows Evidently's preset uses "
        "Jensen-Shannon instead, so it does not show in the tables above.",
    ]
    return lines


def _false_alarm_lines(results: dict[str, Any]) -> list[str]:
    fa = results["false_alarms"]
    if not fa["mlgate"]:
        return []
    lines = [
        "",
        f"### False alarms at {fa['rows']:,} rows, no drift",
        "",
        "The current window drawn from the reference's distributions (a fresh seed per "
        "window, same reference). Each tool at its defaults: mlgate's rule above; Evidently's "
        "preset (Wasserstein / std ≥ 0.1 for numeric, Jensen-Shannon ≥ 0.1 for categorical at "
        "this size, the dataset drifted at a share ≥ 0.5).",
        "",
        "| Tool | Windows | Features judged | Flagged | Share of features flagged | "
        "Windows with dataset drift | Goal < 5% |",
        "|---|---:|---:|---:|---:|---:|:-:|",
    ]
    for tool in ("mlgate", "evidently"):
        entries = fa[tool]
        if not entries:
            continue
        judged = len(entries) * len(results["features"])
        flagged = sum(len(e["flagged"]) for e in entries)
        share = flagged / judged
        dataset = sum(e["dataset_drift"] for e in entries)
        goal = _goal(share < FALSE_ALARM_GOAL) if tool == "mlgate" else "—"
        names = sorted({n for e in entries for n in e["flagged"]})
        which = f" ({', '.join(f'`{n}`' for n in names)})" if names else ""
        lines.append(
            f"| {'mlgate' if tool == 'mlgate' else 'Evidently'} | {len(entries)} | {judged} | "
            f"{flagged}{which} | {share:.1%} | {dataset} of {len(entries)} | {goal} |"
        )
    return lines


STREAM_GOAL_US = 2.0
STREAM_FLAT_SHARE = 0.05


def _streaming_lines(results: dict[str, Any]) -> list[str]:
    st = results.get("streaming")
    if st is None:
        return []
    lines = ["", "### Streaming cost (`DriftMonitor`)", ""]
    if "error" in st:
        return [*lines, f"Not measured: {st['error'].strip().splitlines()[-1]}"]
    per_feature_us = 1e6 * st["wall_s"] / (st["timed_records"] * st["features"])
    per_record_us = 1e6 * st["wall_s"] / st["timed_records"]
    first, last = st["rss"][min(1, len(st["rss"]) - 1)], st["rss"][-1]
    growth = last[1] - first[1]
    flat = growth <= STREAM_FLAT_SHARE * first[1]
    alarmed = ", ".join(f"`{name}`" for name in st["alarms"]) or "no feature"
    lines += [
        f"A `DriftMonitor` on a profile fitted from the {st['rows']:,}-row reference, over "
        f"{st['records']:,} records fed in batches of {st['batch']:,} (slices of the "
        f"{st['rows']:,}-row current window, cycled), tumbling count windows of "
        f"{st['window']:,} records: {st['windows_judged']:,} windows judged, alarms "
        f"(edge-triggered: one per feature) for {alarmed}. Time and CPU of the update loop "
        "after the first batch, window judgements included; RSS of the process (`VmRSS`). "
        "`bench/stream.py` splits this cost into updating and judging, on synthetic frames.",
        "",
        "| Records | Features | Wall time | CPU time | µs per record | µs per record per "
        "feature | RSS after the first 1 M | RSS at the end | Growth |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {st['timed_records']:,} | {st['features']} | {_s(st['wall_s'])} | "
        f"{_s(st['cpu_s'])} | {per_record_us:.2f} | {per_feature_us:.3f} | "
        f"{_gb(first[1])} | {_gb(last[1])} | {growth / 1e6:+.1f} MB |",
        "",
        f"Goals (issue 4): under {STREAM_GOAL_US:g} µs per record per feature with batching: "
        f"{per_feature_us:.3f} µs {_goal(per_feature_us < STREAM_GOAL_US)}; memory flat over "
        f"the stream (growth after the first million records under "
        f"{STREAM_FLAT_SHARE:.0%}): {growth / 1e6:+.1f} MB {_goal(flat)}.",
    ]
    return lines


def _versions_line(meta: dict[str, Any]) -> str:
    ours = meta.get("mlgate_versions", {})
    text = (
        f"mlgate {ours.get('mlgate', '?')} (NumPy {ours.get('numpy', '?')}, SciPy "
        f"{ours.get('scipy', '?')}, pyarrow {ours.get('pyarrow', '?')})"
    )
    theirs = meta.get("evidently_versions")
    if theirs:
        text += (
            f"; Evidently {theirs['evidently']} in its own venv (pandas {theirs['pandas']}, "
            f"scikit-learn {theirs['scikit-learn']}, NumPy {theirs['numpy']}, SciPy "
            f"{theirs['scipy']}, pyarrow {theirs['pyarrow']})"
        )
    return text


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    n_drifted = sum(f["drifted"] for f in results["features"])
    n_numeric = sum(f["kind"] == "numeric" for f in results["features"])
    lines = [
        MARK_START,
        "## Batch drift (`bench/drift.py`)",
        "",
        f"Produced by `{meta['command']}` on {meta['started']} in {meta['seconds']:.0f} s: "
        f"{meta['cpus']} CPU cores shared with other work (load average "
        f"{meta['loadavg_start'][0]:.1f} at the start, {meta['loadavg_end'][0]:.1f} at the "
        f"end), {meta['platform']}; {_versions_line(meta)}. Absolute times move by ±30% or "
        "more from run to run on this machine: read the ratios.",
        "",
        f"Data: {n_numeric} numeric and {len(results['features']) - n_numeric} categorical "
        f"features ({n_drifted} drifted by design; normal, lognormal, uniform, exponential, "
        "Student t, mixture, gamma with 2% missing, beta, three integer-valued, categoricals "
        "of 10 to 50 levels, one with 1% missing and one with new levels), from a seeded "
        "NumPy generator, written once to Parquet under `bench/out/drift/` "
        f"(`bench/_drift_data.py`, data tag `{meta['data_tag']}`). Both tools read the same "
        "files, each in a process of its own started with its own interpreter; the table's "
        "phases are timed inside that process, the end-to-end time, CPU time and peak RSS "
        "are the whole process's (`wait4`). Each tool runs "
        f"{meta.get('repeat', 1)} times per size, each time a fresh process after the files "
        "were read once more into the page cache; the table shows the run with the median "
        "end-to-end time (a process's first touch of fresh memory costs much more kernel "
        "time on this virtual machine at some moments than at others). mlgate: "
        "`read_frame` twice and `compare()` at its defaults, the report turned to JSON. "
        "Evidently: `pandas.read_parquet` and "
        "`Dataset.from_pandas` twice (with an explicit `DataDefinition`), then "
        "`Report([DataDriftPreset()]).run(...)` and `snapshot.dict()`.",
        "",
        "### Speed",
    ]
    lines += _speed_lines(results)
    lines += _verdict_lines(results)
    lines += _agreement_lines(results)
    lines += _false_alarm_lines(results)
    lines += _streaming_lines(results)
    lines += [MARK_END, ""]
    return "\n".join(lines)
