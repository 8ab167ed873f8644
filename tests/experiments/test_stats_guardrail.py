"""Guardrails: one-sided tests of harm beyond a tolerance."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sps
from statsmodels.stats import proportion as smp

from mlgate.errors import ExperimentInputError
from mlgate.experiments.stats import Moments, ProportionSummary, guardrail_test
from tests.experiments.test_stats_summaries import mean_from_moments


def test_mean_guardrail_without_tolerance_is_the_one_sided_welch_test() -> None:
    c, t = mean_from_moments(800, 120.0, 30.0), mean_from_moments(820, 124.0, 35.0)
    g = guardrail_test(c.moments(), t.moments(), harm="increase", use_t=True)
    ref = sps.ttest_ind_from_stats(
        124.0, 35.0, 820, 120.0, 30.0, 800, equal_var=False, alternative="greater"
    )
    assert g.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert g.status == "fail" and g.relative_change == pytest.approx(4 / 120)
    down = guardrail_test(t.moments(), c.moments(), harm="decrease", use_t=True)
    assert down.p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_proportion_guardrail_matches_statsmodels_wald_one_sided() -> None:
    c, t = ProportionSummary(5000, 50), ProportionSummary(5000, 78)
    g = guardrail_test(c.moments(), t.moments(), harm="increase")
    _, p = smp.test_proportions_2indep(
        78, 5000, 50, 5000, method="wald", compare="diff", alternative="larger"
    )
    assert g.p_value == pytest.approx(p, rel=1e-9)
    assert g.status == "fail"


def test_tolerance_absorbs_a_small_harm() -> None:
    c, t = Moments(100_000, 100.0, 400.0), Moments(100_000, 101.0, 400.0)  # 1% slower, certain
    assert guardrail_test(c, t, harm="increase").status == "fail"
    tolerant = guardrail_test(c, t, harm="increase", tolerance=0.02)
    assert tolerant.status == "pass" and tolerant.p_value is not None and tolerant.p_value > 0.99
    # Exactly at the tolerance the contrast is 0: p = 1/2.
    edge = guardrail_test(c, t, harm="increase", tolerance=0.01)
    assert edge.p_value == pytest.approx(0.5)
    # An improvement never fails a guardrail.
    assert guardrail_test(t, c, harm="increase").status == "pass"


def test_errors_appearing_from_a_zero_control_rate_can_fail() -> None:
    g = guardrail_test(
        ProportionSummary(2000, 0).moments(), ProportionSummary(2000, 30).moments(), harm="increase"
    )
    assert g.status == "fail" and g.relative_change is None


def test_not_enough_data_is_not_a_pass() -> None:
    g = guardrail_test(Moments(1, 1.0, math.nan), Moments(10, 2.0, 1.0), harm="increase")
    assert g.status == "not_enough_data" and g.p_value is None
    flat = guardrail_test(Moments(10, 0.0, 0.0), Moments(10, 0.0, 0.0), harm="increase")
    assert flat.status == "not_enough_data"


@pytest.mark.parametrize(
    ("harm", "tolerance"), [("up", 0.0), ("increase", -0.1), ("increase", math.nan)]
)
def test_bad_guardrail_settings(harm: str, tolerance: float) -> None:
    with pytest.raises(ExperimentInputError):
        guardrail_test(Moments(10, 1.0, 1.0), Moments(10, 1.0, 1.0), harm=harm, tolerance=tolerance)  # type: ignore[arg-type]
