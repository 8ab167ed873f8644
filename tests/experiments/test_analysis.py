"""The analysis document: the promised interface, checked against independent computations."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from mlgate.errors import ExperimentInputError
from mlgate.experiments.analysis import analyze_document
from mlgate.experiments.stats import Guardrail, MeanSummary, ProportionSummary, analyze

EXAMPLE: dict[str, Any] = {
    "kind": "mean",
    "difference": "relative",
    "method": "frequentist",
    "alpha": 0.05,
    "weights": {"control": 0.5, "treatment": 0.5},
    "variants": {
        "control": {"n": 3407, "sum": 1396.87, "sum_squares": 52377.97},
        "treatment": {"n": 3461, "sum": 2422.7, "sum_squares": 134698.29},
    },
}

PROPORTIONS: dict[str, Any] = {
    "kind": "proportion",
    "weights": {"control": 0.5, "treatment": 0.5},
    "variants": {"control": {"n": 10_000, "sum": 1000}, "treatment": {"n": 10_050, "sum": 1120}},
}


def doc(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def strict(answer: dict[str, Any]) -> dict[str, Any]:
    """The answer survives a strict JSON round trip unchanged."""
    text = json.dumps(answer, allow_nan=False)
    assert json.loads(text) == answer
    return answer


def _example_stats() -> tuple[float, float, float, float, int, int]:
    out = []
    for v in EXAMPLE["variants"].values():
        n, s, ss = v["n"], v["sum"], v["sum_squares"]
        out += [s / n, math.sqrt((ss - s * s / n) / (n - 1))]
    return out[0], out[1], out[2], out[3], 3407, 3461


def test_the_contract_example_against_an_independent_computation() -> None:
    answer = strict(analyze_document(EXAMPLE))
    r = answer["results"]["treatment"]
    assert set(answer["results"]) == {"treatment"}
    assert {"lift", "ci", "p_value", "srm_p_value"} <= set(r)
    mc, sc, mt, st_, nc, nt = _example_stats()
    ref = sps.ttest_ind_from_stats(mt, st_, nt, mc, sc, nc, equal_var=False)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r["lift"] == pytest.approx(mt / mc - 1, rel=1e-12)
    vc, vt = sc**2 / nc, st_**2 / nt
    df = (vc + vt) ** 2 / (vc**2 / (nc - 1) + vt**2 / (nt - 1))
    half = sps.t.isf(0.025, df) * math.sqrt(vt / mc**2 + mt**2 * vc / mc**4)
    assert r["ci"] == pytest.approx([mt / mc - 1 - half, mt / mc - 1 + half], rel=1e-9)
    assert r["srm_p_value"] == pytest.approx(sps.chisquare([3407, 3461]).pvalue, rel=1e-12)
    assert r["absolute"]["estimate"] == pytest.approx(mt - mc)
    assert r["significant"] is True and r["verdict"] == "significant"
    # The delta-method interval reaches below 0 although p = 0.02: said, not hidden.
    assert any("disagree" in reason for reason in r["reasons"])
    assert answer["blocked"] is False and answer["srm"]["passed"] is True


@pytest.mark.parametrize("method", ["frequentist", "sequential", "bayesian"])
@pytest.mark.parametrize("difference", ["absolute", "relative"])
def test_every_method_fills_the_interface(method: str, difference: str) -> None:
    for base in (EXAMPLE, PROPORTIONS):
        answer = strict(analyze_document(doc(base, method=method, difference=difference)))
        r = answer["results"]["treatment"]
        lo, hi = r["ci"]
        assert lo < r["lift"] < hi
        assert 0.0 <= r["p_value"] <= 1.0 and 0.0 <= r["srm_p_value"] <= 1.0
        if method == "bayesian":
            assert 0.0 <= r["chance_to_beat_control"] <= 1.0
            assert r["expected_loss"] >= 0.0 and r["credible_interval"] == r["ci"]


def test_bayesian_proportions_use_the_beta_posteriors() -> None:
    r = analyze_document(doc(PROPORTIONS, method="bayesian"))["results"]["treatment"]
    ax, bx, ay, by = 1121, 10_050 - 1120 + 1, 1001, 10_000 - 1000 + 1
    lo, hi = sps.beta.ppf([1e-12, 1 - 1e-12], ax, bx)
    chance, _ = integrate.quad(
        lambda x: sps.beta.pdf(x, ax, bx) * sps.beta.cdf(x, ay, by), lo, hi, limit=200
    )
    assert r["chance_to_beat_control"] == pytest.approx(chance, abs=1e-7)
    assert r["bayesian"]["model"] == "beta_binomial"
    assert r["p_value_kind"] == "fixed_horizon_reference"


def test_sequential_reports_the_always_valid_p_value() -> None:
    answer = analyze_document(doc(PROPORTIONS, method="sequential"))
    fixed = analyze_document(PROPORTIONS)["results"]["treatment"]
    r = answer["results"]["treatment"]
    assert r["p_value_kind"] == "always_valid" and r["test"] == "msprt"
    assert r["p_value"] > fixed["p_value"]
    assert r["ci"][0] < fixed["ci"][0] and fixed["ci"][1] < r["ci"][1]
    assert answer["sequential"]["mixing_sd"] == 0.05
    looser = analyze_document(doc(PROPORTIONS, method="sequential", mixing_sd=0.2))
    assert looser["results"]["treatment"]["p_value"] != r["p_value"]


def test_sample_ratio_mismatch_blocks_the_verdict() -> None:
    d = doc(PROPORTIONS)
    d["variants"]["treatment"]["n"] = 11_000
    answer = strict(analyze_document(d))
    r = answer["results"]["treatment"]
    assert answer["blocked"] is True and answer["verdict"] == "blocked_srm"
    assert r["verdict"] == "blocked_srm" and r["significant"] is None
    assert r["srm_p_value"] < 0.001 and "sample-ratio mismatch" in r["reasons"][0]
    assert r["p_value"] is not None  # the numbers stay, for diagnosis


def test_zero_weight_arm() -> None:
    d = doc(PROPORTIONS, weights={"control": 0.5, "treatment": 0.5, "off": 0.0})
    d["variants"]["off"] = {"n": 0, "sum": 0}
    answer = strict(analyze_document(d))
    assert answer["srm"]["passed"] and answer["srm"]["tested"] == ["control", "treatment"]
    assert answer["results"]["off"]["verdict"] == "not_enough_data"
    d["variants"]["off"] = {"n": 7, "sum": 1}
    stray = strict(analyze_document(d))
    assert stray["blocked"] and stray["srm"]["p_value"] == 0.0
    assert "weight 0" in stray["srm"]["reason"]


def test_missing_weights_assume_an_even_split_and_say_so() -> None:
    answer = analyze_document({k: v for k, v in EXAMPLE.items() if k != "weights"})
    assert answer["srm"]["weights_assumed"] is True
    assert any("even split" in note for note in answer["notes"])


def test_guardrails_in_the_document() -> None:
    d = doc(PROPORTIONS)
    d["guardrails"] = {
        "error_rate": {
            "kind": "proportion",
            "harm": "increase",
            "tolerance": 0.0,
            "variants": {
                "control": {"n": 10_000, "sum": 20},
                "treatment": {"n": 10_050, "sum": 60},
            },
        },
        "latency_ms": {
            "kind": "mean",
            "harm": "increase",
            "tolerance": 0.05,
            "variants": {
                "control": {
                    "n": 10_000,
                    "sum": 1_200_000,
                    "sum_squares": 1_200_000 * 120 + 9_999 * 900,
                },
                "treatment": {
                    "n": 10_050,
                    "sum": 10_050 * 121.0,
                    "sum_squares": 10_050 * 121.0**2 + 10_049 * 900,
                },
            },
        },
    }
    answer = strict(analyze_document(d))
    r = answer["results"]["treatment"]
    assert r["verdict"] == "guardrail_failed" and answer["verdict"] == "guardrail_failed"
    assert answer["guardrails"]["error_rate"]["treatment"]["status"] == "fail"
    assert answer["guardrails"]["latency_ms"]["treatment"]["status"] == "pass"
    assert r["guardrails"]["error_rate"]["p_value"] < 0.05


def test_cuped_in_the_document_matches_raw_data() -> None:
    rng = np.random.default_rng(8)
    variants, raw = {}, {}
    for name, lift in (("control", 0.0), ("treatment", 0.5)):
        x = rng.normal(50, 10, 4000)
        y = 0.9 * x + rng.normal(lift, 5, 4000)
        raw[name] = (x, y)
        covariate = {"sum": x.sum(), "sum_squares": x @ x, "sum_products": x @ y}
        variants[name] = {
            "n": 4000,
            "sum": float(y.sum()),
            "sum_squares": float(y @ y),
            "covariate": {k: float(v) for k, v in covariate.items()},
        }
    answer = strict(analyze_document({"kind": "mean", "variants": variants}))
    (xc, yc), (xt, yt) = raw["control"], raw["treatment"]
    theta = (np.cov(xc, yc)[0, 1] + np.cov(xt, yt)[0, 1]) / (xc.var(ddof=1) + xt.var(ddof=1))
    grand = (xc.sum() + xt.sum()) / 8000
    ref = sps.ttest_ind(yt - theta * (xt - grand), yc - theta * (xc - grand), equal_var=False)
    assert answer["cuped"]["theta"] == pytest.approx(theta, rel=1e-9)
    assert answer["results"]["treatment"]["p_value"] == pytest.approx(ref.pvalue, rel=1e-6)
    assert answer["cuped"]["variance_reduction"] > 0.5


def test_ratio_document() -> None:
    def ratio(n: int, clicks: float, sessions: float) -> dict[str, Any]:
        return {
            "n": n,
            "numerator": {"sum": clicks, "sum_squares": clicks * clicks / n * 1.5},
            "denominator": {"sum": sessions, "sum_squares": sessions * sessions / n * 1.2},
            "sum_products": clicks * sessions / n * 1.1,
        }

    d = {
        "kind": "ratio",
        "variants": {"a": ratio(5000, 9000.0, 20000.0), "b": ratio(5000, 9900.0, 20000.0)},
    }
    r = strict(analyze_document(d))["results"]["b"]
    assert r["lift"] == pytest.approx(0.045) and r["test"] == "z"


def test_not_enough_data_is_an_answer_not_a_verdict() -> None:
    cases = [
        ({"n": 0, "sum": 0, "sum_squares": 0}, {"n": 0, "sum": 0, "sum_squares": 0}),
        ({"n": 1, "sum": 3.0, "sum_squares": 9.0}, {"n": 2, "sum": 3.0, "sum_squares": 5.0}),
    ]
    for control, treatment in cases:
        d = doc(EXAMPLE, variants={"control": control, "treatment": treatment})
        r = strict(analyze_document(d))["results"]["treatment"]
        assert r["verdict"] == "not_enough_data" and r["significant"] is None
        assert r["lift"] is None and r["ci"] == [None, None] and r["p_value"] is None
        assert "at least 2" in r["reasons"][0]
    # Zero users in one arm while the other has thousands is a broken split first of all.
    d = doc(EXAMPLE)
    d["variants"]["control"] = {"n": 0, "sum": 0, "sum_squares": 0}
    r = analyze_document(d)["results"]["treatment"]
    assert r["verdict"] == "blocked_srm" and r["lift"] is None
    assert any("0 unit(s)" in reason for reason in r["reasons"])


def test_constant_arms() -> None:
    same = {"n": 100, "sum": 300.0, "sum_squares": 900.0}
    d = doc(EXAMPLE, variants={"control": same, "treatment": dict(same)}, weights=None)
    del d["weights"]
    r = strict(analyze_document(d))["results"]["treatment"]
    assert r["verdict"] == "not_enough_data" and r["p_value"] == 1.0 and r["lift"] == 0.0
    assert r["ci"] == [None, None] and "constant" in r["reasons"][0]
    d["variants"]["treatment"] = {"n": 100, "sum": 400.0, "sum_squares": 1600.0}
    r = analyze_document(d)["results"]["treatment"]
    assert r["verdict"] == "not_enough_data" and r["p_value"] is None and r["significant"] is None


def test_relative_lift_undefined_for_a_zero_control_is_null_with_a_reason() -> None:
    d = doc(PROPORTIONS, difference="relative")
    d["variants"]["control"] = {"n": 10_000, "sum": 0}
    r = strict(analyze_document(d))["results"]["treatment"]
    assert r["lift"] is None and r["ci"] == [None, None] and r["p_value"] < 1e-10
    assert "absolute" in r["reasons"][0]


def _with(path: tuple[str, ...], value: Any, base: dict[str, Any] = EXAMPLE) -> dict[str, Any]:
    d = copy.deepcopy(base)
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return d


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_with(("variants", "control", "n"), -5), "variants.control: n .* cannot be negative"),
        (_with(("variants", "control", "sum_squares"), 10.0), "variance negative"),
        (_with(("variants", "treatment", "sum"), 20_000, PROPORTIONS), "cannot exceed n"),
        (_with(("weights",), {"control": 0.5, "treatment": 0.6}), "sum to"),
        (_with(("weights",), {"control": 0.5, "other": 0.5}), "one weight per variant"),
        (
            _with(("weigths",), {"control": 0.5, "treatment": 0.5}),
            r"unknown key\(s\) \['weigths'\]",
        ),
        (_with(("variants", "control", "mean"), 1.0), r"variants.control: unknown key"),
        (
            _with(("variants",), {"control": {"n": 10, "sum": 1.0, "sum_squares": 1.0}}),
            "at least one treatment",
        ),
        (_with(("variants", "control", "sum"), math.nan), "finite"),
        (_with(("variants", "control", "sum_squares"), math.inf), "finite"),
        (_with(("variants", "control", "n"), True), "must be a number"),
        (_with(("alpha",), True), "must be a number"),
        (_with(("alpha",), 1.5), "alpha"),
        (_with(("kind",), "median"), "kind"),
        (_with(("method",), "magic"), "method"),
        (_with(("mixing_sd",), -1.0), "mixing_sd"),
        (_with(("seed",), 1.5), "seed"),
        (_with(("variants", "control", "sum_squares"), "52377.97"), "must be a number"),
        ({"variants": EXAMPLE["variants"]}, r"missing key\(s\) \['kind'\]"),
        (_with(("variants",), []), "must be a JSON object"),
    ],
)
def test_bad_documents_say_what_to_do(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(ExperimentInputError, match=message):
        analyze_document(bad)


def test_partial_covariates_are_refused() -> None:
    d = doc(EXAMPLE)
    d["variants"]["control"]["covariate"] = {"sum": 1.0, "sum_squares": 1.0, "sum_products": 1.0}
    with pytest.raises(ExperimentInputError, match="CUPED needs one in every variant"):
        analyze_document(d)


def test_typed_api_gives_the_same_answer() -> None:
    variants = {
        name: MeanSummary(v["n"], v["sum"], v["sum_squares"])
        for name, v in EXAMPLE["variants"].items()
    }
    a = analyze(variants, difference="relative", weights={"control": 0.5, "treatment": 0.5})
    assert a.to_json() == analyze_document(EXAMPLE)
    assert a.control == "control" and not a.blocked
    assert a.results["treatment"].p_value == pytest.approx(0.0202, abs=1e-4)
    one_arm = {"control": ProportionSummary(10, 1)}
    with pytest.raises(ExperimentInputError, match="same variants"):
        analyze(variants, guardrails=[Guardrail("err", "increase", one_arm)])
