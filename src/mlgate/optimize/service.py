"""``optimize_version``: build variants of a version, hold them to its answers, register the good.

For each requested kind the variant is built from the parent (the plain ONNX conversion)
or from that conversion (int8, float16), run on the holdout next to the parent and
measured through the runtime's own call. A kind that does not apply (int8 on a tree
ensemble) is ``skipped``; one whose build, comparison or measurement raised is ``failed``
with the reason (the traceback is logged when the error is not an mlgate one): one kind's
trouble does not cost the others. Only when every kind is done are the variants within
tolerance registered as new versions of the same model (flavor ``onnx``, or ``torch`` when
pruned; lineage ``parent_version``, tags ``optimized_from``/``optimization``, the
comparison as metrics),
or reported ``existing`` when a rerun produced bytes already registered (versions are
content-addressed, so a rerun adds nothing). Variants outside tolerance are ``rejected``
with their reasons and never registered; when the same bytes are registered already
(from a run under looser tolerances) the reasons name that version, which stays.

One ``model.optimized`` ledger entry, appended right after the registrations, carries the
digest of the whole report (every number in it finite, or None). A crash between the two
leaves registered versions, each with its own ``model.registered`` entry and lineage, and
no report; a rerun finds them (``existing``) and ledgers the report.

Samples: the holdout needs at least :data:`MIN_HOLDOUT_ROWS` rows (fewer cannot show a
1% accuracy change) and only its first :data:`MAX_HOLDOUT_ROWS` are used. Static int8's
calibration rows and pruning's fine-tuning rows are set aside from it as
:mod:`~mlgate.optimize.builders` describes, so the comparison is on rows no variant was
calibrated or tuned on (for a holdout large enough to split).

The kinds themselves (what each builds, when it applies, PyTorch's export and pruning) are
the table in :mod:`~mlgate.optimize.builders`; this module runs whichever table it is passed
(``builders=``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mlgate.errors import DuplicateVersionError, MlgateError, OptimizeError
from mlgate.ledger.events import LedgerEvent, digest_json
from mlgate.optimize.builders import (
    BUILDERS,
    DEFAULT_KINDS,
    FLAVORS_OPTIMIZED,
    MAX_CALIBRATION_ROWS,
    SPLIT_HOLDOUT_ROWS,
    TORCH_KINDS,
    BuildInput,
    VariantBuilder,
    calibration_sample,
    check_comparable,
    held_rows,
    parent_onnx,
    plan_kinds,
)
from mlgate.optimize.compare import Comparison, compare_outputs
from mlgate.optimize.labels import check_labels
from mlgate.optimize.measure import MeasureConfig, Measurement, measure_model
from mlgate.optimize.prune import PruneConfig
from mlgate.optimize.report import OptimizeReport, SkippedKind, VariantResult
from mlgate.optimize.sample import check_sample
from mlgate.optimize.tolerance import Tolerances
from mlgate.registry.flavors import LoadedModel, flavor_named
from mlgate.registry.records import ModelVersion
from mlgate.workspace import Workspace

__all__ = [
    "BUILDERS",
    "DEFAULT_KINDS",
    "FLAVORS_OPTIMIZED",
    "MAX_CALIBRATION_ROWS",
    "MAX_HOLDOUT_ROWS",
    "MIN_HOLDOUT_ROWS",
    "OPTIMIZED_EVENT",
    "SPLIT_HOLDOUT_ROWS",
    "TORCH_KINDS",
    "BuildInput",
    "VariantBuilder",
    "optimize_version",
]

logger = logging.getLogger(__name__)

OPTIMIZED_EVENT = "model.optimized"
MIN_HOLDOUT_ROWS = 100
MAX_HOLDOUT_ROWS = 10_000
Progress = Callable[[str], None]
Outputs = dict[str, np.ndarray[Any, Any]]


@dataclass(frozen=True)
class _Built:
    """A variant built, compared and measured, not yet registered."""

    kind: str
    data: bytes
    comparison: Comparison
    reasons: tuple[str, ...]
    measurement: Measurement
    flavor: str = "onnx"


def optimize_version(
    workspace: Workspace,
    name: str,
    version: int | str,
    *,
    holdout: Any,
    labels: Any = None,
    calibration: Any = None,
    kinds: Sequence[str] | None = None,
    tolerance: Tolerances = Tolerances(),
    actor: str,
    progress: Progress | None = None,
    measure: MeasureConfig = MeasureConfig(),
    builders: Mapping[str, VariantBuilder] = BUILDERS,
    prune_config: PruneConfig = PruneConfig(),
) -> OptimizeReport:
    """Build, check, measure and register variants of ``name`` ``version``; ledger the report.

    ``holdout`` (2-D, the parent's features, at least :data:`MIN_HOLDOUT_ROWS` rows) is
    what variants are compared and timed on; ``labels`` (one per holdout row: numbers for
    a regressor, mostly the parent's classes for a classifier) adds metric deltas;
    ``calibration`` calibrates static int8 (default: see the module docstring); ``kinds``
    defaults to :data:`DEFAULT_KINDS` (:data:`TORCH_KINDS` for a torch parent);
    ``prune_config`` sets the pruning ratio and fine-tuning. Raises OptimizeError for a
    parent that is not a scikit-learn or PyTorch model, an unknown kind, a bad sample or
    bad labels, and ConversionError when the parent cannot be converted at all; all of
    these before anything is registered.
    """
    say = progress or (lambda _: None)
    if kinds is not None:
        unknown = [kind for kind in kinds if kind not in builders]
        if unknown or not kinds:
            raise OptimizeError(
                f"unknown optimization kind(s) {unknown or '(none given)'}; choose from "
                f"{', '.join(builders)}"
            )
    registry = workspace.registry
    say(f"loading {name} version {version}")
    parent, parent_model = registry.load(name, version)
    if parent.flavor not in FLAVORS_OPTIMIZED:
        raise OptimizeError(
            f"{name} version {parent.version} is a {parent.flavor!r} model; optimize converts "
            f"scikit-learn (flavor 'sklearn') and PyTorch TorchScript (flavor 'torch') "
            f"models. Optimise the version it came from instead."
        )
    if kinds is None:
        kinds = TORCH_KINDS if parent.flavor == "torch" else DEFAULT_KINDS
    check_comparable(parent)
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
    parent_data = registry.read_artifact(parent) if parent.flavor == "torch" else b""
    probe = BuildInput(
        parent=parent,
        onnx=parent_onnx(parent, parent_model, parent_data),
        calibration=None,
        parent_data=parent_data,
        prune=prune_config,
    )
    planned, skipped = plan_kinds(kinds, builders, probe, say)
    calibrated = any(builders[kind].calibrated for kind in planned)
    tuned = prune_config.fine_tune_epochs > 0 and any(builders[k].tuned for k in planned)
    if tuned and truth is None:
        raise OptimizeError(
            f"fine-tuning ({prune_config.fine_tune_epochs} epochs) trains on labelled holdout "
            f"rows; pass labels (--label-column), or set fine_tune_epochs to 0"
        )
    calibration_rows = tuning_rows = tuning_labels = None
    if calibrated or tuned:
        split = tuned or calibration is None
        start = held_rows(len(rows), split=split)
        if calibrated:
            calibration_rows = calibration_sample(rows, calibration, parent, start)
        if tuned and truth is not None:
            tuning_rows, tuning_labels = (rows[:start], truth[:start]) if start else (rows, truth)
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
    source = dataclasses.replace(
        probe, calibration=calibration_rows, tuning_rows=tuning_rows, tuning_labels=tuning_labels
    )
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
    model = _load_variant(data, source.parent, builder.flavor)
    input_name = source.parent.signature.inputs[0].name
    variant_out = _predict(model, input_name, rows, f"the {kind} variant")
    comparison = compare_outputs(parent_out, variant_out, truth)
    reasons = comparison.check(tolerance.for_kind(kind))
    say(f"{kind}: measuring")
    measured = measure_model(model, len(data), rows, measure)
    return _Built(kind, data, comparison, reasons, measured, builder.flavor)


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
    number, status = _register(workspace, parent, variant, metrics, actor)
    say(f"{kind}: {status} as version {number}")
    return VariantResult(kind, status, variant.measurement, number, variant.comparison)


def _classes(parent: ModelVersion, model: LoadedModel, out: Outputs) -> np.ndarray[Any, Any] | None:
    """The parent classifier's classes (None for a regressor)."""
    if "label" not in out:
        return None
    recorded = parent.flavor_metadata.get("classes")
    if isinstance(recorded, list) and recorded:
        return np.asarray(recorded)
    if parent.flavor == "torch" and "probabilities" in out:
        return np.arange(out["probabilities"].shape[1])  # label = column index
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


def _load_variant(data: bytes, parent: ModelVersion, flavor_name: str) -> LoadedModel:
    """Load as serving would, and insist on the parent's interface (else no routing)."""
    flavor = flavor_named(flavor_name)
    # A TorchScript variant is the parent's own code with fewer weights: trusted as it is.
    inspection = flavor.inspect(data, trusted_types=parent.trusted_types)
    if inspection.signature != parent.signature:
        raise OptimizeError(
            f"the variant's signature {inspection.signature.to_json()} differs from the "
            f"parent's {parent.signature.to_json()}; an endpoint could not route between them"
        )
    return flavor.load(data, inspection)


def _register(
    workspace: Workspace,
    parent: ModelVersion,
    variant: _Built,
    metrics: Mapping[str, float],
    actor: str,
) -> tuple[int, str]:
    """Register the variant as a new version, or find the version that already holds it."""
    kind, data = variant.kind, variant.data
    digest = hashlib.sha256(data).hexdigest()
    existing = _version_with(workspace, parent.name, digest)
    if existing is not None:
        return existing, "existing"
    try:
        created = workspace.registry.register(
            parent.name,
            data,
            actor=actor,
            flavor=variant.flavor,
            metrics=metrics,
            tags={"optimized_from": str(parent.version), "optimization": kind},
            lineage=dataclasses.replace(parent.lineage, parent_version=parent.version),
            # A pruned TorchScript variant is the parent's own code with fewer weights:
            # the trust the parent was registered with carries over; ONNX needs none.
            trusted_types=parent.trusted_types if variant.flavor == "torch" else (),
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
