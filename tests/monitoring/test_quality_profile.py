"""Tests for mlgate.monitoring.quality.profile: what is learnt, refused, and round-tripped."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgate.errors import DataError, ProfileError
from mlgate.monitoring.quality.profile import PROFILE_VERSION, QualityProfile


def reference(n: int = 2000, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 2.0, n)
    return {
        "x": x,
        "count": rng.poisson(3, n).astype(np.int64),
        "city": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
        "y": np.where(x + rng.normal(0, 0.5, n) > 10, "hi", "lo").astype(object),
    }


def test_fit_learns_schema_ranges_categories_and_label() -> None:
    profile = QualityProfile.fit(reference(), label="y")
    assert profile.kinds == {
        "x": "numeric",
        "count": "numeric",
        "city": "categorical",
        "y": "categorical",
    }
    assert profile.required == ("x", "count", "city", "y")
    x = profile.numeric["x"]
    assert x.count == 2000 and x.missing == 0
    assert x.low is not None and x.high is not None and x.iqr is not None
    q001, q999 = np.quantile(reference()["x"], [0.001, 0.999])
    assert x.low == pytest.approx(q001 - 0.5 * x.iqr)
    assert x.high == pytest.approx(q999 + 0.5 * x.iqr)
    assert x.out_of_range_rate < 0.002
    assert x.median == pytest.approx(10.0, abs=0.2)
    assert x.scale == pytest.approx(2.0, rel=0.1) and x.scale_method == "mad"
    assert 0 <= x.outlier_rate < 0.005
    city = profile.categorical["city"]
    assert set(city.categories) == {"a", "b", "c"} and sum(city.categories.values()) == 2000
    assert city.unseen_rate == 0.0 and not city.truncated
    assert profile.label is not None
    assert set(profile.label.counts) == {"hi", "lo"}
    assert profile.label.features == ("x", "count")
    assert len(profile.label.sample) == 2000 and profile.label.suspect_rate is not None


def test_kinds_override_and_integer_codes_as_categories() -> None:
    profile = QualityProfile.fit(reference(), kinds={"count": "categorical"})
    assert profile.kinds["count"] == "categorical"
    assert set(profile.categorical["count"].categories) <= {str(i) for i in range(20)}


def test_good_turing_unseen_rate_and_category_cap() -> None:
    values = np.array(["a"] * 90 + ["b"] * 5 + [f"once{i}" for i in range(5)], dtype=object)
    profile = QualityProfile.fit({"c": values})
    assert profile.categorical["c"].unseen_rate == pytest.approx(5 / 100)
    capped = QualityProfile.fit({"c": values}, max_categories=2)
    assert capped.categorical["c"].categories == {"a": 90, "b": 5}
    assert capped.categorical["c"].truncated
    assert capped.categorical["c"].unseen_rate == pytest.approx(5 / 100)


def test_constant_and_mostly_constant_columns_get_defined_scales() -> None:
    profile = QualityProfile.fit(
        {"const": np.full(200, 4.0), "zeros": np.r_[np.zeros(190), np.arange(1.0, 11.0)]}
    )
    const = profile.numeric["const"]
    assert (const.low, const.high, const.scale, const.scale_method) == (4.0, 4.0, 0.0, "constant")
    assert profile.numeric["zeros"].scale_method == "meanad"
    assert profile.numeric["zeros"].scale is not None and profile.numeric["zeros"].scale > 0


@pytest.mark.parametrize(
    ("frame", "kwargs", "match"),
    [
        ({"x": np.zeros(0)}, {}, "no rows"),
        ({"x": np.array([1.0, np.inf])}, {}, "infinite"),
        ({"x": np.array([1.0, "a"], dtype=object)}, {"kinds": {"x": "numeric"}}, "another type"),
        ({"c": np.array(["a", 3], dtype=object)}, {}, "another type"),
        ({"x": np.zeros(3)}, {"label": "y"}, "label names column 'y'"),
        ({"x": np.zeros(3)}, {"required": ["z"]}, "required names column 'z'"),
        ({"x": np.zeros(3)}, {"kinds": {"x": "ordinal"}}, "must be one of"),
        ({"x": np.zeros(3), "y": np.arange(3.0)}, {"kinds": {"z": "numeric"}}, "lacks"),
        ({"x": np.zeros(200), "y": np.arange(200.0)}, {"label": "y"}, "class labels"),
        ({"x": np.array(["2020-01-01"], dtype="datetime64[D]")}, {}, "neither numeric"),
    ],
)
def test_fit_refuses_bad_references(
    frame: dict[str, np.ndarray], kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(DataError, match=match):
        QualityProfile.fit(frame, **kwargs)  # type: ignore[arg-type]


def test_fit_refuses_bad_parameters() -> None:
    for kwargs in ({"range_margin_iqr": -1.0}, {"outlier_z": 0.0}, {"max_categories": 0}):
        with pytest.raises(ValueError):
            QualityProfile.fit(reference(50), **kwargs)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        QualityProfile.fit(reference(50), required="x")


def test_labels_without_numeric_features_or_rows_say_why_flip_is_off() -> None:
    two = np.array(["a", "b"] * 100, dtype=object)
    cats = QualityProfile.fit({"c": two, "y": two[::-1].copy()}, label="y")
    assert cats.label is not None and cats.label.suspect_rate is None
    assert "no numeric feature" in cats.label.note
    tiny = QualityProfile.fit({"x": np.arange(5.0), "y": np.array([0.0, 1, 0, 1, 0])}, label="y")
    assert tiny.label is not None and tiny.label.counts == {"0": 3, "1": 2}
    assert "needs more than 10" in tiny.label.note


def test_sample_size_zero_keeps_no_rows_but_measures_the_base_rate() -> None:
    profile = QualityProfile.fit(reference(), label="y", label_sample_size=0)
    assert profile.label is not None
    assert profile.label.sample == () and profile.label.suspect_rate is not None
    with pytest.raises(ValueError):
        QualityProfile.fit(reference(), label="y", label_sample_size=5)


def _frames() -> st.SearchStrategy[tuple[dict[str, np.ndarray], bool]]:
    values = st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False))
    words = st.one_of(st.none(), st.sampled_from(["a", "b", "ç", "", "a b"]))
    labels = st.sampled_from(["p", "q", None])

    @st.composite
    def build(draw: st.DrawFn) -> tuple[dict[str, np.ndarray], bool]:
        n = draw(st.integers(1, 40))
        x = [draw(values) for _ in range(n)]
        cat = [draw(words) for _ in range(n)]
        frame = {
            "x": np.array([np.nan if v is None else v for v in x], dtype=np.float64),
            "cat": np.array(cat, dtype=object),
            "y": np.array([draw(labels) for _ in range(n)], dtype=object),
        }
        return frame, draw(st.booleans())

    return build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_frames())
def test_profile_json_round_trip(case: tuple[dict[str, np.ndarray], bool]) -> None:
    frame, with_label = case
    profile = QualityProfile.fit(frame, label="y" if with_label else None)
    text = json.dumps(profile.to_json(), allow_nan=False)
    assert QualityProfile.from_json(json.loads(text)) == profile


def test_round_trip_of_a_full_profile_with_a_neighbour_sample() -> None:
    profile = QualityProfile.fit(reference(300), label="y")
    restored = QualityProfile.from_json(json.loads(json.dumps(profile.to_json())))
    assert restored == profile
    assert restored.label is not None and profile.label is not None
    np.testing.assert_array_equal(restored.label.sample_points, profile.label.sample_points)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.update(version=PROFILE_VERSION + 1), "version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.pop("numeric"), "profile.numeric must be present"),
        (lambda d: d["numeric"]["x"].update(count=-1), "non-negative integer"),
        (lambda d: d["numeric"]["x"].update(low="0"), "a number"),
        (lambda d: d["numeric"].pop("x"), "exactly the columns"),
        (lambda d: d["kinds"].update(x="text"), "must be one of"),
        (lambda d: d.update(required=["nope"]), "required"),
        (lambda d: d.update(duplicate_curve=[[1, 2, 3]]), "bad point"),
        (lambda d: d["label"].update(sample=[[1.0]]), "must have 2 values"),
        (lambda d: d["label"].update(sample_labels=[]), "inconsistent"),
        (lambda d: d["categorical"]["city"].update(truncated=1), "true or false"),
    ],
)
def test_from_json_refuses_corrupt_profiles(edit: object, match: str) -> None:
    data = json.loads(json.dumps(QualityProfile.fit(reference(200), label="y").to_json()))
    edit(data)  # type: ignore[operator]
    with pytest.raises(ProfileError, match=match):
        QualityProfile.from_json(data)
    with pytest.raises(ProfileError, match="JSON object"):
        QualityProfile.from_json([1, 2])
