"""The HTML drift report: structure, escaping, odd features, plot data, and page weight."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlgate.monitoring.drift import DriftReport, compare, compare_profile
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.report import (
    CategoricalPlot,
    NoPlot,
    NumericPlot,
    deciding_value,
    plots_from_frames,
    plots_from_profile,
    render_html,
    write_html,
)

XSS = "<script>alert(1)</script>"
EVIL_CATEGORY = '<img src=x onerror="alert(2)">'
Frame = dict[str, npt.NDArray[Any]]


def frames(n: int = 300, seed: int = 0) -> tuple[Frame, Frame]:
    rng = np.random.default_rng(seed)
    reference: Frame = {
        XSS: rng.normal(0.0, 1.0, n),
        "plan": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
        "constant": np.full(n, 7.0),
        "empty": np.full(n, np.nan),
    }
    current: Frame = {
        XSS: rng.normal(1.0, 1.0, n),
        "plan": rng.choice(np.array(["a", "b", EVIL_CATEGORY], dtype=object), n),
        "constant": np.full(n, 7.0),
        "empty": np.full(n, np.nan),
    }
    return reference, current


def page_for(reference: Mapping[str, Any], current: Mapping[str, Any]) -> tuple[DriftReport, str]:
    report = compare(reference, current)
    plots = plots_from_frames(report, reference, current)
    return report, render_html(report, plots, reference_label=f"ref {XSS}.csv")


def test_page_structure_is_self_contained() -> None:
    report, page = page_for(*frames())
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<svg") == len(report.features) == 4
    assert page.count('<section class="feature"') == 4
    # No script, no external resource: only the SVG namespace URI is a URL.
    assert not re.search(r"<(script|link|img|iframe|object|embed)\b", page, re.IGNORECASE)
    assert set(re.findall(r"https?://[^\"' ]+", page)) == {"http://www.w3.org/2000/svg"}
    assert "Drift detected" in page
    for section in range(4):
        assert f'id="f{section}"' in page and f'href="#f{section}"' in page
    # Drifted features first: the summary's first row is the shifted column.
    first_row = page.split("<tbody>", 1)[1].split("</tr>", 1)[0]
    assert "&lt;script&gt;" in first_row and 'class="drifted"' in first_row


def test_every_user_string_is_escaped() -> None:
    _, page = page_for(*frames())
    assert XSS not in page and EVIL_CATEGORY not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&quot;alert(2)&quot;&gt;" in page
    assert "ref &lt;script&gt;" in page  # the file label too


def test_new_categories_are_flagged() -> None:
    reference, current = frames()
    report = compare(reference, current)
    plot = plots_from_frames(report, reference, current)["plan"]
    assert isinstance(plot, CategoricalPlot)
    flags = dict(zip(plot.categories, plot.new, strict=True))
    assert flags == {"a": False, "b": False, "c": False, EVIL_CATEGORY: True}
    assert sum(plot.reference) == pytest.approx(1.0) and sum(plot.current) == pytest.approx(1.0)
    shares = dict(zip(plot.categories, plot.current, strict=True))
    assert shares["c"] == 0.0 and shares[EVIL_CATEGORY] > 0.2
    page = render_html(report, plots_from_frames(report, reference, current))
    assert "(new)" in page and 'class="new"' in page


def test_many_categories_fold_into_other() -> None:
    rng = np.random.default_rng(1)
    reference = {"c": np.array([f"k{i}" for i in rng.integers(0, 60, 2000)], dtype=object)}
    current = {"c": np.array([f"k{i}" for i in rng.integers(30, 90, 2000)], dtype=object)}
    report = compare(reference, current)
    plot = plots_from_frames(report, reference, current)["c"]
    assert isinstance(plot, CategoricalPlot)
    assert len(plot.categories) == 20 and plot.other_count == 70
    assert plot.other_new == sum(1 for i in range(60, 90) if f"k{i}" not in plot.categories)
    assert sum(plot.reference) + plot.other_reference == pytest.approx(1.0)
    assert sum(plot.current) + plot.other_current == pytest.approx(1.0)
    # 21 categories show whole: an "other" bar holding one category would hide it.
    small = {"c": np.array([f"k{i}" for i in range(21)] * 5, dtype=object)}
    whole = plots_from_frames(compare(small, small), small, small)["c"]
    assert isinstance(whole, CategoricalPlot)
    assert len(whole.categories) == 21 and whole.other_count == 0


def test_constant_column_gets_a_bin_around_its_value() -> None:
    reference, current = frames()
    report = compare(reference, current)
    plot = plots_from_frames(report, reference, current)["constant"]
    assert isinstance(plot, NumericPlot)
    assert plot.edges[0] < 7.0 < plot.edges[-1]
    assert max(plot.reference) == 1.0 and max(plot.current) == 1.0
    assert report.features["constant"].status == "constant"
    moved = {"constant": np.full(100, 9.0)}
    other = plots_from_frames(
        compare({"constant": np.full(100, 7.0)}, moved), {"constant": np.full(100, 7.0)}, moved
    )
    plot = other["constant"]
    assert isinstance(plot, NumericPlot)
    assert plot.reference[0] == 1.0 and plot.current[-1] == 1.0


def test_all_missing_and_absent_columns_say_why_there_is_no_plot() -> None:
    reference, current = frames()
    del current["plan"]
    report = compare(reference, current)
    plots = plots_from_frames(report, reference, current)
    assert plots["empty"] == NoPlot("nothing to plot: the reference has no finite values")
    assert isinstance(plots["plan"], NoPlot) and "absent" in plots["plan"].reason
    page = render_html(report, plots)
    assert page.count("<svg") == 4
    assert "nothing to plot: the reference has no finite values" in page
    assert "all_missing" in page and "missing_column" in page


def test_infinities_are_left_out_of_the_plot_and_counted() -> None:
    values = np.concatenate([np.linspace(0.0, 1.0, 98), [np.inf, -np.inf]])
    frame = {"x": values}
    report = compare(frame, frame)
    plot = plots_from_frames(report, frame, frame)["x"]
    assert isinstance(plot, NumericPlot)
    assert sum(plot.reference) + sum(plot.below) / 2 + sum(plot.above) / 2 == pytest.approx(1.0)
    assert "infinite (ref / cur)" in render_html(report, {"x": plot})
    huge = {"x": np.r_[np.full(30, -1.7e308), np.full(30, 1.7e308)]}
    span = plots_from_frames(compare(huge, huge), huge, huge)["x"]
    assert span == NoPlot("nothing to plot: the values span more than a float can hold")


def test_profile_plots_match_frame_plots() -> None:
    # Up to 1,001 values the profile keeps the sample: the same plots, to rounding.
    reference, current = frames()
    del reference["empty"], current["empty"]
    profile = fit_profile(reference)
    report = compare_profile(profile, current)
    from_profile = plots_from_profile(report, profile, current)
    from_frames = plots_from_frames(compare(reference, current), reference, current)
    assert from_profile["plan"] == from_frames["plan"]
    for name in (XSS, "constant"):
        ours, theirs = from_profile[name], from_frames[name]
        assert isinstance(ours, NumericPlot) and isinstance(theirs, NumericPlot)
        for field in ("edges", "reference", "current", "below", "above", "ecdf_reference"):
            assert np.allclose(getattr(ours, field), getattr(theirs, field), rtol=0, atol=1e-12)
    # Beyond it the grid stands in for the data: on the same bins, each share within twice
    # the profile's KS bound (its ECDF is within ks_error of the data's everywhere).
    rng = np.random.default_rng(3)
    big = {"x": rng.lognormal(0.0, 1.0, 20_000)}
    later = {"x": rng.lognormal(0.2, 1.0, 5_000)}
    profile = fit_profile(big)
    approx = plots_from_profile(compare_profile(profile, later), profile, later)["x"]
    assert isinstance(approx, NumericPlot) and approx.approximate
    edges = np.asarray(approx.edges)

    def exact(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        counts, _ = np.histogram(values, bins=edges)
        return counts / values.size

    bound = 2 * profile.features["x"].ks_error  # type: ignore[union-attr]
    assert 0 < bound < 0.01
    assert np.abs(np.asarray(approx.reference) - exact(big["x"])).max() <= bound + 1e-12
    assert np.allclose(approx.current, exact(later["x"]), rtol=0, atol=1e-12)
    page = render_html(compare_profile(profile, later), {"x": approx})
    assert "quantile grid" in page


@settings(max_examples=40, deadline=None)
@given(
    arrays(
        np.float64,
        st.integers(1, 30),
        elements=st.floats(-1e300, 1e300) | st.sampled_from([np.nan, np.inf, -np.inf]),
    ),
    arrays(np.float64, st.integers(1, 30), elements=st.floats(-1e300, 1e300)),
)
def test_numeric_plot_shares_add_up(
    ref: npt.NDArray[np.float64], cur: npt.NDArray[np.float64]
) -> None:
    reference, current = {"x": ref}, {"x": cur}
    report = compare(reference, current)
    plot = plots_from_frames(report, reference, current)["x"]
    if not np.isfinite(ref).any():
        assert isinstance(plot, NoPlot)
        return
    if isinstance(plot, NoPlot):  # values spanning more than a float
        assert "span" in plot.reason
        return
    assert isinstance(plot, NumericPlot)
    for shares, below, above in (
        (plot.reference, plot.below[0], plot.above[0]),
        (plot.current, plot.below[1], plot.above[1]),
    ):
        assert min(shares) >= 0.0
        assert sum(shares) + below + above == pytest.approx(1.0)
    for ecdf in (plot.ecdf_reference, plot.ecdf_current):
        assert all(0.0 <= a <= b <= 1.0 for a, b in zip(ecdf, ecdf[1:], strict=False))
    assert "<svg" in render_html(report, {"x": plot})


def test_deciding_value_names_the_number_behind_each_verdict() -> None:
    reference, current = frames()
    reference["small"] = np.r_[np.arange(10.0), np.full(290, np.nan)]
    current["small"] = np.arange(300.0)
    report = compare(reference, current)
    shifted = report.features[XSS]
    assert shifted.drifted and deciding_value(shifted) == getattr(shifted, shifted.decided_by)
    steady = report.features["constant"]
    assert steady.decided_by == "ks" and deciding_value(steady) == steady.p_value_adjusted
    small = report.features["small"]
    assert small.status == "too_small" and deciding_value(small) == 10.0
    assert small.threshold == 50.0
    assert deciding_value(report.features["empty"]) is None


def test_page_weight_does_not_grow_with_rows(tmp_path: Path) -> None:
    """25 features (20 numeric, 5 with hundreds of categories) stay far under 1 MB."""

    def wide(n: int, seed: int) -> Frame:
        rng = np.random.default_rng(seed)
        frame: Frame = {f"num_{i:02d}": rng.normal(i * 0.01, 1.0, n) for i in range(20)}
        for i in range(5):
            codes = rng.integers(0, 400, n)
            frame[f"cat_{i}"] = np.array([f"category-{c}" for c in codes], dtype=object)
        return frame

    sizes = []
    for n in (2_000, 20_000):
        reference, current = wide(n, 1), wide(n, 2)
        report = compare(reference, current)
        page = render_html(report, plots_from_frames(report, reference, current))
        path = write_html(tmp_path / f"report-{n}.html", page)
        assert path.read_text(encoding="utf-8") == page
        sizes.append(path.stat().st_size)
    assert max(sizes) < 1_000_000
    assert abs(sizes[1] - sizes[0]) < 0.05 * sizes[0]
