"""No regression beyond a tolerance in any segment of a declared column (say, country).

A model can gain on average while losing badly for one segment; this check compares the
two models segment by segment on the same rows. Segments with fewer than ``min_rows``
rows are skipped, not failed: their metric is too noisy to refuse a model on. Segment
values are compared as text, so ``1`` and ``"1"`` are one segment.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import GateError
from mlgate.loop.gates._metrics import METRICS, MetricUndefinedError, prediction_problem, prepare
from mlgate.loop.gates._model_checks import NO_CHAMPION, Holdout
from mlgate.loop.gates.report import CheckResult
from mlgate.loop.gates.spec import SliceCheck

__all__ = ["check_slices"]

# Small segments are counted, but only this many are listed one by one: a column of
# user ids must not turn the report into one entry per user.
_MAX_SKIPPED_LISTED = 20


def check_slices(check: SliceCheck, path: str, holdout: Holdout) -> CheckResult:
    inputs = holdout.inputs
    if check.column not in inputs.slices:
        raise GateError(
            f"{path}: slice column {check.column!r} was not given (have "
            f"{sorted(inputs.slices)}); pass it in GateInputs.slices (Gate.slice_columns)"
        )
    if inputs.champion is None:
        return CheckResult(path, check.KIND, True, NO_CHAMPION, None, check.max_drop, skipped=True)
    keys = np.array([str(v) for v in inputs.slices[check.column].tolist()], dtype=object)
    values, group, counts = np.unique(keys, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(group, kind="stable"), np.cumsum(counts)[:-1])
    segments = [
        _segment(check, path, holdout, str(value), rows)
        for value, rows in zip(values.tolist(), members, strict=True)
    ]
    judged = [s for s in segments if not s.skipped]
    failed = [s for s in judged if not s.passed]
    skipped = [s for s in segments if s.skipped]
    drops = [s.details.get("drop") for s in judged]
    worst = max((d for d in drops if d is not None), default=None)
    details = {
        "segments": len(segments),
        "judged": len(judged),
        "failed": len(failed),
        "skipped": len(skipped),
        "worst_drop": worst,
    }
    children = tuple(judged) + tuple(skipped[:_MAX_SKIPPED_LISTED])
    where = f"{check.metric} by {check.column}"
    if not judged:
        message = (
            f"{where}: no segment has {check.min_rows} rows or a defined {check.metric}, so "
            f"nothing was compared ({len(segments)} segments skipped)"
        )
        return CheckResult(
            path, check.KIND, True, message, None, check.max_drop, details, True, children
        )
    if failed:
        names = ", ".join(s.path.rsplit("[", 1)[-1].rstrip("]") for s in failed[:5])
        message = (
            f"{where}: the candidate is worse than the champion by more than {check.max_drop:g} "
            f"in {len(failed)} of {len(judged)} segments ({names}; worst drop "
            f"{'unknown' if worst is None else f'{worst:.4g}'}); "
            "train with more data from those segments, or raise max_drop if this is accepted"
        )
    else:
        message = (
            f"{where}: no segment drops by more than {check.max_drop:g} (worst "
            f"{worst:.4g}; {len(judged)} judged, {len(skipped)} skipped as small)"
        )
    return CheckResult(
        path, check.KIND, not failed, message, worst, check.max_drop, details, children=children
    )


def _segment(
    check: SliceCheck, path: str, holdout: Holdout, value: str, rows: NDArray[np.intp]
) -> CheckResult:
    here = f"{path}[{check.column}={value}]"
    inputs, n = holdout.inputs, len(rows)
    if n < check.min_rows:
        message = f"{n} rows, fewer than min_rows {check.min_rows}: skipped"
        return CheckResult(here, "segment", True, message, None, None, {"rows": n}, skipped=True)
    candidate = inputs.candidate.take(rows)
    problem = prediction_problem(candidate)
    if problem is not None:
        message = f"{n} rows: the candidate's {problem}; fix the model's predictions"
        return CheckResult(here, "segment", False, message, None, check.max_drop, {"rows": n})
    assert inputs.champion is not None
    y: NDArray[Any] = inputs.y_true[rows]
    try:
        cand = prepare(check.metric, inputs.task, y, candidate, holdout.universe).value
        champ = prepare(
            check.metric, inputs.task, y, inputs.champion.take(rows), holdout.universe
        ).value
    except MetricUndefinedError as exc:
        message = f"{n} rows, but {check.metric} is undefined here ({exc}): skipped"
        return CheckResult(here, "segment", True, message, None, None, {"rows": n}, skipped=True)
    drop = champ - cand if METRICS[check.metric].higher_is_better else cand - champ
    details = {"rows": n, "candidate": cand, "champion": champ, "drop": drop}
    passed = drop <= check.max_drop
    message = (
        f"{n} rows: candidate {cand:.4g} vs champion {champ:.4g}, a drop of {drop:+.4g} "
        f"({'within' if passed else 'beyond'} max_drop {check.max_drop:g})"
    )
    return CheckResult(here, "segment", passed, message, drop, check.max_drop, details)
