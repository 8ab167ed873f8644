"""``optimize_version``: build variants of a version, hold them to its answers, register the good.

For each requested kind the variant is built from the parent (the plain ONNX conversion)
or from that conversion (int8, float16), run on the holdout next to the parent, measured
through the runtime's own call, and then:

* registered as a new version of the same model (flavor ``onnx``, lineage
  ``parent_version``, tags ``optimized_from``/``optimization``, the comparison as metrics)
  when it is within tolerance, or reported as ``existing`` when a rerun produced bytes
  already registered (versions are content-addressed, so a rerun adds nothing);
* reported ``rejected`` with its reasons, and never registered, when it is not;
* listed as ``skipped`` when the kind does not apply (int8 on a tree ensemble) or
  ``failed`` when its builder raised: one kind's trouble does not cost the others.

One ``model.optimized`` ledger entry carries the digest of the whole report.

Kinds are a table of builders keyed by name (:data:`BUILDERS`), fixed at import like the
registry's flavors; PyTorch export and pruning add rows here.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mlgate.errors import DuplicateVersionError, MlgateError, OptimizeError
from mlgate.ledger.events import LedgerEvent, digest_json
from mlgate.optimize import quantize
from mlgate.optimize.compare import Tolerances, compare_outputs
from mlgate.optimize.convert import sklearn_to_onnx
from mlgate.optimize.measure import MeasureConfig, measure_model
from mlgate.optimize.report import OptimizeReport, SkippedKind, VariantResult
from mlgate.optimize.sample import check_sample
from mlgate.registry.flavors import LoadedModel, flavor_named
from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace

__all__ = [
    "BUILDERS",
    "DEFAULT_KINDS",
    "OPTIMIZED_EVENT",
    "BuildInput",
    "VariantBuilder",
    "optimize_version",
]

OPTIMIZED_EVENT = "model.optimized"
ONNX = "onnx"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildInput:
    """What a builder may use: the parent, its plain ONNX form, the calibration rows."""

    parent: ModelVersion
    onnx: bytes
    calibration: np.ndarray[Any, Any] | None


@dataclass(frozen=True)
class VariantBuilder:
    kind: str
    build: Callable[[BuildInput], bytes]
    # Why the kind would not change this model (None: it applies).
    skip: Callable[[BuildInput], str | None] = lambda _: None


def _static(source: BuildInput) -> bytes:
    assert source.calibration is not None, "checked before building"
    return quantize.quantize_static_int8(source.onnx, source.parent.signature, source.calibration)


BUILDERS: Mapping[str, VariantBuilder] = MappingProxyType(
    {
        ONNX: VariantBuilder(ONNX, lambda s: s.onnx),
        quantize.INT8_DYNAMIC: VariantBuilder(
            quantize.INT8_DYNAMIC,
            lambda s: quantize.quantize_dynamic_int8(s.onnx),
            lambda s: quantize.skip_reason(s.onnx, quantize.INT8_DYNAMIC),
        ),
        quantize.INT8_STATIC: VariantBuilder(
            quantize.INT8_STATIC,
            _static,
            lambda s: quantize.skip_reason(s.onnx, quantize.INT8_STATIC),
        ),
        quantize.FLOAT16: VariantBuilder(
            quantize.FLOAT16,
            lambda s: quantize.to_float16(s.onnx),
            lambda s: quantize.skip_reason(s.onnx, quantize.FLOAT16),
        ),
    }
)
DEFAULT_KINDS: tuple[str, ...] = tuple(BUILDERS)


def optimize_version(
    workspace: Workspace,
    name: str,
    version: int | str,
    *,
    holdout: Any,
    labels: Any = None,
    calibration: Any = None,
    kinds: Sequence[str] = DEFAULT_KINDS,
    tolerance: Tolerances = Tolerances(),
    actor: str,
    progress: Progress | None = None,
    measure: MeasureConfig = MeasureConfig(),
) -> OptimizeReport:
    """Build, check, measure and register variants of ``name`` ``version``; ledger the report.

    ``holdout`` (2-D, the parent's features) is what variants are compared and timed on;
    ``labels`` (one per holdout row) adds metric deltas; ``calibration`` calibrates static
    int8 and defaults to the holdout's rows without missing values. Raises OptimizeError
    for a parent that is not a scikit-learn model, an unknown kind or a bad sample, and
    ConversionError when the parent cannot be converted at all.
    """
    say = progress or (lambda _: None)
    unknown = [kind for kind in kinds if kind not in BUILDERS]
    if unknown or not kinds:
        raise OptimizeError(
            f"unknown optimization kind(s) {unknown or '(none given)'}; choose from "
            f"{', '.join(BUILDERS)}"
        )
    registry = workspace.registry
    say(f"loading {name} version {version}")
    parent, parent_model = registry.load(name, version)
    if parent.flavor != "sklearn":
        raise OptimizeError(
            f"{name} version {parent.version} is a {parent.flavor!r} model; optimize converts "
            f"scikit-learn models (flavor 'sklearn'). Optimise the scikit-learn version it "
            f"came from instead."
        )
    # NaN is the parent's to accept or refuse (HistGradientBoosting routes it).
    rows = check_sample(holdout, parent.signature, purpose="holdout", allow_nan=True)
    truth = None if labels is None else np.asarray(labels)
    calibration_rows = None
    if quantize.INT8_STATIC in kinds:
        # Default: the holdout's complete rows (the calibrator cannot use NaN).
        calibration_rows = check_sample(
            rows[~np.isnan(rows).any(axis=1)] if calibration is None else calibration,
            parent.signature,
            purpose="calibration sample" if calibration is not None else "holdout's complete rows",
        )
    input_name = parent.signature.inputs[0].name
    parent_out = _predict(parent_model, input_name, rows, "the parent")
    say(f"measuring the parent ({parent.flavor})")
    results = [
        VariantResult(
            kind="parent",
            status="parent",
            version=parent.version,
            measurement=measure_model(parent_model, parent.size_bytes, rows, measure),
            comparison=compare_outputs(parent_out, parent_out, truth),
        )
    ]
    say("converting to ONNX")
    source = BuildInput(
        parent=parent,
        onnx=sklearn_to_onnx(getattr(parent_model, "estimator", None), parent.signature),
        calibration=calibration_rows,
    )
    skipped: list[SkippedKind] = []
    for kind in dict.fromkeys(kinds):
        builder = BUILDERS[kind]
        reason = builder.skip(source)
        if reason is not None:
            say(f"{kind}: skipped, {reason}")
            skipped.append(SkippedKind(kind, "skipped", reason))
            continue
        say(f"{kind}: building")
        try:
            data = builder.build(source)
            model = _load_onnx(data, parent)
            variant_out = _predict(model, input_name, rows, f"the {kind} variant")
        except Exception as exc:  # a quantizer's own error must not end the other kinds
            say(f"{kind}: failed, {exc}")
            skipped.append(SkippedKind(kind, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        comparison = compare_outputs(parent_out, variant_out, truth)
        reasons = comparison.check(tolerance.for_kind(kind))
        say(f"{kind}: measuring")
        measured = measure_model(model, len(data), rows, measure)
        if reasons:
            say(f"{kind}: rejected, {'; '.join(reasons)}")
            results.append(VariantResult(kind, "rejected", measured, None, comparison, reasons))
            continue
        number, status = _register(workspace, parent, kind, data, comparison.metrics(), actor)
        say(f"{kind}: {status} as version {number}")
        results.append(VariantResult(kind, status, measured, number, comparison))
    report = OptimizeReport(
        model=name,
        parent_version=parent.version,
        holdout_rows=len(rows),
        labelled=truth is not None,
        tolerances=tolerance,
        variants=tuple(results),
        skipped=tuple(skipped),
    )
    return dataclasses.replace(report, ledger_seq=_ledger(workspace, report, actor))


def _predict(
    model: LoadedModel, input_name: str, rows: np.ndarray[Any, Any], who: str
) -> dict[str, np.ndarray[Any, Any]]:
    try:
        return model.predict({input_name: rows})
    except MlgateError:
        raise
    except Exception as exc:
        raise OptimizeError(
            f"{who} failed on the holdout ({type(exc).__name__}: {exc}); check that the "
            f"holdout has the features the model was trained on"
        ) from exc


def _load_onnx(data: bytes, parent: ModelVersion) -> LoadedModel:
    """Load as serving would, and insist on the parent's interface (else no routing)."""
    flavor = flavor_named("onnx")
    inspection = flavor.inspect(data)
    if inspection.signature != parent.signature:
        raise OptimizeError(
            f"the variant's signature {inspection.signature.to_json()} differs from the "
            f"parent's {parent.signature.to_json()}; an endpoint could not route between them"
        )
    return flavor.load(data, inspection)


def _register(
    workspace: Workspace,
    parent: ModelVersion,
    kind: str,
    data: bytes,
    metrics: Mapping[str, float],
    actor: str,
) -> tuple[int, str]:
    """Register ``data`` as a new version, or find the version that already holds it."""
    digest = hashlib.sha256(data).hexdigest()
    existing = _version_with(workspace, parent.name, digest)
    if existing is not None:
        return existing, "existing"
    try:
        created = workspace.registry.register(
            parent.name,
            data,
            actor=actor,
            flavor="onnx",
            metrics=metrics,
            tags={"optimized_from": str(parent.version), "optimization": kind},
            lineage=dataclasses.replace(parent.lineage, parent_version=parent.version),
        )
    except DuplicateVersionError:  # registered by a concurrent run since we looked
        found = _version_with(workspace, parent.name, digest)
        if found is None:
            raise
        return found, "existing"
    return created.version, "registered"


def _version_with(workspace: Workspace, name: str, digest: str) -> int | None:
    for candidate in workspace.registry.versions(name):
        if candidate.sha256 == digest:
            return candidate.version
    return None


def _ledger(workspace: Workspace, report: OptimizeReport, actor: str) -> int:
    registered = ",".join(str(v.version) for v in report.registered)
    event = LedgerEvent(
        kind=OPTIMIZED_EVENT,
        actor=actor,
        subject={"model": report.model, "version": report.parent_version},
        digests={"report": digest_json(report.record())},
        attributes={
            "registered": registered,
            "rejected": ",".join(v.kind for v in report.rejected),
            "skipped": ",".join(s.kind for s in report.skipped),
        },
    )
    with workspace.store.write() as conn:
        return workspace.log.append(conn, event)
