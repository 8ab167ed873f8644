"""Judging a window's counts: the batch drift rule, on bins, plus a missing-rate check.

Streaming keeps bin counts, not values, so only the binned statistics can be computed
exactly: PSI, KL and Jensen-Shannon on the profile's bins, and the two-sample chi-square
test on the 2 x K table of reference and window counts. KS and Wasserstein need the
values (a window's ECDF within a bin is unknown), so a numeric feature is tested with
chi-square on its bins instead of KS, and gated by PSI alone. The verdict is then exactly
the batch rule of :mod:`mlgate.monitoring.drift` (its ``decide``): adjusted p-value <= alpha
AND an effect size >= its sample-size-aware threshold, Benjamini-Hochberg across features.
For categorical features every category the reference lacks shares one *unseen* bin, and
categories too sparse for the chi-square test are pooled (``pool_sparse``), as in batch.

The missing-rate check (alarm kind ``quality``): the window's share of missing values
against the reference's, a chi-square test on the 2 x 2 table of present and missing
counts, BH-corrected across features, and the same two-part rule: the adjusted p-value
<= alpha and the share up by at least ``missing_share_threshold`` (absolute).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mlgate.monitoring.drift import DriftOptions, DriftReport, FeatureStatus
from mlgate.monitoring.drift._decide import Measured, decide
from mlgate.monitoring.profile import CategoricalProfile, NumericProfile, ReferenceProfile
from mlgate.monitoring.stats import (
    adjust_p_values,
    chi2_two_sample,
    js_distance,
    kl_divergence,
    pool_sparse,
    pooling_note,
    psi,
)
from mlgate.monitoring.stream._codec import CategoricalSlots, FeatureCodec, NumericSlots

__all__ = ["MissingShare", "streaming_options", "judge_drift", "judge_missing", "feature_counts"]

IntArray = NDArray[np.int64]


def streaming_options(options: DriftOptions, profile: ReferenceProfile) -> DriftOptions:
    """``options`` with chi-square on the bins as the numeric test, where KS was asked for.

    KS needs the values; a window keeps only counts. An explicit ``"ks"`` for a feature is
    refused with a ValueError saying so; the default (KS) becomes chi-square silently.
    """
    tests = dict(options.tests)
    for name, feature in profile.features.items():
        if tests.get(name) == "ks":
            raise ValueError(
                f"feature {name!r}: streaming windows keep bin counts, not values, so the KS "
                "test cannot be computed; choose 'chi2' or 'psi' for it"
            )
        if isinstance(feature, NumericProfile) and name not in tests:
            tests[name] = "chi2"
    unknown = sorted(set(tests) - set(profile.features))
    if unknown:
        raise ValueError(f"DriftOptions.tests names features the profile lacks: {unknown}")
    return dataclasses.replace(options, tests=tests)


@dataclass(frozen=True, slots=True)
class FeatureCounts:
    """One feature's window counts, in the form the statistics take."""

    name: str
    reference: IntArray  # bins (numeric, infinities folded) or categories (+ unseen)
    current: IntArray
    missing: int
    infinite: int
    unseen: int


def feature_counts(codec: FeatureCodec, counts: IntArray) -> dict[str, FeatureCounts]:
    """Split a window's flat slot counts into per-feature reference/current bin counts."""
    out: dict[str, FeatureCounts] = {}
    for spec in codec.slots:
        part = counts[spec.offset : spec.offset + spec.width]
        if isinstance(spec, NumericSlots):
            b = spec.n_bins
            current = part[:b].copy()
            current[0] += part[b + 1]
            current[-1] += part[b + 2]
            infinite = int(part[b + 1] + part[b + 2])
            out[spec.name] = FeatureCounts(
                spec.name, spec.reference, current, int(part[b]), infinite, 0
            )
        else:
            assert isinstance(spec, CategoricalSlots)
            k = len(spec.categories)
            unseen = int(part[k])
            if unseen:
                reference = np.append(spec.reference, 0)
                current = part[: k + 1].copy()
            else:
                reference, current = spec.reference, part[:k].copy()
            out[spec.name] = FeatureCounts(
                spec.name, reference, current, int(part[k + 1]), 0, unseen
            )
    return out


def _status(n_rows: int, n_ref: int, n_cur: int, min_samples: int) -> tuple[FeatureStatus, str]:
    if n_rows == 0:
        return "empty", "the window has no records: nothing to compare"
    if n_ref == 0 or n_cur == 0:
        where = "reference" if n_ref == 0 else "window"
        return "all_missing", f"every value is missing in the {where}: nothing to compare"
    if n_ref < min_samples or n_cur < min_samples:
        return "too_small", (
            f"too few values to judge: {n_ref} in the reference and {n_cur} in the window, "
            f"at least {min_samples} needed in each (DriftOptions.min_samples)"
        )
    return "ok", ""


def _measure(
    name: str,
    feature: NumericProfile | CategoricalProfile,
    fc: FeatureCounts,
    n_rows: int,
    min_samples: int,
    unseen_names: Callable[[str], tuple[str, ...]],
) -> Measured:
    kind = feature.kind
    n_ref, n_cur = int(fc.reference.sum()), int(fc.current.sum())
    status, note = _status(n_rows, n_ref, n_cur, min_samples)
    notes = [note] if note else []
    inf_ref = feature.neg_inf + feature.pos_inf if isinstance(feature, NumericProfile) else 0
    if not (n_ref and n_cur):
        return Measured(
            name, kind, status, "; ".join(notes), n_ref, n_cur, feature.missing, fc.missing,
            inf_ref=inf_ref, inf_cur=fc.infinite,
        )  # fmt: skip
    if status == "ok":
        if isinstance(feature, NumericProfile):
            if feature.finite == feature.count and feature.min is not None:
                if feature.min == feature.max:
                    status = "constant"
                    notes.append(f"the reference is constant at {feature.min:.6g}")
        elif len(feature.frequencies) == 1:
            status = "constant"
            notes.append(
                f"the reference has the single category {next(iter(feature.frequencies))!r}"
            )
    if fc.infinite or inf_ref:
        notes.append(
            f"{inf_ref} reference and {fc.infinite} window values are infinite: "
            "counted in the outer bins"
        )
    new_categories: tuple[str, ...] = ()
    new_share = None
    if isinstance(feature, CategoricalProfile):
        new_share = fc.unseen / n_cur
        if fc.unseen:
            new_categories = unseen_names(name)[:10]
            shown = ", ".join(repr(c) for c in new_categories)
            notes.append(
                f"{fc.unseen} values ({new_share:.2%} of the window) in categories the reference "
                f"lacks, counted in one unseen bin; recently seen: {shown}"
            )
    r, c = fc.reference, fc.current
    if isinstance(feature, CategoricalProfile):
        pooled = pool_sparse(r, c)
        r, c = pooled.reference, pooled.current
        if pooled.pooled:
            notes.append(pooling_note(pooled))
    return Measured(
        name, kind, status, "; ".join(notes), n_ref, n_cur, feature.missing, fc.missing,
        n_bins=int(np.count_nonzero(r + c)),
        psi=psi(r, c),
        kl=kl_divergence(r, c),
        js=js_distance(r, c),
        chi2=chi2_two_sample(r, c),
        inf_ref=inf_ref,
        inf_cur=fc.infinite,
        new_categories=new_categories,
        new_share=new_share,
    )  # fmt: skip


def judge_drift(
    codec: FeatureCodec,
    counts: dict[str, FeatureCounts],
    n_rows: int,
    options: DriftOptions,
) -> DriftReport:
    """The batch drift verdict on one window's counts (``options`` from streaming_options)."""
    profile = codec.profile
    measured = [
        _measure(name, feature, counts[name], n_rows, options.min_samples, codec.unseen_categories)
        for name, feature in profile.features.items()
    ]
    return decide(measured, options, n_reference_rows=profile.n_rows, n_current_rows=n_rows)


@dataclass(frozen=True, slots=True)
class MissingShare:
    """One feature's missing share in the window against the reference's."""

    name: str
    reference: float
    current: float
    p_value: float
    p_value_adjusted: float
    threshold: float
    raised: bool


def judge_missing(
    profile: ReferenceProfile,
    counts: dict[str, FeatureCounts],
    n_rows: int,
    options: DriftOptions,
    share_threshold: float,
) -> list[MissingShare]:
    """The missing-rate check of every feature (see the module docstring)."""
    if n_rows < options.min_samples:
        return []
    rows: list[tuple[str, float, float, float]] = []
    for name, feature in profile.features.items():
        fc = counts[name]
        ref_total = feature.count + feature.missing
        cur_total = int(fc.current.sum()) + fc.missing
        if ref_total == 0 or cur_total == 0:
            continue
        if feature.missing == 0 and fc.missing == 0:
            p = 1.0  # nothing missing on either side: nothing to test
        else:
            table_ref = [feature.count, feature.missing]
            table_cur = [cur_total - fc.missing, fc.missing]
            p = chi2_two_sample(table_ref, table_cur).p_value
        rows.append((name, feature.missing / ref_total, fc.missing / cur_total, p))
    adjusted = adjust_p_values([r[3] for r in rows], options.correction)
    out: list[MissingShare] = []
    for (name, ref_share, cur_share, p), p_adj in zip(rows, adjusted.tolist(), strict=True):
        threshold = ref_share + share_threshold
        raised = p_adj <= options.alpha and cur_share >= threshold
        out.append(MissingShare(name, ref_share, cur_share, p, p_adj, threshold, raised))
    return out
