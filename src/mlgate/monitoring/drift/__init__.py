"""Batch drift: compare a current window with a reference, feature by feature and overall.

A feature has drifted when its test says the windows differ **and** the difference is big
enough to matter::

    drifted = p_adjusted <= alpha  AND  any(effect size >= its threshold)

Either half alone fails in practice. At a million rows a 0.02-sigma shift gives a KS
p-value of 3e-32 and matters to nobody; at 50 rows a PSI of 0.15 is what chance gives.

Defaults (``DriftOptions()``)
-----------------------------

===================  ==========================================  ===========================
                     numeric feature                             categorical feature
===================  ==========================================  ===========================
test (p-value)       two-sample Kolmogorov-Smirnov: exact        Pearson chi-square test of
                     distribution while both windows have        homogeneity on the 2 x K
                     <= 10,000 values, Smirnov's asymptotic      table of counts (two-sample,
                     form above (scipy's ``method="auto"``)      no Yates correction)
effect sizes         PSI >= PSI threshold, or Wasserstein-1 /    PSI >= PSI threshold, or
(any one suffices)   reference std >= 0.1                        Jensen-Shannon distance
                                                                 (base 2) >= JS threshold
bins                 10, at the reference's deciles              one per category, categories
                                                                 new in the current window
                                                                 included; sparse ones pooled
===================  ==========================================  ===========================

- ``alpha = 0.05``, Benjamini-Hochberg across the judged features (``correction``): with 20
  drift-free features, uncorrected tests flag at least one in ~64% of runs; BH in ~5%.
- PSI threshold = ``max(0.1, (1/n_ref + 1/n_cur) * chi2_{1-alpha}(B - 1))`` for B live
  bins: the PSI that chance alone stays under 95% of the time (the PSI's chi-square limit,
  Yurdakul & Naranjo 2020). From ~1,000 rows per window the conventional 0.1 rules; a
  fixed 0.1 fires on 98% of drift-free 50-row windows.
- JS threshold = ``max(0.1, sqrt((1/n_ref + 1/n_cur) * chi2_{1-alpha}(B - 1) / (8 ln 2)))``,
  the same noise level for the JS distance (JSD ~ PSI / 8 near zero; ``stats.js_threshold``).
  Wasserstein 0.1 = a tenth of a reference standard deviation, Evidently's default.
- Categorical cells expecting fewer than 5 counts (Cochran's rule) are pooled before the
  chi-square test, PSI, KL and JS: rare seen categories into one cell, rare new ones into
  another (``stats.pool_sparse``; the reason says how many were pooled; fewer than two
  cells left: p = 1, not drifted). Unpooled, a 2,000-category Zipf column called 9-15 of
  40 drift-free windows drifted; pooled, 0-3.
- ``min_samples = 50`` non-missing values per window (~5 expected per decile bin): below
  it the feature is ``too_small`` and not drifted, its statistics still reported.
- The dataset drifted when any feature did (``drift_share=None``); ``share_drifted`` is
  always reported, and ``drift_share=0.5`` gives Evidently's rule instead.
- Per feature, ``DriftOptions.tests`` can choose ``"psi"`` (p-value from the PSI's
  chi-square limit) or ``"chi2"`` (on the numeric bins) instead of the default.

In practice the p-value decides for small windows and the effect size for large ones.

Bad input: each gives a defined result
--------------------------------------

- **empty window** (no rows): status ``empty``, not drifted.
- **all values missing** in either window: ``all_missing``, not drifted.
- **fewer than min_samples values** (e.g. a 10-row reference): ``too_small``, not drifted;
  the reason gives both counts.
- **reference column absent from the current window**: ``missing_column``, not drifted
  (schema problems are the data-quality checks' verdict, not drift); current columns the
  reference lacks are listed in ``ignored_columns``.
- **constant reference**: ``constant``, judged as usual. Its bins are below / at / above
  the constant; Wasserstein / std is 0 if the current window sits on the same constant and
  infinite (JSON null, said in the reason) if not.
- **new category**: a bin of its own with reference count 0 (smoothed by the 0.5
  pseudo-count in PSI and KL); listed in ``new_categories`` with its share of the window.
- **infinities**: out-of-range values. They fall in the outer bins (PSI, KL, JS, chi2) and
  at the ends of the ECDFs (KS), are left out of Wasserstein (any infinity would make it
  infinite) and are counted in ``infinite_reference`` / ``infinite_current``.
- **NaN / None**: missing, never counted in any statistic; counted per window.
- **mixed types, or a column whose type does not fit its reference kind**: DataError
  naming the column and a sample of the offending values.

:func:`compare` uses the reference data; :func:`compare_profile` a fitted
:class:`~mlgate.monitoring.profile.ReferenceProfile`, with identical PSI, KL, JS and
chi-square, and KS and Wasserstein from the profile's quantile grid (errors bounded by
the profile's ``ks_error`` and ``wasserstein_error``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from functools import partial
from typing import Any

from mlgate.errors import DataError
from mlgate.monitoring._columns import FeatureKind, Frame, check_kinds, frame_columns
from mlgate.monitoring._encoded import codes_of
from mlgate.monitoring.drift._decide import MIN_SAMPLES, DriftOptions, Measured, decide
from mlgate.monitoring.drift._measure import Column, measure_against_profile, measure_column
from mlgate.monitoring.drift._pool import PARALLEL_MIN_VALUES, run_in_order
from mlgate.monitoring.drift._report import DriftReport, FeatureDrift, FeatureStatus, TestName
from mlgate.monitoring.profile import ReferenceProfile

__all__ = [
    "MIN_SAMPLES",
    "DriftOptions",
    "DriftReport",
    "FeatureDrift",
    "FeatureStatus",
    "TestName",
    "compare",
    "compare_profile",
]


def _check_tests(options: DriftOptions, features: Mapping[str, Any]) -> None:
    unknown = sorted(set(options.tests) - set(features))
    if unknown:
        raise ValueError(f"DriftOptions.tests names features the reference lacks: {unknown}")


def compare(
    reference_frame: Frame,
    current_frame: Frame,
    options: DriftOptions | None = None,
    *,
    kinds: Mapping[str, FeatureKind] | None = None,
    executor: Executor | None = None,
) -> DriftReport:
    """Judge every reference column for drift in the current window (see module docstring).

    Kinds are inferred from the reference's columns unless ``kinds`` names them. Features
    are measured on ``executor`` if given, else, for large windows, on a thread pool of
    compare's own (one thread per core); the report is the same either way.
    """
    options = options or DriftOptions()
    ref_columns, n_rows_ref = frame_columns(reference_frame, "reference")
    cur_columns, n_rows_cur = frame_columns(current_frame, "current window")
    overrides = check_kinds(kinds)
    unknown = sorted(set(overrides) - set(ref_columns))
    if unknown:
        raise DataError(f"kinds names columns the reference does not have: {unknown}")
    _check_tests(options, ref_columns)
    rows = (n_rows_ref, n_rows_cur)
    jobs: list[Callable[[], Measured]] = [
        partial(
            measure_column,
            Column(
                name,
                overrides.get(name),
                ref_raw,
                cur_columns.get(name),
                codes_of(reference_frame, name),
                codes_of(current_frame, name),
            ),
            rows,
            options,
        )
        for name, ref_raw in ref_columns.items()
    ]
    measured = run_in_order(jobs, executor, parallel=n_rows_ref + n_rows_cur >= PARALLEL_MIN_VALUES)
    ignored = [name for name in cur_columns if name not in ref_columns]
    return decide(
        measured,
        options,
        n_reference_rows=n_rows_ref,
        n_current_rows=n_rows_cur,
        ignored_columns=ignored,
    )


def compare_profile(
    profile: ReferenceProfile,
    current_frame: Frame,
    options: DriftOptions | None = None,
    *,
    executor: Executor | None = None,
) -> DriftReport:
    """:func:`compare` against a fitted profile instead of the reference data.

    The profile's own bins are used (``options.bins`` does not apply); KS and Wasserstein
    are approximations within the profile's stored error bounds. ``executor`` as in
    :func:`compare`.
    """
    options = options or DriftOptions()
    cur_columns, n_rows_cur = frame_columns(current_frame, "current window")
    _check_tests(options, profile.features)
    jobs: list[Callable[[], Measured]] = [
        partial(
            measure_against_profile,
            name,
            feature,
            profile,
            cur_columns.get(name),
            codes_of(current_frame, name),
            n_rows_cur,
            options,
        )
        for name, feature in profile.features.items()
    ]
    measured = run_in_order(jobs, executor, parallel=n_rows_cur >= PARALLEL_MIN_VALUES)
    ignored = [name for name in cur_columns if name not in profile.features]
    return decide(
        measured,
        options,
        n_reference_rows=profile.n_rows,
        n_current_rows=n_rows_cur,
        ignored_columns=ignored,
    )
