"""optimize_version end to end on a real SQLite workspace: register, reject, skip, ledger, rerun."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnxruntime
import pytest

from mlgate.errors import ConversionError, OptimizeError
from mlgate.ledger.events import digest_json
from mlgate.optimize import (
    OPTIMIZED_EVENT,
    OptimizeReport,
    Tolerance,
    Tolerances,
    optimize_version,
)
from mlgate.workspace import Workspace
from tests.models import ACTOR, linear_classifier
from tests.optimize.conftest import FAST, WIDTH, Trained, register_sklearn

QUANTIZED = ("onnx-int8-dynamic", "onnx-int8-static", "onnx-fp16")


def _optimize(workspace: Workspace, trained: Trained, **kwargs: Any) -> OptimizeReport:
    options: dict[str, Any] = {
        "holdout": trained.x,
        "labels": trained.y,
        "actor": ACTOR,
        "measure": FAST,
    }
    options.update(kwargs)
    return optimize_version(workspace, "m", 1, **options)


def _rows(report: OptimizeReport) -> dict[str, dict[str, Any]]:
    return {row["kind"]: row for row in report.to_json()["variants"]}


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

    x = np.random.default_rng(0).normal(size=(40, 3))
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
