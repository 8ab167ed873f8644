"""optimize_version end to end on a real SQLite workspace: register, reject, skip, ledger, rerun."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

import numpy as np
import onnxruntime
import pytest

from mlgate.errors import ConversionError, OptimizeError
from mlgate.ledger.events import digest_json
from mlgate.optimize import (
    BUILDERS,
    OPTIMIZED_EVENT,
    BuildInput,
    OptimizeReport,
    Tolerance,
    Tolerances,
    VariantBuilder,
    optimize_version,
)
from mlgate.workspace import Workspace
from tests.models import ACTOR, linear_classifier
from tests.optimize.conftest import (
    FAST,
    WIDTH,
    Trained,
    register_sklearn,
)
from tests.optimize.conftest import (
    rows_by_kind as _rows,
)
from tests.optimize.conftest import (
    run_optimize as _optimize,
)

QUANTIZED = ("onnx-int8-dynamic", "onnx-int8-static", "onnx-fp16")


def _bare(data: bytes, x: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def test_mlp_variants_registered_with_lineage_tags_and_parent_interface(
    workspace: Workspace, mlp: Trained
) -> None:
    parent = register_sklearn(workspace, "m", mlp.estimator)
    messages: list[str] = []
    report = _optimize(workspace, mlp, progress=messages.append)
    rows = _rows(report)
    assert rows["parent"]["version"] == 1 and rows["parent"]["accuracy_delta"] == 0.0
    assert {k: r["status"] for k, r in rows.items()} == {
        "parent": "parent",
        "onnx": "registered",
        **dict.fromkeys(QUANTIZED, "registered"),
    }
    assert any("converting to ONNX" in m for m in messages)
    for kind in ("onnx", *QUANTIZED):
        version = workspace.registry.get("m", rows[kind]["version"])
        assert version.flavor == "onnx" and version.lineage.parent_version == 1
        assert version.tags == {"optimized_from": "1", "optimization": kind}
        assert version.signature == parent.signature  # an endpoint can route between them
        assert version.metrics["label_agreement"] >= 0.99
        # independently: bare onnxruntime on the stored bytes against the sklearn model
        out = _bare(workspace.registry.read_artifact(version), mlp.x)
        agreement = np.mean(out["label"] == mlp.estimator.predict(mlp.x))
        if kind == "onnx":
            assert agreement == 1.0
            gap = np.abs(out["probabilities"] - mlp.estimator.predict_proba(mlp.x)).max()
            assert gap <= 1e-4
        else:
            assert agreement >= 0.99
        for key in ("size_bytes", "p50_us", "rows_per_s"):
            assert rows[kind][key] > 0 and np.isfinite(rows[kind][key])


def test_hgb_converts_and_inapplicable_kinds_are_skipped(
    workspace: Workspace, hgb: Trained
) -> None:
    register_sklearn(workspace, "m", hgb.estimator)
    holdout = hgb.x.copy()
    holdout[::11, 0] = np.nan  # the converted trees must route missing values like sklearn
    report = _optimize(workspace, hgb, holdout=holdout)
    rows = _rows(report)
    assert rows["onnx"]["status"] == "registered" and rows["onnx"]["accuracy_delta"] == 0.0
    assert rows["onnx"]["label_agreement"] == 1.0
    assert rows["onnx"]["max_probability_diff"] <= 1e-4
    skipped = {s["kind"]: s for s in report.to_json()["skipped"]}
    assert set(skipped) == set(QUANTIZED)
    assert all(s["status"] == "skipped" and s["reason"] for s in skipped.values())


def test_regressor_gets_an_onnx_version_with_rmse_delta(
    workspace: Workspace, ridge: Trained
) -> None:
    register_sklearn(workspace, "m", ridge.estimator)
    rows = _rows(_optimize(workspace, ridge, kinds=("onnx",)))
    assert rows["onnx"]["status"] == "registered"
    assert rows["onnx"]["accuracy_delta"] is None
    assert abs(rows["onnx"]["rmse_delta"]) < 1e-3
    version = workspace.registry.get("m", rows["onnx"]["version"])
    out = _bare(workspace.registry.read_artifact(version), ridge.x)["prediction"]
    expected = ridge.estimator.predict(ridge.x)
    assert np.abs(out - expected).max() <= 1e-4 * np.abs(expected).max()


def test_variant_outside_tolerance_is_rejected_and_not_registered(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    absurd = Tolerances(exact=Tolerance(max_probability_diff=1e-15))
    report = _optimize(workspace, mlp, kinds=("onnx",), tolerance=absurd)
    row = _rows(report)["onnx"]
    assert row["status"] == "rejected" and row["version"] is None
    assert "above the tolerance 1e-15" in row["reasons"][0]
    assert [v.version for v in workspace.registry.versions("m")] == [1]


def test_bad_calibration_schema_fails_before_anything_is_registered(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    with pytest.raises(
        OptimizeError, match=rf"calibration sample has shape \(5, 3\).*\[rows, {WIDTH}\]"
    ):
        _optimize(workspace, mlp, calibration=np.zeros((5, 3)))
    assert len(workspace.registry.versions("m")) == 1


def test_nan_holdout_for_a_parent_that_refuses_nan_says_so(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    holdout = mlp.x.copy()
    holdout[3, 2] = np.nan
    with pytest.raises(OptimizeError, match="the parent failed on the holdout .*NaN"):
        _optimize(workspace, mlp, holdout=holdout, calibration=mlp.x)
    with pytest.raises(OptimizeError, match="holdout has 1 infinite value"):
        _optimize(workspace, mlp, holdout=np.where(np.isnan(holdout), np.inf, holdout))


def test_onnx_parent_is_refused(workspace: Workspace) -> None:
    workspace.registry.register(
        "m", linear_classifier([[1.0, 0.0], [0.0, 1.0]], [0, 0]), actor=ACTOR
    )
    with pytest.raises(OptimizeError, match="is a 'onnx' model; optimize converts scikit-learn"):
        optimize_version(workspace, "m", 1, holdout=np.zeros((3, 2)), actor=ACTOR)


def test_unconvertible_estimator_is_a_conversion_error(workspace: Workspace) -> None:
    from sklearn.kernel_ridge import KernelRidge

    x = np.random.default_rng(0).normal(size=(120, 3))
    register_sklearn(workspace, "m", KernelRidge().fit(x, x[:, 0]))
    with pytest.raises(ConversionError, match="cannot convert KernelRidge"):
        optimize_version(workspace, "m", 1, holdout=x, actor=ACTOR, measure=FAST)


def test_unknown_kind_is_refused(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    with pytest.raises(OptimizeError, match=r"unknown optimization kind\(s\) \['int4'\]"):
        _optimize(workspace, mlp, kinds=("int4",))


def test_report_is_ledgered_and_a_rerun_registers_nothing_new(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    first = _optimize(workspace, mlp)
    with workspace.store.read() as conn:
        entry = workspace.log.entry(conn, first.ledger_seq).document()
    assert entry["kind"] == OPTIMIZED_EVENT
    assert entry["subject"] == {"model": "m", "version": 1}
    assert entry["digests"]["report"] == digest_json(first.record())
    assert entry["attributes"]["registered"] == "2,3,4,5"
    second = _optimize(workspace, mlp)
    assert [(r["kind"], r["version"], r["status"]) for r in second.to_json()["variants"][1:]] == [
        ("onnx", 2, "existing"),
        ("onnx-int8-dynamic", 3, "existing"),
        ("onnx-int8-static", 4, "existing"),
        ("onnx-fp16", 5, "existing"),
    ]
    assert len(workspace.registry.versions("m")) == 5
    assert second.ledger_seq is not None and second.ledger_seq > first.ledger_seq


def test_json_has_the_promised_shape(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    document = json.loads(json.dumps(_optimize(workspace, mlp, kinds=("onnx",)).to_json()))
    promised = {"version", "kind", "size_bytes", "p50_us", "rows_per_s", "accuracy_delta"}
    assert [row["kind"] for row in document["variants"]] == ["parent", "onnx"]
    assert all(promised <= set(row) for row in document["variants"])


def _ledgered(workspace: Workspace, report: OptimizeReport) -> dict[str, Any]:
    assert report.ledger_seq is not None
    with workspace.store.read() as conn:
        entry: dict[str, Any] = workspace.log.entry(conn, report.ledger_seq).document()
    assert entry["kind"] == OPTIMIZED_EVENT
    assert entry["digests"]["report"] == digest_json(report.record())
    return entry


# -- non-finite numbers and failures mid-run: the report is still ledgered ----------------


def test_fp16_overflow_is_rejected_and_the_report_ledgered(workspace: Workspace) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(7)
    x = rng.normal(size=(200, 4))
    y = x @ np.array([1.0, 2.0, 3.0, 4.0]) * 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = MLPRegressor(hidden_layer_sizes=(16,), max_iter=50, random_state=0).fit(x, y)
    register_sklearn(workspace, "m", model)
    holdout = x.copy()
    holdout[5] = 1e6  # float16 tops out at 65504: the variant answers inf on this row
    report = optimize_version(
        workspace, "m", 1, holdout=holdout, kinds=("onnx-fp16",), actor=ACTOR, measure=FAST
    )
    row = _rows(report)["onnx-fp16"]
    assert row["status"] == "rejected" and row["version"] is None
    assert (
        "NaN or infinite value(s) where the parent's are finite, the first at row 5"
        in (row["reasons"][0])
    )
    assert row["max_scaled_prediction_diff"] is None  # inf has no JSON spelling
    json.dumps(report.to_json(), allow_nan=False)
    assert _ledgered(workspace, report)["attributes"]["rejected"] == "onnx-fp16"


def test_a_builder_that_raises_is_failed_and_the_rest_registered(
    workspace: Workspace, mlp: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: BuildInput) -> bytes:
        raise RuntimeError("quantizer exploded")

    register_sklearn(workspace, "m", mlp.estimator)
    builders = {**BUILDERS, "onnx-int8-dynamic": VariantBuilder("onnx-int8-dynamic", broken)}
    with caplog.at_level(logging.ERROR, logger="mlgate.optimize.service"):
        report = _optimize(workspace, mlp, kinds=("onnx-int8-dynamic", "onnx"), builders=builders)
    assert [s.to_json() for s in report.skipped] == [
        {
            "kind": "onnx-int8-dynamic",
            "status": "failed",
            "reason": "RuntimeError: quantizer exploded",
        }
    ]
    assert _rows(report)["onnx"]["status"] == "registered"
    assert any(r.exc_info and "onnx-int8-dynamic" in r.getMessage() for r in caplog.records)
    assert _ledgered(workspace, report)["attributes"]["registered"] == "2"


def test_an_int8_variant_outside_tolerance_is_rejected_and_a_rerun_names_its_copy(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    kinds = ("onnx-int8-dynamic",)
    tight = Tolerances.with_bounds(max_probability_diff=1e-4)
    first = _rows(_optimize(workspace, mlp, kinds=kinds, tolerance=tight))["onnx-int8-dynamic"]
    assert first["status"] == "rejected" and first["version"] is None
    assert first["reasons"] == [
        f"probabilities differ by up to {first['max_probability_diff']:.3g}, "
        "above the tolerance 0.0001"
    ]
    assert len(workspace.registry.versions("m")) == 1
    loose = _rows(_optimize(workspace, mlp, kinds=kinds))["onnx-int8-dynamic"]
    assert (loose["status"], loose["version"]) == ("registered", 2)
    again = _rows(_optimize(workspace, mlp, kinds=kinds, tolerance=tight))["onnx-int8-dynamic"]
    assert again["status"] == "rejected" and again["version"] is None
    assert "already registered as version 2" in again["reasons"][-1]


# -- samples: size, caps, calibration split ------------------------------------------------


def test_too_small_a_holdout_is_refused(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    with pytest.raises(OptimizeError, match="holdout has 99 rows; at least 100"):
        _optimize(workspace, mlp, holdout=mlp.x[:99], labels=mlp.y[:99])


def test_static_int8_calibrates_on_the_first_quarter_and_is_judged_on_the_rest(
    workspace: Workspace, mlp: Trained
) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    split = _optimize(workspace, mlp, kinds=("onnx", "onnx-int8-static"))
    assert (split.holdout_rows, split.calibration_rows) == (450, 150)
    whole = _optimize(workspace, mlp, kinds=("onnx",))
    assert (whole.holdout_rows, whole.calibration_rows) == (600, None)
    given = _optimize(
        workspace, mlp, kinds=("onnx-int8-static",), calibration=np.tile(mlp.x, (3, 1))
    )
    assert (given.holdout_rows, given.calibration_rows) == (600, 1000)  # capped


def test_holdout_is_capped(workspace: Workspace, ridge: Trained) -> None:
    register_sklearn(workspace, "m", ridge.estimator)
    big = np.random.default_rng(1).normal(size=(10_050, WIDTH))
    report = _optimize(
        workspace, ridge, holdout=big, labels=ridge.estimator.predict(big), kinds=("onnx",)
    )
    assert report.holdout_rows == 10_000


def test_calibration_is_not_checked_for_kinds_that_are_skipped(
    workspace: Workspace, hgb: Trained
) -> None:
    register_sklearn(workspace, "m", hgb.estimator)
    holdout = hgb.x.copy()
    holdout[:, 0] = np.nan  # no complete row to calibrate on, but trees get no int8
    report = _optimize(workspace, hgb, holdout=holdout)
    assert _rows(report)["onnx"]["status"] == "registered"
    assert {s.kind for s in report.skipped} == set(QUANTIZED)
    assert report.calibration_rows is None


# -- labels that cannot score the parent are refused up front -------------------------------


def test_text_labels_for_integer_classes_are_refused(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    with pytest.raises(OptimizeError, match=r"labels are text .* classes are numbers \(\[0, 1\]\)"):
        _optimize(workspace, mlp, labels=np.where(mlp.y == 1, "yes", "no"))
    assert len(workspace.registry.versions("m")) == 1


def test_integer_labels_for_text_classes_are_refused(workspace: Workspace) -> None:
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(3).normal(size=(200, 4))
    y = np.where(x[:, 0] > 0, "yes", "no")
    register_sklearn(workspace, "m", LogisticRegression().fit(x, y))
    with pytest.raises(OptimizeError, match=r"labels are numbers .*\['no', 'yes'\]"):
        optimize_version(workspace, "m", 1, holdout=x, labels=(y == "yes").astype(int), actor=ACTOR)


def test_labels_mostly_outside_the_classes_are_refused(workspace: Workspace, mlp: Trained) -> None:
    register_sklearn(workspace, "m", mlp.estimator)
    with pytest.raises(
        OptimizeError,
        match=r"only 0% of the labels .* \(\[0, 1\]\); unknown values include \[8, 7\]",
    ):
        _optimize(workspace, mlp, labels=mlp.y + 7)


def test_text_or_multi_output_labels_for_a_regressor_are_refused(
    workspace: Workspace, ridge: Trained
) -> None:
    register_sklearn(workspace, "m", ridge.estimator)
    with pytest.raises(OptimizeError, match="regressor needs numeric targets"):
        _optimize(workspace, ridge, labels=ridge.y.astype(str), kinds=("onnx",))
    with pytest.raises(OptimizeError, match=r"shape \[300, 2\]; expected one per holdout row"):
        _optimize(workspace, ridge, labels=np.column_stack([ridge.y, ridge.y]), kinds=("onnx",))


# -- exact conversion of a perfect fit, and classifiers without probabilities ---------------


def test_perfect_fit_regressor_converts_despite_float32_rounding(workspace: Workspace) -> None:
    from sklearn.tree import DecisionTreeRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    y = x @ np.array([1.0, 2.0, 3.0, 4.0]) * 100 + 5
    register_sklearn(workspace, "m", DecisionTreeRegressor(random_state=0).fit(x, y))
    report = optimize_version(
        workspace, "m", 1, holdout=x, labels=y, kinds=("onnx",), actor=ACTOR, measure=FAST
    )
    assert report.variants[0].comparison is not None
    assert report.variants[0].comparison.parent_metrics["rmse"] == 0.0  # scored on its own rows
    assert _rows(report)["onnx"]["status"] == "registered", _rows(report)["onnx"]["reasons"]


def test_linear_svc_without_probabilities_is_optimised(workspace: Workspace) -> None:
    from sklearn.svm import LinearSVC

    x = np.random.default_rng(4).normal(size=(200, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    register_sklearn(workspace, "m", LinearSVC().fit(x, y))
    report = optimize_version(
        workspace, "m", 1, holdout=x, labels=y, kinds=("onnx",), actor=ACTOR, measure=FAST
    )
    assert _rows(report)["onnx"]["status"] == "registered"
