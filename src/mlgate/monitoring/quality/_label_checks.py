"""The batch side of the label checks: label shift and label-flip suspicion.

The statistics and their sources are in :mod:`mlgate.monitoring.quality._poisoning`; this
module turns a batch's label column into findings. Rows without a label take part
in neither check; rows with a missing or infinite numeric feature are not judged
by the label-flip check (see ``LabelQuality.standardise``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from mlgate.monitoring.quality import _stats as qs
from mlgate.monitoring.quality._label_profile import LabelQuality, label_keys
from mlgate.monitoring.quality._poisoning import label_shift, suspect_rows, suspect_rows_loo
from mlgate.monitoring.quality._types import Finding, QualityOptions

__all__ = ["check_labels"]

_MAX_ROWS = 100


def _shift(q: LabelQuality, keys: npt.NDArray[np.str_], options: QualityOptions) -> list[Finding]:
    classes, counts = np.unique(keys, return_counts=True)
    batch = {str(c): int(n) for c, n in zip(classes, counts, strict=True)}
    shift = label_shift(q.counts, batch)
    if shift is None:
        return []
    if shift.p_value < options.alpha and shift.total_variation > options.label_shift_min_tv:
        n_ref = sum(q.counts.values())
        ref = {c: round(n / n_ref, 3) for c, n in sorted(q.counts.items())}
        cur = {c: round(n / keys.shape[0], 3) for c, n in sorted(batch.items())}
        return [
            Finding(
                "label_shift",
                q.column,
                shift.total_variation,
                options.label_shift_min_tv,
                "error",
                f"label distribution moved by total variation {shift.total_variation:.3f} "
                f"(> {options.label_shift_min_tv:g}; chi-square {shift.statistic:.1f}, "
                f"dof {shift.dof}, p = {shift.p_value:.3g} < {options.alpha:g}): reference "
                f"{ref}, batch {cur}. Check how this batch was selected or labelled.",
                p_value=shift.p_value,
            )
        ]
    return []


def _flip(
    q: LabelQuality,
    points: npt.NDArray[np.float64],
    keys: npt.NDArray[np.str_],
    positions: npt.NDArray[np.intp],
    options: QualityOptions,
) -> list[Finding]:
    m = keys.shape[0]
    if q.suspect_rate is None:
        return [_insufficient(q.column, None, None, f"label-flip check skipped: {q.note}")]
    classes = np.unique(np.concatenate([keys, np.array(q.sample_labels, dtype=str)]))
    codes = np.searchsorted(classes, keys).astype(np.int64)
    use_reference = options.label_flip_index == "reference" and len(q.sample) > 0
    if use_reference:
        index_codes = np.searchsorted(classes, np.array(q.sample_labels, dtype=str))
        flags = suspect_rows(
            q.sample_points, index_codes.astype(np.int64), points, codes, q.neighbours, q.agreement
        )
    elif m > q.neighbours:
        flags = suspect_rows_loo(points, codes, q.neighbours, q.agreement)
    else:
        return [
            _insufficient(
                q.column,
                m,
                q.neighbours + 1,
                f"label-flip check within the batch skipped: {m} labelled rows with all "
                f"features present, at least {q.neighbours + 1} needed",
            )
        ]
    count = int(flags.sum())
    test = qs.rate_spike(
        count, m, q.suspect_rate, options.label_flip_margin, options.alpha, base_n=q.suspect_n
    )
    if not test.fired:
        return []
    where = "the reference sample" if use_reference else "the batch"
    return [
        Finding(
            "label_flip",
            q.column,
            test.observed,
            test.threshold,
            "error",
            f"{count} of {m} labelled rows judged ({test.observed:.2%}) disagree with at least "
            f"{q.agreement:.0%} of their {q.neighbours} nearest neighbours in {where}; "
            f"allowed up to {test.threshold:.2%} (reference rate {q.suspect_rate:.2%}, "
            f"bounded {test.base:.2%}, + margin {options.label_flip_margin:.0%}, alpha "
            f"{options.alpha:g}). Labels may have been "
            f"flipped; review the listed rows before training.",
            p_value=test.p_value,
            rows=tuple(int(i) for i in positions[flags][:_MAX_ROWS]),
        )
    ]


def _insufficient(column: str, have: int | None, need: int | None, message: str) -> Finding:
    return Finding(
        "insufficient_data",
        column,
        None if have is None else float(have),
        None if need is None else float(need),
        "warning",
        message + ".",
    )


def check_labels(
    q: LabelQuality, coerced: Mapping[str, np.ndarray], n_rows: int, options: QualityOptions
) -> list[Finding]:
    """Label findings for the batch; nothing when its label column is absent or ill-typed."""
    if q.column not in coerced:
        return []
    keys = label_keys(coerced[q.column])
    has_label = keys != None  # noqa: E711 - elementwise comparison
    findings: list[Finding] = []
    if "label_shift" not in options.disabled and has_label.any():
        findings += _shift(q, keys[has_label].astype(str), options)
    if "label_flip" not in options.disabled:
        missing = np.full(n_rows, np.nan)
        features = {name: coerced.get(name, missing) for name in q.features}
        points, complete = q.standardise(features, n_rows)
        positions = np.flatnonzero(has_label & complete)
        if positions.shape[0] > options.label_flip_max_rows:
            rng = np.random.default_rng(options.seed)
            positions = np.sort(
                rng.choice(positions, size=options.label_flip_max_rows, replace=False)
            )
        if positions.shape[0]:
            present = keys[positions].astype(str)
            findings += _flip(q, points[positions], present, positions, options)
    return findings
