"""The drift benchmark runs end to end on tiny data, mlgate's side only, and renders.

Evidently is not installed here (it lives in the benchmark's own venv), so the agreement
code is fed values computed the way Evidently 0.7 computes them, written out below with
scipy. Only the report's shape and the sanity of its numbers are asserted, never a timing.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
from bench._drift_agree import GOAL, agreement_rows, forced_methods, preset_rows
from bench._drift_data import FEATURES, categorical_names, numeric_names
from bench.drift import MARK_END, MARK_START, main, render_markdown
from scipy import stats
from scipy.spatial import distance

TINY = [
    *("--rows", "2000", "--null-seeds", "2", "--skip-evidently"),
    *("--stream-records", "20000", "--stream-batch", "500", "--stream-window", "5000"),
]
SPEED_KEYS = ("wall_s", "cpu_s", "startup_s", "import_s", "read_s", "compute_s", "compute_cpu_s")


def _run(tmp_path: Path) -> tuple[dict[str, Any], str]:
    out, markdown = tmp_path / "drift.json", tmp_path / "BENCHMARKS.md"
    markdown.write_text("# Benchmarks\n\nOther sections stay.\n", encoding="utf-8")
    main([*TINY, "--data-dir", str(tmp_path / "data"), "--out", str(out), "--write", str(markdown)])
    return json.loads(out.read_text(encoding="utf-8")), markdown.read_text(encoding="utf-8")


def test_tiny_run_reports_speed_verdicts_and_false_alarms(tmp_path: Path) -> None:
    results, text = _run(tmp_path)

    ours = results["speed"]["2000"]["mlgate"]
    for key in SPEED_KEYS:
        assert math.isfinite(ours[key]) and ours[key] >= 0.0, key
    assert ours["wall_s"] > 0 and ours["peak_rss_bytes"] > 0
    assert "evidently" not in results["speed"]["2000"]

    report = results["verdicts"]["mlgate"]
    assert set(report["features"]) == {f.name for f in FEATURES}
    assert results["verdicts"]["evidently"] is None

    fa = results["false_alarms"]
    assert [e["seed"] for e in fa["mlgate"]] == [101, 102]
    assert all(0.0 <= e["share"] <= 1.0 for e in fa["mlgate"])
    assert fa["evidently"] == []

    stream = results["streaming"]
    assert "error" not in stream, stream
    assert stream["records"] == stream["timed_records"] + 500 == 20_000
    assert stream["features"] == len(FEATURES)
    assert stream["windows_judged"] == 4
    assert set(stream["alarms"]) <= {f.name for f in FEATURES}
    assert stream["wall_s"] > 0 and all(rss > 0 for _, rss in stream["rss"])
    assert "### Streaming cost" in text

    # The data was written once, as Parquet, and is reused by a second run.
    files = sorted(p.name for p in (tmp_path / "data").iterdir())
    assert len(files) == 4 and all(name.endswith(".parquet") for name in files)

    assert text.startswith("# Benchmarks\n\nOther sections stay.\n")
    assert text.count(MARK_START) == text.count(MARK_END) == 1
    section = text[text.index(MARK_START) : text.index(MARK_END)]
    assert "--rows 2000" in section
    assert "| 2,000 + 2,000 rows | mlgate |" in section
    assert "### False alarms at 2,000 rows, no drift" in section
    assert not re.search(r"\b(nan|inf)\b", section, re.IGNORECASE)
    for feature in FEATURES:
        assert f"| `{feature.name}` |" in section


# -- Evidently 0.7's definitions, as its source computes them (legacy/calculations/stattests) --


def _evidently_binned(ref: Any, cur: Any, categorical: bool, fill: bool) -> tuple[Any, Any]:
    if not categorical and np.unique(ref).size > 20:
        bins = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        r = np.histogram(ref, bins)[0] / len(ref)
        c = np.histogram(cur, bins)[0] / len(cur)
    else:
        keys = sorted(set(ref.tolist()) | set(cur.tolist()))
        r = np.array([np.count_nonzero(ref == k) / len(ref) for k in keys])
        c = np.array([np.count_nonzero(cur == k) / len(cur) for k in keys])
    if fill:
        for shares in (r, c):
            smallest = shares[shares != 0].min()
            np.place(shares, shares == 0, smallest / 1e6 if smallest <= 1e-4 else 1e-4)
    return r, c


def _evidently_value(method: str, ref: Any, cur: Any, categorical: bool) -> float:
    if method == "ks":
        return float(stats.ks_2samp(ref, cur)[1])
    if method == "wasserstein":
        return float(stats.wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
    r, c = _evidently_binned(ref, cur, categorical, fill=method == "psi")
    if method == "psi":
        return float(np.sum((r - c) * np.log(r / c)))
    return float(distance.jensenshannon(r, c))


def _column(table: Any, name: str) -> Any:
    values = table.column(name).to_numpy(zero_copy_only=False)
    if name in categorical_names():
        return np.array([v for v in values if v is not None], dtype=object)
    values = np.asarray(values, dtype=np.float64)
    return values[~np.isnan(values)]


def test_agreement_with_evidentlys_definitions(tmp_path: Path) -> None:
    results, _ = _run(tmp_path)
    data = tmp_path / "data"
    reference = next(data.glob("reference-2000-*.parquet"))
    current = next(data.glob("current-2000-*.parquet"))
    ref_table, cur_table = pq.read_table(reference), pq.read_table(current)
    report = results["verdicts"]["mlgate"]

    columns = {}
    for name in numeric_names() + categorical_names():
        categorical = name in categorical_names()
        method = "jensenshannon" if categorical else "wasserstein"
        value = _evidently_value(
            method, _column(ref_table, name), _column(cur_table, name), categorical
        )
        display = "Jensen-Shannon distance" if categorical else "Wasserstein distance (normed)"
        columns[name] = {"method": display, "threshold": 0.1, "value": value, "drifted": False}
    forced = [
        {
            "column": c,
            "method": m,
            "value": _evidently_value(
                m, _column(ref_table, c), _column(cur_table, c), c in categorical_names()
            ),
        }
        for c, m in forced_methods(numeric_names(), categorical_names())
    ]

    rows = preset_rows(2000, report, {"columns": columns, "dataset": {}})
    rows += agreement_rows(2000, reference, current, report, forced)
    compared = {(r["statistic"], r["kind"]): r for r in rows if r["compared"]}
    assert set(compared) == {
        ("Wasserstein / reference std", "numeric"),
        ("Jensen-Shannon distance", "categorical"),
        ("KS p-value", "numeric"),
        ("PSI on Evidently's bins", "numeric"),
        ("Jensen-Shannon on Evidently's bins", "numeric"),
        ("PSI", "categorical"),
    }
    for row in compared.values():
        assert row["columns"] > 0, row["statistic"]
        assert row["max_abs_diff"] <= GOAL, row
        assert row["columns"] + len(row["left_out"]) in (5, 20)
    # The new levels of c3 have no reference share: left out of PSI, and said so.
    assert "c3_zipf30_new" in compared[("PSI", "categorical")]["left_out"]

    results["agreement"] = rows
    section = render_markdown(results)
    assert "### Agreement with Evidently" in section
    assert "❌" not in section.split("### Agreement with Evidently")[1].split("###")[0]
