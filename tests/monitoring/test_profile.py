"""Reference profiles: fitting, JSON round trips, files, and the grid approximation bound."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlgate.errors import DataError, ProfileError
from mlgate.monitoring.drift import compare, compare_profile
from mlgate.monitoring.profile import (
    PROFILE_FORMAT_VERSION,
    CategoricalProfile,
    NumericProfile,
    ReferenceProfile,
    fit_profile,
    load_profile,
    save_profile,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

numbers = st.one_of(
    st.floats(-1e6, 1e6),
    st.integers(-3, 3).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
labels = st.one_of(st.none(), st.sampled_from(["a", "b", "ç", "", "long label"]))


@st.composite
def frames(draw: st.DrawFn) -> dict[str, np.ndarray]:
    n = draw(st.integers(1, 40))
    frame: dict[str, np.ndarray] = {}
    for i in range(draw(st.integers(1, 3))):
        frame[f"num{i}"] = np.array(draw(st.lists(numbers, min_size=n, max_size=n)))
    for i in range(draw(st.integers(0, 2))):
        frame[f"cat{i}"] = np.array(draw(st.lists(labels, min_size=n, max_size=n)), dtype=object)
    return frame


@settings(max_examples=150, deadline=None)
@given(frames(), st.integers(2, 12), st.integers(2, 15))
def test_profile_json_round_trip(frame: dict[str, np.ndarray], bins: int, grid: int) -> None:
    kinds = {name: "categorical" for name in frame if name.startswith("cat")}
    profile = fit_profile(frame, kinds, bins, grid_size=grid, created_at=WHEN)  # type: ignore[arg-type]
    text = json.dumps(profile.to_json(), allow_nan=False)
    assert ReferenceProfile.from_json(json.loads(text)) == profile


def test_numeric_profile_contents() -> None:
    values = np.array([3.0, 1.0, np.nan, 2.0, 2.0, 10.0, np.inf])
    profile = fit_profile({"x": values}, bins=4, created_at=WHEN)
    x = profile.features["x"]
    assert isinstance(x, NumericProfile)
    finite = np.array([1.0, 2.0, 2.0, 3.0, 10.0])
    assert (x.count, x.missing, x.neg_inf, x.pos_inf, x.finite) == (6, 1, 0, 1, 5)
    assert (x.min, x.max, x.median) == (1.0, 10.0, 2.0)
    assert x.mean == pytest.approx(finite.mean()) and x.std == pytest.approx(finite.std())
    assert x.mad == 1.0
    assert sum(x.bin_counts) == 6 and len(x.bin_counts) == len(x.edges) + 1
    assert x.grid == tuple(finite) and x.grid_is_sample and x.ks_error == 0.0
    assert profile.kinds == {"x": "numeric"} and profile.n_rows == 7


def test_categorical_profile_contents() -> None:
    column = np.array(["b", "a", None, "b", float("nan")], dtype=object)
    profile = fit_profile({"c": column}, created_at=WHEN)
    c = profile.features["c"]
    assert isinstance(c, CategoricalProfile)
    assert (c.count, c.missing, dict(c.frequencies)) == (3, 2, {"a": 1, "b": 2})
    assert profile.kinds == {"c": "categorical"}


def test_profile_of_extreme_values_warns_nothing() -> None:
    # filterwarnings=error would turn any numpy overflow into a failure here.
    for values in (np.array([-1.7e308, 1.7e308, 0.0] * 500), np.array([-1.7e308, 1.7e308] * 800)):
        profile = fit_profile({"x": values}, created_at=WHEN)
        x = profile.features["x"]
        assert isinstance(x, NumericProfile)
        assert x.mean is None or math.isfinite(x.mean)
        assert (
            ReferenceProfile.from_json(json.loads(json.dumps(profile.to_json(), allow_nan=False)))
            == profile
        )
        report = compare({"x": values}, {"x": values * 0.5})
        json.dumps(report.to_json(), allow_nan=False)
        json.dumps(compare_profile(profile, {"x": values * 0.5}).to_json(), allow_nan=False)


def test_fit_profile_refuses_what_it_cannot_profile() -> None:
    with pytest.raises(DataError, match="empty reference"):
        fit_profile({"x": np.array([], dtype=float)})
    with pytest.raises(DataError, match="empty reference"):
        fit_profile({})
    with pytest.raises(DataError, match="does not have"):
        fit_profile({"x": np.arange(3.0)}, {"y": "numeric"})
    with pytest.raises(DataError, match="must be 'numeric' or 'categorical'"):
        fit_profile({"x": np.arange(3.0)}, {"x": "ordinal"})  # type: ignore[dict-item]


# --- files ----------------------------------------------------------------------------------


def _profile() -> ReferenceProfile:
    rng = np.random.default_rng(0)
    frame = {"x": rng.normal(size=3000), "c": np.array(["u", "v"] * 1500, dtype=object)}
    return fit_profile(frame, created_at=WHEN)


def test_save_and_load_profile(tmp_path: Path) -> None:
    profile = _profile()
    target = tmp_path / "models" / "churn" / "3" / "profile.json"
    assert save_profile(profile, target) == target
    assert load_profile(target) == profile
    save_profile(profile, target)  # replacing an existing file is fine
    assert sorted(p.name for p in target.parent.iterdir()) == ["profile.json"]  # no temp left
    assert json.loads(target.read_text())["format_version"] == PROFILE_FORMAT_VERSION


def _corrupt(data: dict[str, object], feature: str, **changes: object) -> dict[str, object]:
    copy = json.loads(json.dumps(data))
    copy["features"][feature].update(changes)
    return copy


def test_corrupt_and_unknown_profiles_raise_profile_error(tmp_path: Path) -> None:
    good = _profile().to_json()
    cases: dict[str, object] = {
        "version": {**good, "format_version": 2},
        "format": {**good, "format": "something else"},
        "header": {k: v for k, v in good.items() if k != "n_rows"},
        "counts": _corrupt(good, "x", bin_counts=[1, 2]),
        "negative": _corrupt(good, "c", frequencies={"u": -1, "v": 1501}),
        "edges": _corrupt(good, "x", edges=[1.0, 0.0] + [0.0] * 7),
        "kind": _corrupt(good, "x", kind="ordinal"),
        "sum": _corrupt(good, "c", count=7),
        "grid": _corrupt(good, "x", grid_is_sample="yes"),
        "list": [1, 2, 3],
    }
    for label, data in cases.items():
        path = tmp_path / f"{label}.json"
        path.write_text(json.dumps(data))
        with pytest.raises(ProfileError):
            load_profile(path)
    (tmp_path / "truncated.json").write_text(json.dumps(good)[:200])
    with pytest.raises(ProfileError, match="not valid JSON"):
        load_profile(tmp_path / "truncated.json")
    with pytest.raises(ProfileError, match="version 2 is not supported"):
        ReferenceProfile.from_json(cases["version"])
    with pytest.raises(ProfileError, match="no reference profile"):
        load_profile(tmp_path / "absent.json")
    with pytest.raises(ProfileError, match="cannot read"):
        load_profile(tmp_path)


# --- the grid approximation -----------------------------------------------------------------


def _reference_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    with_inf = rng.normal(size=n)
    with_inf[:50] = np.inf
    with_inf[50:80] = -np.inf
    return {
        "normal": rng.normal(size=n),
        "heavy": rng.standard_t(2, size=n),
        "discrete": rng.poisson(3, size=n).astype(float),
        "skewed": rng.lognormal(0, 1, size=n),
        "with_inf": with_inf,
    }


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.3])
def test_profile_ks_and_wasserstein_stay_within_the_stored_bounds(shift: float) -> None:
    rng = np.random.default_rng(int(shift * 100))
    ref = _reference_columns(rng, 50_000)
    cur = {
        name: values[rng.permutation(values.size)[:8000]] + shift for name, values in ref.items()
    }
    profile = fit_profile(ref)
    exact, approx = compare(ref, cur), compare_profile(profile, cur)
    for name, feature in profile.features.items():
        assert isinstance(feature, NumericProfile)
        assert len(feature.grid) == 1001 and not feature.grid_is_sample
        e, a = exact.features[name], approx.features[name]
        assert e.ks is not None and a.ks is not None
        assert abs(e.ks.statistic - a.ks.statistic) <= feature.ks_error + 1e-12
        assert feature.ks_error <= 0.5 / 1000 + 2.0 / 50_000  # the documented size
        assert e.wasserstein is not None and a.wasserstein is not None
        assert abs(e.wasserstein - a.wasserstein) <= feature.wasserstein_error + 1e-12
        assert (a.psi, a.js, a.chi2) == (e.psi, e.js, e.chi2)
    normal = profile.features["normal"]
    assert isinstance(normal, NumericProfile) and normal.wasserstein_error < 0.01


def test_a_small_reference_is_stored_whole_and_compares_exactly() -> None:
    rng = np.random.default_rng(4)
    ref = {"x": rng.normal(size=800)}
    cur = {"x": rng.normal(0.1, size=3000)}
    profile = fit_profile(ref)
    x = profile.features["x"]
    assert isinstance(x, NumericProfile) and x.grid_is_sample
    assert (x.ks_error, x.wasserstein_error) == (0.0, 0.0)
    e, a = compare(ref, cur).features["x"], compare_profile(profile, cur).features["x"]
    assert e.ks == a.ks and e.wasserstein == pytest.approx(a.wasserstein, rel=1e-12)
