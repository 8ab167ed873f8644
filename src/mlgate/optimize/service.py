"""``optimize_version``: build variants of a version, hold them to its answers, register the good.

For each requested kind the variant is built from the parent (the plain ONNX conversion)
or from that conversion (int8, float16), run on the holdout next to the parent and
measured through the runtime's own call. A kind that does not apply (int8 on a tree
ensemble) is ``skipped``; one whose build, comparison or measurement raised is ``failed``
with the reason (the traceback is logged when the error is not an mlgate one): one kind's
trouble does not cost the others. Only when every kind is done are the variants within
tolerance registered as new versions of the same model (flavor ``onnx``, lineage
``parent_version``, tags ``optimized_from``/``optimization``, the comparison as metrics),
or reported ``existing`` when a rerun produced bytes already registered (versions are
content-addressed, so a rerun adds nothing). Variants outside tolerance are ``rejected``
with their reasons and never registered; when the same bytes are registered already
(from a run under looser tolerances) the reasons name that version, which stays.

One ``model.optimized`` ledger entry, appended right after the registrations, carries the
digest of the whole report (every number in it finite, or None). A crash between the two
leaves registered versions, each with its own ``model.registered`` entry and lineage, and
no report; a rerun finds them (``existing``) and ledgers the report.

Samples: the holdout needs at least :data:`MIN_HOLDOUT_ROWS` rows (fewer cannot show a
1% accuracy change) and only its first :data:`MAX_HOLDOUT_ROWS` are used; static int8
calibrates on at most :data:`MAX_CALIBRATION_ROWS` rows, checked only when that kind is
built. Without a calibration sample, static int8 calibrates on the holdout's rows without
missing values; judged on the rows it was calibrated on, it would look better than it
is, so a holdout of :data:`SPLIT_HOLDOUT_ROWS` rows or more is split: calibration on its
first quarter, every comparison (the parent's metrics included) on the rest. A smaller
holdout is used for both, and that judgement is optimistic.

Kinds are a table of builders keyed by name (:data:`BUILDERS`), fixed at import like the
registry's flavors and passed in (``builders=``); PyTorch export and pruning add rows here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from mlgate.errors import DuplicateVersionError, MlgateError, OptimizeError
from mlgate.ledger.events import LedgerEvent, digest_json
from mlgate.optimize import quantize
from mlgate.optimize.compare import Comparison, compare_outputs
from mlgate.optimize.convert import sklearn_to_onnx
from mlgate.optimize.labels import check_labels
from mlgate.optimize.measure import MeasureConfig, Measurement, measure_model
from mlgate.optimize.report import OptimizeReport, SkippedKind, VariantResult
from mlgate.optimize.sample import check_sample
from mlgate.optimize.tolerance import Tolerances
from mlgate.registry.flavors import LoadedModel, flavor_named
from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace

__all__ = [
    "BUILDERS",
    "DEFAULT_KINDS",
    "MAX_CALIBRATION_ROWS",
    "MAX_HOLDOUT_ROWS",
    "MIN_HOLDOUT_ROWS",
    "OPTIMIZED_EVENT",
    "SPLIT_HOLDOUT_ROWS",
    "BuildInput",
    "VariantBuilder",
    "optimize_version",
]

logger = logging.getLogger(__name__)

OPTIMIZED_EVENT = "model.optimized"
ONNX = "onnx"
MIN_HOLDOUT_ROWS = 100
MAX_HOLDOUT_ROWS = 10_000
MAX_CALIBRATION_ROWS = 1_000
SPLIT_HOLDOUT_ROWS = 400
Progress = Callable[[str], None]
Outputs = dict[str, np.ndarray[Any, Any]]


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
    # Whether ``build`` needs ``BuildInput.calibration``.
    calibrated: bool = False


def _static(source: BuildInput) -> bytes:
    if source.calibration is None:
        raise OptimizeError("static int8 needs calibration rows; none were prepared")
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
            calibrated=True,
        ),
        quantize.FLOAT16: VariantBuilder(
            quantize.FLOAT16,
            lambda s: quantize.to_float16(s.onnx),
            lambda s: quantize.skip_reason(s.onnx, quantize.FLOAT16),
        ),
    }
)
DEFAULT_KINDS: tuple[str, ...] = tuple(BUILDERS)


@dataclass(frozen=True)
class _Built:
    """A variant built, compared and measured, not yet registered."""

    kind: str
    data: bytes
    comparison: Comparison
    reasons: tuple[str, ...]
    measurement: Measurement


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
    builders: Mapping[str, VariantBuilder] = BUILDERS,
) -> OptimizeReport:
    """Build, check, measure and register variants of ``name`` ``version``; ledger the report.

    ``holdout`` (2-D, the parent's features, at least :data:`MIN_HOLDOUT_ROWS` rows) is
    what variants are compared and timed on; ``labels`` (one per holdout row: numbers for
    a regressor, mostly the parent's classes for a classifier) adds metric deltas;
    ``calibration`` calibrates static int8 (default: see the module docstring). Raises
    OptimizeError for a parent that is not a scikit-learn model, an unknown kind, a bad
    sample or bad labels, and ConversionError when the parent cannot be converted at all;
    all of these before anything is registered.
    """
    say = progress or (lambda _: None)
    unknown = [kind for kind in kinds if kind not in builders]
    if unknown or not kinds:
        raise OptimizeError(
            f"unknown optimization kind(s) {unknown or '(none given)'}; choose from "
            f"{', '.join(builders)}"
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
    if len(rows) < MIN_HOLDOUT_ROWS:
        raise OptimizeError(
            f"the holdout has {len(rows)} rows; at least {MIN_HOLDOUT_ROWS} are needed, since "
            f"fewer cannot show a 1% change in agreement or accuracy. Pass more rows."
        )
    input_name = parent.signature.inputs[0].name
    parent_out = _predict(parent_model, input_name, rows[:MAX_HOLDOUT_ROWS], "the parent")
    truth = None
    if labels is not None:
        classes = _classes(parent, parent_model, parent_out)
        truth = check_labels(labels, len(rows), classes=classes)[:MAX_HOLDOUT_ROWS]
    rows = rows[:MAX_HOLDOUT_ROWS]
    say("converting to ONNX")
    probe = BuildInput(
        parent=parent,
        onnx=sklearn_to_onnx(getattr(parent_model, "estimator", None), parent.signature),
        calibration=None,
    )
    planned, skipped = _plan(kinds, builders, probe, say)
    calibration_rows = None
    if any(builders[kind].calibrated for kind in planned):
        calibration_rows, start = _calibration(rows, calibration, parent)
        rows, truth = rows[start:], None if truth is None else truth[start:]
        parent_out = {key: value[start:] for key, value in parent_out.items()}
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
    source = dataclasses.replace(probe, calibration=calibration_rows)
    built: list[_Built] = []
    for kind in planned:
        try:
            built.append(
                _build(builders[kind], source, rows, parent_out, truth, tolerance, measure, say)
            )
        except Exception as exc:  # a quantizer's own error must not end the other kinds
            if isinstance(exc, MlgateError):
                reason = str(exc)
            else:
                logger.exception("optimising %s version %s as %s failed", name, version, kind)
                reason = f"{type(exc).__name__}: {exc}"
            say(f"{kind}: failed, {reason}")
            skipped.append(SkippedKind(kind, "failed", reason))
    # Registration only now, every kind being built and judged, then the report at once.
    for variant in built:
        results.append(_settle(workspace, parent, variant, actor, say))
    report = OptimizeReport(
        model=name,
        parent_version=parent.version,
        holdout_rows=len(rows),
        labelled=truth is not None,
        tolerances=tolerance,
        variants=tuple(results),
        skipped=tuple(skipped),
        calibration_rows=None if calibration_rows is None else len(calibration_rows),
    )
    return dataclasses.replace(report, ledger_seq=_ledger(workspace, report, actor))


def _plan(
    kinds: Sequence[str], builders: Mapping[str, VariantBuilder], probe: BuildInput, say: Progress
) -> tuple[list[str], list[SkippedKind]]:
    """The kinds to build, and those that do not apply (or whose check raised)."""
    planned: list[str] = []
    skipped: list[SkippedKind] = []
    for kind in dict.fromkeys(kinds):
        try:
            reason = builders[kind].skip(probe)
        except Exception as exc:
            logger.exception("deciding whether %s applies failed", kind)
            skipped.append(SkippedKind(kind, "failed", f"{type(exc).__name__}: {exc}"))
            continue
        if reason is None:
            planned.append(kind)
        else:
            say(f"{kind}: skipped, {reason}")
            skipped.append(SkippedKind(kind, "skipped", reason))
    return planned, skipped


def _calibration(
    rows: np.ndarray[Any, Any], calibration: Any, parent: ModelVersion
) -> tuple[np.ndarray[Any, Any], int]:
    """Calibration rows, and the first holdout row the comparison may use."""
    if calibration is not None:
        sample = check_sample(calibration, parent.signature, purpose="calibration sample")
        return sample[:MAX_CALIBRATION_ROWS], 0
    start = len(rows) // 4 if len(rows) >= SPLIT_HOLDOUT_ROWS else 0
    part = rows[:start] if start else rows
    sample = check_sample(
        part[~np.isnan(part).any(axis=1)],
        parent.signature,
        purpose=(
            "holdout's first quarter without missing values (calibration)"
            if start
            else "holdout's rows without missing values (calibration)"
        ),
    )
    return sample[:MAX_CALIBRATION_ROWS], start


def _build(
    builder: VariantBuilder,
    source: BuildInput,
    rows: np.ndarray[Any, Any],
    parent_out: Outputs,
    truth: np.ndarray[Any, Any] | None,
    tolerance: Tolerances,
    measure: MeasureConfig,
    say: Progress,
) -> _Built:
    kind = builder.kind
    say(f"{kind}: building")
    data = builder.build(source)
    model = _load_onnx(data, source.parent)
    input_name = source.parent.signature.inputs[0].name
    variant_out = _predict(model, input_name, rows, f"the {kind} variant")
    comparison = compare_outputs(parent_out, variant_out, truth)
    reasons = comparison.check(tolerance.for_kind(kind))
    say(f"{kind}: measuring")
    return _Built(kind, data, comparison, reasons, measure_model(model, len(data), rows, measure))


def _settle(
    workspace: Workspace, parent: ModelVersion, variant: _Built, actor: str, say: Progress
) -> VariantResult:
    """Register a variant within tolerance; report one outside it, naming a prior copy."""
    kind = variant.kind
    if variant.reasons:
        reasons = variant.reasons
        earlier = _version_with(workspace, parent.name, hashlib.sha256(variant.data).hexdigest())
        if earlier is not None:
            reasons = (
                *reasons,
                f"the same bytes are already registered as version {earlier} (by an earlier "
                f"run, under other tolerances); that version stays registered",
            )
        say(f"{kind}: rejected, {'; '.join(reasons)}")
        measured, compared = variant.measurement, variant.comparison
        return VariantResult(kind, "rejected", measured, None, compared, reasons)
    metrics = variant.comparison.metrics()
    number, status = _register(workspace, parent, kind, variant.data, metrics, actor)
    say(f"{kind}: {status} as version {number}")
    return VariantResult(kind, status, variant.measurement, number, variant.comparison)


def _classes(parent: ModelVersion, model: LoadedModel, out: Outputs) -> np.ndarray[Any, Any] | None:
    """The parent classifier's classes (None for a regressor)."""
    if "label" not in out:
        return None
    recorded = parent.flavor_metadata.get("classes")
    if isinstance(recorded, list) and recorded:
        return np.asarray(recorded)
    fitted = getattr(getattr(model, "estimator", None), "classes_", None)
    if fitted is not None:
        return np.asarray(fitted)
    return np.unique(out["label"])


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
