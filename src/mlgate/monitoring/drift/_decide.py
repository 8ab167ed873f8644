"""Turning measured statistics into verdicts: options, the per-feature rule, the dataset rule.

The rule itself is documented in :mod:`mlgate.monitoring.drift`; this module applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.drift._report import DriftReport, FeatureDrift, FeatureStatus, TestName
from mlgate.monitoring.stats import (
    DEFAULT_BINS,
    Chi2Result,
    Correction,
    KSResult,
    adjust_p_values,
    js_threshold,
    psi_p_value,
    psi_threshold,
)

__all__ = ["DEFAULT_TESTS", "MIN_SAMPLES", "DriftOptions", "Measured", "decide"]

MIN_SAMPLES = 50
"""Fewest non-missing values per window for a verdict: ~5 expected per decile bin."""
DEFAULT_TESTS: dict[FeatureKind, TestName] = {"numeric": "ks", "categorical": "chi2"}
_TESTS: tuple[TestName, ...] = ("ks", "chi2", "psi")
_CORRECTIONS: tuple[Correction, ...] = ("bh", "bonferroni", "none")


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """How features are judged. Defaults and their reasons are in :mod:`.drift`'s docstring.

    ``tests`` overrides the test per feature name; ``drift_share`` None means "the dataset
    drifted if any feature did", a number in (0, 1] means "if at least that share did".
    """

    alpha: float = 0.05
    correction: Correction = "bh"
    bins: int = DEFAULT_BINS
    min_samples: int = MIN_SAMPLES
    psi_threshold: float = 0.1
    wasserstein_threshold: float = 0.1
    js_threshold: float = 0.1
    tests: Mapping[str, TestName] = field(default_factory=dict)
    drift_share: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must lie in (0, 1), got {self.alpha}")
        if self.correction not in _CORRECTIONS:
            raise ValueError(f"correction must be one of {_CORRECTIONS}, got {self.correction!r}")
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.min_samples < 1:
            raise ValueError(f"min_samples must be at least 1, got {self.min_samples}")
        for label in ("psi_threshold", "wasserstein_threshold", "js_threshold"):
            if not getattr(self, label) >= 0.0:
                raise ValueError(f"{label} must be >= 0, got {getattr(self, label)}")
        for name, test in self.tests.items():
            if test not in _TESTS:
                raise ValueError(f"test for {name!r} must be one of {_TESTS}, got {test!r}")
        if self.drift_share is not None and not 0.0 < self.drift_share <= 1.0:
            raise ValueError(f"drift_share must lie in (0, 1] or be None, got {self.drift_share}")

    def test_for(self, name: str, kind: FeatureKind) -> TestName:
        test = self.tests.get(name, DEFAULT_TESTS[kind])
        if test == "ks" and kind == "categorical":
            raise ValueError(
                f"feature {name!r} is categorical and KS needs an ordering; use 'chi2' or 'psi'"
            )
        return test

    def describe(self) -> dict[str, object]:
        tests: dict[str, str] = dict(DEFAULT_TESTS.items())
        tests.update(self.tests)
        return {
            "rule": "drifted = adjusted p-value <= alpha AND an effect size >= its threshold",
            "tests": tests,
            "alpha": self.alpha,
            "correction": self.correction,
            "min_samples": self.min_samples,
            "bins": self.bins,
            "effect_thresholds": {
                "psi": f"max({self.psi_threshold}, sample-size noise level at alpha)",
                "wasserstein": self.wasserstein_threshold,
                "js": f"max({self.js_threshold}, sample-size noise level at alpha)",
            },
            "dataset_rule": (
                "any feature drifted"
                if self.drift_share is None
                else f"share of drifted features >= {self.drift_share}"
            ),
        }


@dataclass(frozen=True, slots=True)
class Measured:
    """One feature's statistics before the verdict (None where they cannot be computed)."""

    name: str
    kind: FeatureKind
    status: FeatureStatus
    note: str
    n_ref: int
    n_cur: int
    missing_ref: int
    missing_cur: int
    n_bins: int = 0
    psi: float | None = None
    kl: float | None = None
    js: float | None = None
    ks: KSResult | None = None
    wasserstein: float | None = None
    chi2: Chi2Result | None = None
    inf_ref: int = 0
    inf_cur: int = 0
    new_categories: tuple[str, ...] = ()
    new_share: float | None = None


def _raw_p(m: Measured, test: TestName) -> float | None:
    if test == "ks":
        return m.ks.p_value if m.ks else None
    if test == "chi2":
        return m.chi2.p_value if m.chi2 else None
    if m.psi is None:
        return None
    return psi_p_value(m.psi, m.n_ref, m.n_cur, m.n_bins)


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def _effects(m: Measured, options: DriftOptions) -> list[tuple[str, float, float]]:
    """(name, value, threshold) of each effect size that can gate this feature."""
    effects: list[tuple[str, float, float]] = []
    if m.psi is not None:
        limit = psi_threshold(
            m.n_ref, m.n_cur, m.n_bins, base=options.psi_threshold, alpha=options.alpha
        )
        effects.append(("psi", m.psi, limit))
    if m.kind == "numeric" and m.wasserstein is not None and not math.isnan(m.wasserstein):
        effects.append(("wasserstein", m.wasserstein, options.wasserstein_threshold))
    if m.kind == "categorical" and m.js is not None:
        limit = js_threshold(
            m.n_ref, m.n_cur, m.n_bins, base=options.js_threshold, alpha=options.alpha
        )
        effects.append(("js", m.js, limit))
    return effects


def _ratio(effect: tuple[str, float, float]) -> float:
    _, value, limit = effect
    return math.inf if limit <= 0 else value / limit


def _judge(
    m: Measured, test: TestName, p: float, p_adj: float, options: DriftOptions
) -> FeatureDrift:
    effects = _effects(m, options)
    thresholds = {"p_value": options.alpha, **{name: limit for name, _, limit in effects}}
    label = f"{test} p={_fmt(p)}"
    if options.correction != "none":
        label += f" ({options.correction}-adjusted {_fmt(p_adj)})"
    prefix = f"{m.note}; " if m.note else ""
    passed = [e for e in effects if e[1] >= e[2]]
    if not effects:  # nothing to gate on (no bins): the test alone decides
        drifted = p_adj <= options.alpha
        verdict = "drifted" if drifted else "no evidence of change"
        reason = f"{verdict}: {label} {'<=' if drifted else '>'} alpha {options.alpha}"
        return _feature(
            m, test, drifted, prefix + reason, test, options.alpha, p, p_adj, thresholds
        )
    decided_by: str
    if p_adj > options.alpha:
        drifted, decided_by, threshold = False, test, options.alpha
        reason = f"no evidence of change: {label} > alpha {options.alpha}"
    elif not passed:
        drifted, (decided_by, _, threshold) = False, max(effects, key=_ratio)
        sizes = ", ".join(f"{n} {_fmt(v)} < {_fmt(t)}" for n, v, t in effects)
        reason = f"{label} is significant but the change is too small to matter: {sizes}"
    else:
        best = max(passed, key=_ratio)
        drifted, (decided_by, _, threshold) = True, best
        reason = (
            f"drifted: {best[0]} {_fmt(best[1])} >= {_fmt(best[2])} and "
            f"{label} <= alpha {options.alpha}"
        )
    return _feature(m, test, drifted, prefix + reason, decided_by, threshold, p, p_adj, thresholds)


def _feature(
    m: Measured,
    test: TestName,
    drifted: bool,
    reason: str,
    decided_by: str,
    threshold: float | None,
    p: float | None,
    p_adj: float | None,
    thresholds: Mapping[str, float],
) -> FeatureDrift:
    return FeatureDrift(
        name=m.name,
        kind=m.kind,
        status=m.status,
        drifted=drifted,
        reason=reason,
        test=test,
        decided_by=decided_by,
        threshold=threshold,
        n_reference=m.n_ref,
        n_current=m.n_cur,
        missing_reference=m.missing_ref,
        missing_current=m.missing_cur,
        psi=m.psi,
        kl=m.kl,
        js=m.js,
        ks=m.ks,
        wasserstein=m.wasserstein,
        chi2=m.chi2,
        p_value=p,
        p_value_adjusted=p_adj,
        thresholds=thresholds,
        infinite_reference=m.inf_ref,
        infinite_current=m.inf_cur,
        new_categories=m.new_categories,
        new_category_share=m.new_share,
    )


def decide(
    measured: Sequence[Measured],
    options: DriftOptions,
    *,
    n_reference_rows: int,
    n_current_rows: int,
    ignored_columns: Sequence[str] = (),
) -> DriftReport:
    """Correct the judged features' p-values together, then give each and the dataset a verdict."""
    tests = [options.test_for(m.name, m.kind) for m in measured]
    raw = [
        _raw_p(m, t) if m.status in ("ok", "constant") else None
        for m, t in zip(measured, tests, strict=True)
    ]
    family = [i for i, p in enumerate(raw) if p is not None]
    adjusted = adjust_p_values([raw[i] or 0.0 for i in family], options.correction)
    adjusted_by_index = dict(zip(family, adjusted.tolist(), strict=True))

    features: dict[str, FeatureDrift] = {}
    for i, (m, test) in enumerate(zip(measured, tests, strict=True)):
        p = raw[i]
        if p is None:
            threshold = float(options.min_samples) if m.status == "too_small" else None
            features[m.name] = _feature(m, test, False, m.note, m.status, threshold, None, None, {})
        else:
            features[m.name] = _judge(m, test, p, adjusted_by_index[i], options)

    drifted_names = [name for name, f in features.items() if f.drifted]
    share = len(drifted_names) / len(features) if features else 0.0
    if options.drift_share is None:
        dataset_drifted = bool(drifted_names)
    else:
        dataset_drifted = bool(drifted_names) and share >= options.drift_share
    unjudged = [f"{n} ({f.status})" for n, f in features.items() if f.p_value is None]
    reason = f"{len(drifted_names)} of {len(features)} features drifted"
    if drifted_names:
        reason += ": " + ", ".join(drifted_names)
    if options.drift_share is not None:
        reason += f" (share {share:.3g}; the dataset rule needs >= {options.drift_share})"
    if unjudged:
        reason += f"; not judged: {', '.join(unjudged)}"
    return DriftReport(
        drifted=dataset_drifted,
        share_drifted=share,
        n_drifted=len(drifted_names),
        reason=reason,
        method=options.describe(),
        features=features,
        n_reference_rows=n_reference_rows,
        n_current_rows=n_current_rows,
        ignored_columns=tuple(ignored_columns),
    )
