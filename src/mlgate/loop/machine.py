"""The run driver: one step of an active run at a time, each step resumable after a crash.

:meth:`RunDriver.step` looks at the run's stored state and does that state's work, then
records the outcome with one ledgered transition (:mod:`mlgate.loop.runs`). What a step
needs from earlier steps it reads back from the store, never from memory: the training
frame (saved content-addressed before training), the trained artifact (saved before
gating), the registered version (found by the artifact's digest). So a loop killed at any
point and started again carries on from the last committed state:

- killed while checking data or training: the step runs again on the same saved frame;
- killed after registering but before recording it: the version is found by its digest,
  not registered twice;
- killed after starting the canary but before recording it: the endpoint's active canary
  for the same candidate is adopted, not started twice;
- killed during the canary: the canary's own state machine (in the store) kept going on
  every server, and the run reads its outcome.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import sqlalchemy as sa

from mlgate.errors import (
    CanaryError,
    DuplicateVersionError,
    GateError,
    LoopError,
    MlgateError,
    QuarantinedBatchError,
)
from mlgate.experiments.canary import CanaryController, CanaryStatus
from mlgate.experiments.canary.status import parse_time
from mlgate.loop.config import LoopConfig
from mlgate.loop.evaluation import gate_inputs
from mlgate.loop.frame import TrainingFrame, frame_from_bytes, frame_to_bytes
from mlgate.loop.gates import (
    METRICS,
    CheckResult,
    GateInputs,
    GateReport,
    evaluate_gate,
    signature_problems,
)
from mlgate.loop.inbox import Inbox
from mlgate.loop.provenance import code_version, environment
from mlgate.loop.runs import LoopRun, RunState, RunStore, StaleRunError
from mlgate.loop.train_process import train
from mlgate.monitoring.quality import QualityProfile, Quarantine
from mlgate.registry.records import Lineage
from mlgate.store.schema import model_versions
from mlgate.workspace import Workspace

__all__ = ["LOOP_ACTOR", "RunDriver"]

logger = logging.getLogger(__name__)

LOOP_ACTOR = "mlgate:loop"
_CHANGE = ("drift", "performance")  # triggers that say the world moved at a known point
Progress = Callable[[str], None]


@dataclass
class RunDriver:
    """Moves a loop's active run forward; see the module docstring."""

    workspace: Workspace
    config: LoopConfig
    runs: RunStore
    inbox: Inbox
    canaries: CanaryController
    reference: Callable[[], TrainingFrame | None]  # the data the champion was judged on
    progress: Progress = lambda _text: None
    actor: str = LOOP_ACTOR

    def step(self, run: LoopRun) -> LoopRun:
        """Do the work of ``run``'s state; return the run as stored afterwards."""
        handler = {
            RunState.TRIGGERED: self._check_data,
            RunState.TRAINING: self._train,
            RunState.GATING: self._gate,
            RunState.REGISTERING: self._register,
            RunState.REGISTERED: self._start_canary,
            RunState.CANARY: self._watch_canary,
        }.get(run.state)
        if handler is None:  # awaiting approval, or finished
            return run
        try:
            return handler(run)
        except StaleRunError:
            raise  # another process took this step: the caller reads the run again
        except MlgateError as exc:
            return self._fail(run, f"{run.state}: {exc}")

    # -- triggered: choose and check the data -----------------------------------------

    def _check_data(self, run: LoopRun) -> LoopRun:
        training = self.config.training
        since = run.trigger.get("inbox_seq", 0) if run.trigger.get("kind") in _CHANGE else 0
        frame = self.inbox.labelled(
            training.window,
            self.config.features,
            columns=self.config.columns,
            now=self.workspace.clock(),
            seed=training.seed,
            after_seq=int(since or 0) if training.since_trigger else 0,
        )
        if self.config.task == "classification":
            frame = _integral_labels(frame)
        if len(frame) < training.min_rows:
            waited = (self.workspace.clock() - parse_time(run.created_at)).total_seconds()
            if waited >= training.label_timeout_s:
                return self._fail(
                    run,
                    f"only {len(frame)} labelled rows after {waited:.0f} s (need "
                    f"{training.min_rows}): labels never arrived. Check the label feed, or "
                    "lower training.min_rows",
                )
            return run  # wait for labels
        reference = self.reference()
        if reference is not None:
            profile = QualityProfile.fit(
                reference.frame(),
                label="label",
                neighbours=self.config.quality_neighbours,
                agreement=self.config.quality_agreement,
                seed=training.seed,
            )
            quarantine = Quarantine(self.workspace.settings.home / "quarantine" / self.config.name)
            try:
                quarantine.accept_or_quarantine(
                    profile,
                    frame.frame(),
                    f"loop {self.config.name} run {run.id}",
                    self.config.quality,
                )
            except QuarantinedBatchError as exc:
                self.inbox.quarantine(frame.seqs.tolist(), run.id)
                self.progress(f"run {run.id}: training data quarantined: {'; '.join(exc.reasons)}")
                return self.runs.advance(
                    run,
                    RunState.QUARANTINED,
                    actor=self.actor,
                    changes={
                        "data": _data_json(frame, None) | {"quarantine": exc.path},
                        "error": "; ".join(exc.reasons)[:2000],
                    },
                    attributes={"rows": len(frame), "reasons": len(exc.reasons)},
                )
        data_sha = self.workspace.artifacts.put(frame_to_bytes(frame))
        self.progress(f"run {run.id}: {len(frame)} labelled rows passed the data checks")
        return self.runs.advance(
            run,
            RunState.TRAINING,
            actor=self.actor,
            changes={"data": _data_json(frame, data_sha) | {"checked": reference is not None}},
            attributes={"rows": len(frame), "checked": reference is not None},
            digests={"dataset": frame.fingerprint(), "frame": "sha256:" + data_sha},
        )

    # -- training ---------------------------------------------------------------------

    def _frames(self, run: LoopRun) -> tuple[TrainingFrame, TrainingFrame]:
        assert run.data is not None and run.data.get("frame_sha256")
        frame = frame_from_bytes(self.workspace.artifacts.get(str(run.data["frame_sha256"])))
        return frame.split(self.config.training.holdout, self.config.training.seed)

    def _train(self, run: LoopRun) -> LoopRun:
        spec = self.config.training.trainer
        train_frame, _holdout = self._frames(run)
        self.progress(f"run {run.id}: training on {len(train_frame)} rows")
        try:
            trained = train(spec, train_frame, progress=self.progress)
        except LoopError as exc:  # TrainingError: raised, garbage, over budget, crashed
            return self._fail(run, f"training failed: {exc}")
        artifact_sha = self.workspace.artifacts.put(trained.artifact)
        data = dict(run.data or {}) | {
            "flavor": trained.flavor,
            "trusted_types": list(trained.trusted_types),
            "train_seconds": round(trained.duration_s, 3),
        }
        env = environment(spec)
        code = code_version(spec)
        return self.runs.advance(
            run,
            RunState.GATING,
            actor=self.actor,
            changes={
                "artifact_sha256": artifact_sha,
                "params": dict(trained.params),
                "environment": env,
                "code": code,
                "data": data,
            },
            attributes={"flavor": trained.flavor, "code_dirty": code.get("dirty")},
            digests={"artifact": "sha256:" + artifact_sha, "environment": env["digest"]},
        )

    # -- gates ------------------------------------------------------------------------

    def _gate(self, run: LoopRun) -> LoopRun:
        assert run.artifact_sha256 is not None and run.data is not None
        train_frame, holdout = self._frames(run)
        registry = self.workspace.registry
        artifact = self.workspace.artifacts.get(run.artifact_sha256)
        candidate = _load_bytes(artifact, str(run.data["flavor"]), run.data["trusted_types"])
        champion = None
        endpoint_signature = None
        if run.champion_version is not None:
            version, champion = registry.load(self.config.model, run.champion_version)
            endpoint_signature = version.signature
            problems = signature_problems(candidate.signature, endpoint_signature, outputs=())
            if problems:  # before predicting: the champion may not read the candidate's rows
                return self._judged(run, _signature_report(self.config, problems), {})
        classes = None if self.config.task == "regression" else np.unique(train_frame.labels)
        inputs = gate_inputs(
            task=self.config.task,
            holdout=holdout,
            classes=classes,
            candidate=candidate,
            champion=champion,
            candidate_size=len(artifact),
            endpoint_signature=endpoint_signature,
            slice_columns=self.config.columns,
        )
        report = evaluate_gate(self.config.gates, inputs, seed=self.config.training.seed)
        return self._judged(run, report, _holdout_metrics(self.config, inputs))

    def _judged(self, run: LoopRun, report: GateReport, metrics: dict[str, float]) -> LoopRun:
        """Record the gate's verdict: on to registering, or rejected; the digest ledgered."""
        document = report.to_json()
        digest = report.digest()
        self.progress(
            f"run {run.id}: gates {'passed' if report.passed else 'FAILED'}: {report.summary()}"
        )
        return self.runs.advance(
            run,
            RunState.REGISTERING if report.passed else RunState.REJECTED,
            actor=self.actor,
            changes={"gate_report": document, "gate_digest": digest, "metrics": metrics},
            attributes={"passed": report.passed, "checks": len(report.checks)},
            digests={"report": digest},
        )

    # -- registration and rollout -----------------------------------------------------

    def _existing_version(self, run: LoopRun) -> int | None:
        """The version holding this run's artifact, if a process registered it already."""
        with self.workspace.store.read() as conn:
            found = conn.execute(
                sa.select(model_versions.c.version).where(
                    model_versions.c.name == self.config.model,
                    model_versions.c.sha256 == run.artifact_sha256,
                )
            ).scalar_one_or_none()
        return None if found is None else int(found)

    def _register(self, run: LoopRun) -> LoopRun:
        assert run.artifact_sha256 is not None and run.data is not None
        registry = self.workspace.registry
        existing = self._existing_version(run)
        if existing is not None:  # registered before a crash, or by a racing process
            version = registry.get(self.config.model, existing)
        else:
            code = run.code or {}
            try:
                version = registry.register(
                    self.config.model,
                    self.workspace.artifacts.get(run.artifact_sha256),
                    actor=self.actor,
                    flavor=str(run.data["flavor"]),
                    params=run.params or {},
                    metrics={k: v for k, v in (run.metrics or {}).items() if v is not None},
                    tags={"loop": self.config.name, "loop_run": str(run.id)},
                    lineage=Lineage(
                        dataset_fingerprint=run.data.get("fingerprint"),
                        code_commit=code.get("commit"),
                        code_dirty=code.get("dirty"),
                        run_id=f"loop:{self.config.name}:{run.id}",
                        parent_version=run.champion_version,
                    ),
                    trusted_types=tuple(run.data.get("trusted_types", ())),
                )
            except DuplicateVersionError:  # another process registered it a moment ago
                raced = self._existing_version(run)
                if raced is None:
                    raise
                version = registry.get(self.config.model, raced)
        self.progress(f"run {run.id}: registered {self.config.model} version {version.version}")
        return self.runs.advance(
            run,
            RunState.REGISTERED,
            actor=self.actor,
            changes={"candidate_version": version.version},
            attributes={"model": self.config.model, "version": version.version},
        )

    def _start_canary(self, run: LoopRun) -> LoopRun:
        assert run.candidate_version is not None
        if self.config.promotion.approval and run.state == RunState.REGISTERED:
            self.progress(f"run {run.id}: waiting for approval (mlgate loop approve)")
            return self.runs.advance(run, RunState.AWAITING_APPROVAL, actor=self.actor)
        return self.begin_canary(run)

    def begin_canary(self, run: LoopRun, *, actor: str | None = None) -> LoopRun:
        """Start (or adopt) the candidate's canary; also the approval's second half."""
        assert run.candidate_version is not None
        status = self._adoptable_canary(run)  # started before a crash: never start a second
        if status is None:
            try:
                status = self.canaries.start(
                    self.config.endpoint,
                    run.candidate_version,
                    config=self.config.promotion.canary,
                    actor=actor or self.actor,
                )
            except CanaryError:  # a racing process may have started it a moment ago
                status = self._adoptable_canary(run)
                if status is None:
                    raise
        steps = ", ".join(f"{s:g}%" for s in self.config.promotion.canary.steps)
        self.progress(f"run {run.id}: canary {status.id} started ({steps})")
        return self.runs.advance(
            run,
            RunState.CANARY,
            actor=actor or self.actor,
            changes={"canary_id": status.id},
            attributes={"canary": status.id, "version": run.candidate_version},
        )

    def _adoptable_canary(self, run: LoopRun) -> CanaryStatus | None:
        current = self.canaries.status(self.config.endpoint)
        if (
            current is not None
            and current.candidate == str(run.candidate_version)
            and current.created_at >= run.created_at
        ):
            return current
        return None

    def _watch_canary(self, run: LoopRun) -> LoopRun:
        assert run.canary_id is not None
        self.canaries.tick()
        status = next((s for s in self.canaries.list(limit=1000) if s.id == run.canary_id), None)
        if status is None:
            return self._fail(run, f"canary {run.canary_id} disappeared from the store")
        if status.state == "promoted":
            self.progress(f"run {run.id}: version {run.candidate_version} promoted to champion")
            return self.runs.advance(
                run,
                RunState.PROMOTED,
                actor=self.actor,
                attributes={"version": run.candidate_version, "canary": status.id},
            )
        if status.state in ("rolled_back", "aborted"):
            self.progress(f"run {run.id}: canary {status.state}; the champion keeps serving")
            return self.runs.advance(
                run,
                RunState.ROLLED_BACK,
                actor=self.actor,
                changes={"error": f"canary {status.state}"},
                attributes={"canary": status.id, "canary_state": status.state},
            )
        return run

    def _fail(self, run: LoopRun, reason: str) -> LoopRun:
        logger.warning("loop %s run %s failed: %s", run.loop, run.id, reason)
        self.progress(f"run {run.id} failed: {reason}")
        return self.runs.advance(
            run,
            RunState.FAILED,
            actor=self.actor,
            changes={"error": reason[:2000]},
            attributes={"reason": reason[:200]},
        )


def _integral_labels(frame: TrainingFrame) -> TrainingFrame:
    """Class labels stored as 1.0 (a CSV column, a JSON number) become the integers they are.

    Otherwise a classifier learns float classes and answers FP64 labels where the champion
    answers INT64: a changed signature for the same classes.
    """
    labels = np.asarray(frame.labels)
    if labels.dtype.kind != "f" or not len(labels) or not np.all(np.mod(labels, 1) == 0):
        return frame
    return replace(frame, labels=labels.astype(np.int64))


def _data_json(frame: TrainingFrame, frame_sha: str | None) -> dict[str, Any]:
    return {
        "rows": len(frame),
        "fingerprint": frame.fingerprint(),
        "frame_sha256": frame_sha,
        "seq_min": int(frame.seqs.min()) if len(frame) else None,
        "seq_max": int(frame.seqs.max()) if len(frame) else None,
    }


def _signature_report(config: LoopConfig, problems: list[str]) -> GateReport:
    """A failed ``signature`` check: the candidate's inputs are not the endpoint's.

    Such a candidate is never judged on the holdout (the two models may not even read the
    same rows) and never promoted (no client could call it), whatever else the gate asks.
    """
    check = CheckResult(
        "signature",
        "signature",
        False,
        f"the candidate would break the endpoint's clients: {'; '.join(problems)}; keep the "
        "served inputs, or serve it on a new endpoint",
        float(len(problems)),
        0.0,
        {"problems": len(problems)},
    )
    gate = None if config.gates is None else config.gates.to_json()
    return GateReport(passed=False, tree=check, gate=gate, seed=config.training.seed)


def _holdout_metrics(config: LoopConfig, inputs: GateInputs) -> dict[str, float]:
    """The candidate's holdout metrics, recorded with the version (the gates' plus a default)."""
    names = set(config.gates.metric_names if config.gates is not None else ())
    names.add("rmse" if config.task == "regression" else "accuracy")
    metrics: dict[str, float] = {}
    for name in sorted(names):
        metric = METRICS.get(name)
        if metric is None or metric.task != config.task:
            continue
        try:
            value = float(metric.score(inputs.y_true, inputs.candidate))
        except (ValueError, GateError):
            continue
        if np.isfinite(value):
            metrics[f"holdout_{name}"] = value
    return metrics


def _load_bytes(data: bytes, flavor: str, trusted: Any) -> Any:
    from mlgate.registry.flavors import flavor_named

    handler = flavor_named(flavor)
    inspection = handler.inspect(data, trusted_types=tuple(trusted or ()))
    return handler.load(data, inspection)
