"""Trainer specs: parsing the ``training:`` mapping, resolving functions, the builtin's fit."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline

from mlgate.errors import LoopConfigError
from mlgate.loop.trainer import (
    BUILTIN_SKLEARN,
    ESTIMATORS,
    TrainerSpec,
    builtin_params,
    estimator_class,
    fit_builtin,
    parse_trainer,
    resolve_function,
)
from tests.loop import trainers_for_tests
from tests.loop.trainers_for_tests import make_frame, target

HGB = "HistGradientBoostingClassifier"


def test_builtin_defaults() -> None:
    spec = parse_trainer({"trainer": BUILTIN_SKLEARN, "estimator": HGB})
    assert spec == TrainerSpec(target=BUILTIN_SKLEARN, estimator=HGB, params={})
    assert (spec.time_budget_s, spec.seed, spec.scale) == (300.0, 0, False)
    assert spec.is_builtin and spec.module is None
    assert spec.name == HGB and spec.described == f"the built-in {HGB} trainer"


def test_full_builtin_and_function_specs() -> None:
    spec = parse_trainer(
        {
            "trainer": "builtin:sklearn",
            "estimator": "Ridge",
            "params": {"alpha": 0.5, "solver": "auto", "fit_intercept": True, "tol": None},
            "time_budget_s": 120,
            "seed": 7,
            "scale": True,
        }
    )
    assert spec.params == {"alpha": 0.5, "solver": "auto", "fit_intercept": True, "tol": None}
    assert isinstance(spec.time_budget_s, float) and spec.time_budget_s == 120.0
    assert (spec.seed, spec.scale) == (7, True)

    function = parse_trainer({"trainer": "my_pkg.train:fit", "params": {"depth": 3}})
    assert (function.estimator, function.module, function.is_builtin) == (
        None,
        "my_pkg.train",
        False,
    )
    assert function.described == "the trainer my_pkg.train:fit"
    assert parse_trainer({"trainer": "train:fit", "params": None}).params == {}
    # null reads as absent, so a function trainer can be merged over a builtin's mapping
    nulls = parse_trainer({"trainer": "train:fit", "estimator": None, "scale": None})
    assert (nulls.estimator, nulls.scale) == (None, False)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["builtin:sklearn"], "training: expected a mapping with `trainer`"),
        (None, "training: expected a mapping"),
        ({"trainer": "a:b", "epochs": 3}, "unknown key(s) epochs; allowed: trainer, estimator"),
        ({}, "training.trainer: expected `builtin:sklearn` or a function as `module:function`"),
        ({"trainer": "my_pkg.train"}, "training.trainer: expected"),
        ({"trainer": "1pkg:fit"}, "training.trainer: expected"),
        ({"trainer": "pkg:fit:more"}, "training.trainer: expected"),
        ({"trainer": "builtin:torch"}, "training.trainer: the only built-in trainer is"),
        ({"trainer": 3}, "found 3"),
        ({"trainer": BUILTIN_SKLEARN}, "training.estimator: the built-in trainer needs one of"),
        ({"trainer": BUILTIN_SKLEARN, "estimator": "SVC"}, f"{HGB}, LinearRegression"),
        ({"trainer": BUILTIN_SKLEARN, "estimator": ["Ridge"]}, "found ['Ridge']"),
        ({"trainer": "a:b", "estimator": "Ridge"}, "training.estimator: only `trainer: builtin"),
        ({"trainer": "a:b", "scale": True}, "training.scale: only"),
        ({"trainer": BUILTIN_SKLEARN, "estimator": HGB, "scale": "yes"}, "training.scale"),
        ({"trainer": "a:b", "params": [1, 2]}, "training.params: expected a mapping"),
        ({"trainer": "a:b", "params": {"depth": [3]}}, "training.params.depth: expected a str"),
        ({"trainer": "a:b", "params": {"lr": math.nan}}, "training.params.lr: expected a finite"),
        ({"trainer": "a:b", "params": {"max-depth": 3}}, "parameter names are identifiers"),
        ({"trainer": "a:b", "params": {1: 3}}, "parameter names are identifiers"),
        ({"trainer": "a:b", "time_budget_s": 0}, "training.time_budget_s: expected a positive"),
        ({"trainer": "a:b", "time_budget_s": -5.0}, "expected a positive"),
        ({"trainer": "a:b", "time_budget_s": math.inf}, "expected a positive"),
        ({"trainer": "a:b", "time_budget_s": 10**5000}, "up to 604800 (a week), found an int too"),
        ({"trainer": "a:b", "time_budget_s": "2m"}, "training.time_budget_s: expected seconds"),
        ({"trainer": "a:b", "time_budget_s": True}, "expected seconds"),
        ({"trainer": "a:b", "seed": -1}, "training.seed: expected an integer from 0 to 4294967295"),
        ({"trainer": "a:b", "seed": 2**32}, "training.seed"),
        ({"trainer": "a:b", "seed": 1.0}, "training.seed"),
        ({"trainer": "a:b", "seed": False}, "training.seed"),
    ],
)
def test_parse_errors_name_the_yaml_path(data: object, message: str) -> None:
    with pytest.raises(LoopConfigError) as caught:
        parse_trainer(data)
    assert message in str(caught.value)


def test_the_caller_names_where_the_mapping_is() -> None:
    with pytest.raises(LoopConfigError, match=r"^loops\[2\]\.training\.seed: "):
        parse_trainer({"trainer": "a:b", "seed": "x"}, where="loops[2].training")


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([10**400, -(10**400), 2**53])
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from([BUILTIN_SKLEARN, "pkg.mod:fit", HGB, "Ridge", "builtin:"])
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_KEY = st.sampled_from(["trainer", "estimator", "params", "time_budget_s", "seed", "scale"])


@given(
    st.dictionaries(_KEY | st.text(max_size=8), _JUNK | st.dictionaries(st.text(), _SCALARS))
    | _JUNK
)
def test_junk_yields_a_spec_or_a_config_error(data: Any) -> None:
    try:
        spec = parse_trainer(data)
    except LoopConfigError as exc:
        assert str(exc).startswith("training")
    else:
        assert parse_trainer(spec.to_json()) == spec


_FINITE = st.floats(allow_nan=False, allow_infinity=False)
_PARAMS = st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
    st.none() | st.booleans() | st.integers() | _FINITE | st.text(max_size=10),
    max_size=5,
)


@st.composite
def _specs(draw: st.DrawFn) -> TrainerSpec:
    builtin = draw(st.booleans())
    return TrainerSpec(
        target=BUILTIN_SKLEARN if builtin else draw(st.sampled_from(["m:f", "a.b_c.d:fit_2"])),
        estimator=draw(st.sampled_from(list(ESTIMATORS))) if builtin else None,
        params=draw(_PARAMS),
        time_budget_s=draw(st.floats(min_value=1e-3, max_value=7 * 24 * 3600)),
        seed=draw(st.integers(min_value=0, max_value=2**32 - 1)),
        scale=draw(st.booleans()) if builtin else False,
    )


@given(_specs())
def test_to_json_round_trips(spec: TrainerSpec) -> None:
    assert parse_trainer(spec.to_json()) == spec


def test_resolve_function() -> None:
    assert resolve_function(target("fail")) is trainers_for_tests.fail
    with pytest.raises(LoopConfigError, match="cannot import the trainer module 'no_such_pkg"):
        resolve_function("no_such_pkg.train:fit")
    with pytest.raises(LoopConfigError, match="has no function 'nope'"):
        resolve_function(target("nope"))
    with pytest.raises(LoopConfigError, match="has no function 'MODULE'"):
        resolve_function(target("MODULE"))  # a str attribute, not callable


def test_estimator_class_is_an_allow_list() -> None:
    assert estimator_class("RandomForestClassifier") is RandomForestClassifier
    for name in ("SVC", "os", None):
        with pytest.raises(LoopConfigError, match="unknown built-in estimator"):
            estimator_class(name)


def test_fit_builtin_seeds_scales_and_records_its_params() -> None:
    frame = make_frame(120)
    spec = TrainerSpec(
        BUILTIN_SKLEARN, "RandomForestClassifier", {"n_estimators": 5}, seed=11, scale=True
    )
    model = fit_builtin(spec, frame)
    assert isinstance(model, Pipeline)
    forest = model.steps[-1][1]
    assert (forest.random_state, forest.n_estimators) == (11, 5)
    params = builtin_params(spec, model)
    assert params["estimator"] == "RandomForestClassifier" and params["scale"] is True
    assert (params["random_state"], params["n_estimators"]) == (11, 5)
    assert all(v is None or isinstance(v, str | int | float | bool) for v in params.values())
    # object-typed int labels (as read from JSON) are classes 0 and 1, not "unknown"
    assert forest.classes_.tolist() == [0, 1]

    explicit = TrainerSpec(BUILTIN_SKLEARN, "RandomForestClassifier", {"random_state": 3})
    assert fit_builtin(explicit, frame).random_state == 3
    unseeded = fit_builtin(TrainerSpec(BUILTIN_SKLEARN, "LinearRegression", {}), make_frame(50))
    assert "random_state" not in unseeded.get_params()
    assert np.isfinite(unseeded.coef_).all()
