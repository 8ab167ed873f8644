"""Agreement of mlgate's drift statistics with Evidently's, like compared with like.

Where both tools mean the same number, mlgate's report is compared as it is:

- normalised Wasserstein (numeric): both divide scipy's W1 by the reference's standard
  deviation with ddof=0 (Evidently by ``max(std, 0.001)``, the same for these columns);
- KS p-value (numeric): both give scipy's ``ks_2samp(method="auto")`` p-value, which is
  Smirnov's asymptotic form above 10,000 values per window;
- Jensen-Shannon distance (categorical): the same shares over the union of categories;
  Evidently calls ``scipy.spatial.distance.jensenshannon`` with the natural logarithm and
  mlgate reports base 2 (so it lies in [0, 1]), so mlgate's value is multiplied by
  ``sqrt(ln 2)``.

Where the definitions differ, mlgate's functions are fed Evidently's bins and compared
on Evidently's definition, and the difference of the reported values is shown apart:

- numeric PSI and JS: Evidently bins a column with more than 20 distinct reference values
  into Sturges' equal-width bins over both windows together (``numpy.histogram_bin_edges``
  of the concatenation), and other columns one bin per value; mlgate bins at the
  reference's deciles. Here :func:`~mlgate.monitoring.stats.bin_counts` counts the values
  in Evidently's bins and :func:`~mlgate.monitoring.stats.psi` /
  :func:`~mlgate.monitoring.stats.js_distance` compute the statistic.
- PSI's empty bins: Evidently replaces an empty share with 1e-4 (or the smallest share /
  1e6), mlgate adds a 0.5 pseudo-count to every bin. With no empty bin and a pseudo-count
  of 1e-12 mlgate's PSI is Evidently's formula; columns with an empty bin are left out of
  the comparison and named.
- chi-square: Evidently's is the one-sample goodness-of-fit test that treats the
  reference's shares as exact, mlgate's the two-sample test of homogeneity: different
  tests, not compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from mlgate.monitoring.stats import bin_counts, js_distance, psi

__all__ = ["GOAL", "SQRT_LN2", "agreement_rows", "evidently_edges", "forced_methods"]

GOAL = 1e-6
SQRT_LN2 = math.sqrt(math.log(2.0))
TINY_PSEUDO_COUNT = 1e-12
EVIDENTLY_VALUE_BINS_MAX = 20  # Evidently's get_binned_data: histogram above 20 distinct values

FloatArray = NDArray[np.float64]


def forced_methods(numeric: Sequence[str], categorical: Sequence[str]) -> list[list[str]]:
    """The (column, Evidently method) pairs of the agreement run."""
    pairs = [[c, m] for m in ("ks", "psi", "jensenshannon") for c in numeric]
    return pairs + [[c, "psi"] for c in categorical]


def evidently_edges(ref: FloatArray, cur: FloatArray) -> tuple[FloatArray, str]:
    """Interior edges of Evidently's bins for a numeric column, and how they were made."""
    if np.unique(ref).size > EVIDENTLY_VALUE_BINS_MAX:
        edges = np.histogram_bin_edges(np.concatenate([ref, cur]), bins="sturges")
        return np.asarray(edges[1:-1], dtype=np.float64), f"{edges.size - 1} Sturges bins"
    values = np.union1d(ref, cur)
    return np.asarray(values[1:], dtype=np.float64), f"{values.size} value bins"


def _numeric(table: Any, name: str) -> FloatArray:
    values = np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values[~np.isnan(values)]


def _category_counts(table: Any, name: str) -> dict[str, int]:
    counts = pc.value_counts(table.column(name)).to_pylist()
    return {row["values"]: int(row["counts"]) for row in counts if row["values"] is not None}


def _row(
    statistic: str,
    kind: str,
    rows: int,
    definition: str,
    pairs: Mapping[str, tuple[float, float]],
    left_out: Mapping[str, str] | None = None,
    compared: bool = True,
) -> dict[str, Any]:
    diffs = {name: abs(ours - theirs) for name, (ours, theirs) in pairs.items()}
    worst = max(diffs, key=lambda n: diffs[n]) if diffs else None
    return {
        "statistic": statistic,
        "kind": kind,
        "rows": rows,
        "definition": definition,
        "compared": compared,
        "columns": len(pairs),
        "max_abs_diff": diffs[worst] if worst else math.nan,
        "worst_column": worst,
        "values": {name: list(pair) for name, pair in pairs.items()},
        "left_out": dict(left_out or {}),
    }


def _by_method(values: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for v in values:
        out.setdefault(v["method"], {})[v["column"]] = float(v["value"])
    return out


def preset_rows(
    rows: int, ours: Mapping[str, Any], theirs: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Wasserstein and categorical JS: the statistics Evidently's preset itself chose."""
    features, columns = ours["features"], theirs["columns"]
    wasserstein, js = {}, {}
    for name, col in columns.items():
        mine = features[name]
        if col["method"].startswith("Wasserstein") and mine.get("wasserstein") is not None:
            wasserstein[name] = (float(mine["wasserstein"]), float(col["value"]))
        elif col["method"].startswith("Jensen") and mine["kind"] == "categorical":
            js[name] = (float(mine["js"]) * SQRT_LN2, float(col["value"]))
    return [
        _row(
            "Wasserstein / reference std",
            "numeric",
            rows,
            "same: scipy W1 / std (ddof=0); mlgate's reported value",
            wasserstein,
        ),
        _row(
            "Jensen-Shannon distance",
            "categorical",
            rows,
            "same shares; mlgate's reported base-2 value × √ln 2 (Evidently uses ln)",
            js,
        ),
    ]


def agreement_rows(
    rows: int,
    reference: Path,
    current: Path,
    ours: Mapping[str, Any],
    forced: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """KS, PSI and JS against Evidently's forced-method run on the same two files."""
    theirs = _by_method(forced)
    features = ours["features"]
    ref_table, cur_table = pq.read_table(reference), pq.read_table(current)
    ks: dict[str, tuple[float, float]] = {}
    psi_same: dict[str, tuple[float, float]] = {}
    psi_reported: dict[str, tuple[float, float]] = {}
    js_same: dict[str, tuple[float, float]] = {}
    js_reported: dict[str, tuple[float, float]] = {}
    psi_left_out: dict[str, str] = {}
    cat_psi: dict[str, tuple[float, float]] = {}
    cat_psi_reported: dict[str, tuple[float, float]] = {}
    cat_left_out: dict[str, str] = {}
    for name, value in theirs.get("ks", {}).items():
        ks[name] = (float(features[name]["ks"]["p_value"]), value)
    for name, value in theirs.get("psi", {}).items():
        mine = features[name]
        if mine["kind"] == "numeric":
            ref, cur = _numeric(ref_table, name), _numeric(cur_table, name)
            edges, how = evidently_edges(ref, cur)
            rc, cc = bin_counts(ref, edges), bin_counts(cur, edges)
            psi_reported[name] = (float(mine["psi"]), value)
            if np.all(rc > 0) and np.all(cc > 0):
                psi_same[name] = (psi(rc, cc, pseudo_count=TINY_PSEUDO_COUNT), value)
            else:
                empty = int(np.count_nonzero(rc == 0) + np.count_nonzero(cc == 0))
                psi_left_out[name] = f"{empty} empty bin(s) of {how}"
            if name in theirs.get("jensenshannon", {}):
                js_same[name] = (js_distance(rc, cc) * SQRT_LN2, theirs["jensenshannon"][name])
                js_reported[name] = (float(mine["js"]) * SQRT_LN2, theirs["jensenshannon"][name])
        else:
            r, c = _category_counts(ref_table, name), _category_counts(cur_table, name)
            keys = sorted(set(r) | set(c))
            rc = np.array([r.get(k, 0) for k in keys], dtype=np.int64)
            cc = np.array([c.get(k, 0) for k in keys], dtype=np.int64)
            cat_psi_reported[name] = (float(mine["psi"]), value)
            if np.all(rc > 0) and np.all(cc > 0):
                cat_psi[name] = (psi(rc, cc, pseudo_count=TINY_PSEUDO_COUNT), value)
            else:
                new = sorted(k for k in keys if r.get(k, 0) == 0)
                cat_left_out[name] = f"categories absent from the reference: {', '.join(new)}"
    return [
        _row(
            "KS p-value",
            "numeric",
            rows,
            "same: scipy's ks_2samp (asymptotic above 10,000); mlgate's reported value",
            ks,
        ),
        _row(
            "PSI on Evidently's bins",
            "numeric",
            rows,
            "Evidently's bins and raw shares; mlgate's bin_counts + psi(pseudo_count=1e-12)",
            psi_same,
            psi_left_out,
        ),
        _row(
            "Jensen-Shannon on Evidently's bins",
            "numeric",
            rows,
            "Evidently's bins; mlgate's bin_counts + js_distance × √ln 2",
            js_same,
        ),
        _row(
            "PSI",
            "categorical",
            rows,
            "same categories and raw shares; mlgate's psi(pseudo_count=1e-12)",
            cat_psi,
            cat_left_out,
        ),
        _row(
            "PSI as reported",
            "numeric",
            rows,
            "different: mlgate's reference deciles + 0.5 pseudo-count vs Evidently's bins",
            psi_reported,
            compared=False,
        ),
        _row(
            "Jensen-Shannon as reported",
            "numeric",
            rows,
            "different bins: mlgate's reference deciles vs Evidently's",
            js_reported,
            compared=False,
        ),
        _row(
            "PSI as reported",
            "categorical",
            rows,
            "different smoothing: mlgate's 0.5 pseudo-count vs Evidently's fill of empty shares",
            cat_psi_reported,
            compared=False,
        ),
    ]
