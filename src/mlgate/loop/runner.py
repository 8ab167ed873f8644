"""The loop runner: one process that ingests, watches, decides and drives runs.

Each :meth:`LoopRunner.step` does, in order:

1. **ingest** one micro-batch from the configured source into the inbox (a pull: the next
   batch is read only once this one is stored, which is the backpressure);
2. **watch** the records stored since the last step: input drift against the reference
   (the data the champion was judged on), and the champion's error on the labels that
   arrived (performance decay, whatever order records and labels came in);
3. **decide**: each alarm becomes a signal for the trigger policy; every decision is a
   ledger entry (``loop.triggered`` or ``loop.suppressed`` with the reason);
4. **drive** the active run one state forward (:class:`~mlgate.loop.machine.RunDriver`).

The reference is, in order of preference: the training frame of the run that produced the
current champion, the ``monitor.reference`` file, or the first ``training.min_rows``
labelled records of the inbox (the world as it was when the loop started watching). After
a promotion the monitors start again on the new champion's data, so the change that was
just handled does not alarm again. Monitoring positions live in memory: a restarted
runner watches from the inbox's tail, while runs resume from the store.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mlgate.errors import LoopConfigError, LoopError, MlgateError
from mlgate.experiments.canary import CanaryController
from mlgate.experiments.canary.status import parse_time
from mlgate.loop.config import LoopConfig
from mlgate.loop.frame import TrainingFrame, frame_from_bytes
from mlgate.loop.inbox import Inbox
from mlgate.loop.machine import LOOP_ACTOR, RunDriver
from mlgate.loop.monitors import LoopMonitors
from mlgate.loop.pump import Pump
from mlgate.loop.runs import LoopRun, RunState, RunStore, StaleRunError
from mlgate.loop.sources import open_source
from mlgate.loop.triggers import Decision, Signal, TriggerPolicy
from mlgate.monitoring.stream.sources import StreamSource
from mlgate.monitoring.tabular import read_frame
from mlgate.workspace import Workspace

__all__ = ["LoopRunner", "RunnerStep"]

logger = logging.getLogger(__name__)


@dataclass
class RunnerStep:
    """What one step did, for progress displays and tests."""

    ingested: int = 0
    monitored: int = 0
    labels: int = 0
    decisions: list[Decision] = field(default_factory=list)
    run: LoopRun | None = None
    exhausted: bool = False
    error: str | None = None


class LoopRunner:
    def __init__(
        self,
        workspace: Workspace,
        config: LoopConfig,
        *,
        source: StreamSource | None = None,
        progress: Callable[[str], None] = lambda _text: None,
        actor: str = LOOP_ACTOR,
        batch_records: int = 2000,
        ingest: bool = True,
    ) -> None:
        self.workspace = workspace
        self.config = config
        self.progress = progress
        self.actor = actor
        self.inbox = Inbox(workspace.store, config.name, clock=workspace.clock)
        self.runs = RunStore(workspace.store, workspace.log, workspace.clock)
        self.canaries = CanaryController.from_workspace(workspace)
        self.policy = TriggerPolicy(config.triggers)
        chosen = source if source is not None or not ingest else open_source(workspace, config)
        self.pump = (
            None
            if chosen is None
            else Pump(
                chosen,
                self.inbox,
                batch_size=config.source.batch_size,
                max_rate=config.source.max_rate,
                # A Redis consumer re-reads its pending entries only when it starts: after
                # a failed read, a fresh one gets back what the lost reply held.
                reopen=_reopener(workspace, config) if source is None else None,
            )
        )
        self.driver = RunDriver(
            workspace=workspace,
            config=config,
            runs=self.runs,
            inbox=self.inbox,
            canaries=self.canaries,
            reference=lambda: self.reference,
            progress=progress,
            actor=actor,
        )
        self.batch_records = batch_records
        self.reference: TrainingFrame | None = None
        self.monitors: LoopMonitors | None = None
        self._champion_version: int | None = None
        self._cursor = self.inbox.tail()
        self._resolve_reference()

    # -- the step -----------------------------------------------------------------------

    def step(self) -> RunnerStep:
        result = RunnerStep()
        if self.pump is not None:
            pumped = self.pump.step()
            result.exhausted = pumped.exhausted
            result.error = pumped.error
            result.ingested = 0 if pumped.result is None else pumped.result.accepted
        self._refresh_champion()
        if self.reference is None:
            self._resolve_reference()
        if self.monitors is not None:
            signals = self._watch(result)
            for signal in signals:
                result.decisions.append(self._decide(signal))
        scheduled = self.policy.scheduled(time.time(), self._last_run_at())
        if scheduled is not None:
            result.decisions.append(self._decide(scheduled))
        result.run = self._drive()
        return result

    def trigger(self, reason: str = "manual") -> Decision:
        """A manual trigger (the CLI's ``mlgate loop trigger``)."""
        return self._decide(Signal("manual", reason, time.time()))

    def run(
        self,
        *,
        should_stop: Callable[[], bool] = lambda: False,
        poll_interval_s: float = 0.5,
        until_exhausted: bool = False,
    ) -> None:
        """Step until stopped (or until a file source is exhausted and no run is active)."""
        while not should_stop():
            step = self.step()
            if until_exhausted and step.exhausted and self.runs.active(self.config.name) is None:
                return
            busy = step.ingested or (step.run is not None and step.run.active)
            if not busy:
                time.sleep(poll_interval_s)

    # -- watching -----------------------------------------------------------------------

    def _watch(self, result: RunnerStep) -> list[Signal]:
        assert self.monitors is not None
        signals: list[Signal] = []
        while True:
            records = self.inbox.after(self._cursor, self.batch_records)
            if not records.record_ids:
                break
            self._cursor = records.last_seq
            result.monitored += len(records.record_ids)
            signals += self.monitors.observe_records(records)
        labelled = self.monitors.observe_labels()
        result.labels += labelled.count
        signals += labelled.signals
        return signals

    def _decide(self, signal: Signal) -> Decision:
        active = self.runs.active(self.config.name)
        decision = self.policy.decide(
            signal,
            last_run_at=self._last_run_at(),
            active_run=None if active is None else active.id,
        )
        attributes = decision.attributes()
        if decision.fire:
            run = self.runs.start(
                self.config.name,
                {
                    "kind": signal.kind,
                    "reason": signal.reason,
                    "details": dict(signal.details),
                    "inbox_seq": self.inbox.tail(),  # where the new world starts, for the window
                },
                actor=self.actor,
                attributes=attributes,
                champion_version=self._champion_version,
            )
            if run is None:  # another process started one between the check and now
                self.runs.suppressed(self.config.name, actor=self.actor, attributes=attributes)
            else:
                self.progress(f"run {run.id} triggered by {signal.kind}: {signal.reason}")
        else:
            self.runs.suppressed(self.config.name, actor=self.actor, attributes=attributes)
        return decision

    def _last_run_at(self) -> float | None:
        text = self.runs.last_started_at(self.config.name)
        return None if text is None else parse_time(text).timestamp()

    # -- driving ------------------------------------------------------------------------

    def _drive(self) -> LoopRun | None:
        run = self.runs.active(self.config.name)
        if run is None:
            return None
        try:
            after = self.driver.step(run)
        except StaleRunError:
            return self.runs.get(run.id)  # another loop process took the step
        if after.state == RunState.PROMOTED:
            self._on_promoted(after)
        elif not after.active and self.reference is not None:
            # The run ended without a new champion. The monitors alarm when a change
            # begins, not while it lasts, so a drift that persists would never start
            # another run: watch again from scratch on the same reference (the cooldown
            # still spaces the runs).
            self._use_reference(self.reference, "the same reference, re-armed")
        return after

    def approve(self, run_id: int, *, actor: str) -> LoopRun:
        run = self.runs.get(run_id)
        if run.state != RunState.AWAITING_APPROVAL:
            raise LoopError(f"run {run_id} is {run.state}, not awaiting approval")
        return self.driver.begin_canary(run, actor=actor)

    def deny(self, run_id: int, *, actor: str, reason: str) -> LoopRun:
        run = self.runs.get(run_id)
        if run.state != RunState.AWAITING_APPROVAL:
            raise LoopError(f"run {run_id} is {run.state}, not awaiting approval")
        return self.runs.advance(
            run,
            RunState.REJECTED,
            actor=actor,
            changes={"error": f"denied: {reason}"[:2000]},
            attributes={"reason": reason[:200]},
        )

    # -- references ---------------------------------------------------------------------

    def _refresh_champion(self) -> None:
        try:
            version = self.workspace.registry.get(self.config.model, "champion").version
        except MlgateError:
            version = None
        if version != self._champion_version:
            if version is not None:
                self._check_features(version)
            self._champion_version = version
            if self.monitors is not None:
                self.monitors.set_champion(version)

    def _check_features(self, version: int) -> None:
        """The loop's features must be the champion's input, or nothing it scores is right."""
        inputs = self.workspace.registry.get(self.config.model, version).signature.inputs
        width = inputs[0].shape[-1] if len(inputs) == 1 and inputs[0].shape else None
        if width not in (-1, len(self.config.features)):
            raise LoopConfigError(
                f"the loop lists {len(self.config.features)} features but {self.config.model} "
                f"version {version} takes {width} input columns ({inputs[0].name!r}); list "
                "its inputs under `features`, in its order"
            )

    def close(self) -> None:
        """Release the source (a Redis connection, an open file)."""
        if self.pump is not None:
            self.pump.close()

    def _on_promoted(self, run: LoopRun) -> None:
        """The new champion's data becomes the reference; the monitors start afresh."""
        self._refresh_champion()
        if run.data and run.data.get("frame_sha256"):
            frame = frame_from_bytes(self.workspace.artifacts.get(str(run.data["frame_sha256"])))
            self._use_reference(frame, f"run {run.id}'s training data")
        self._cursor = self.inbox.tail()

    def _resolve_reference(self) -> None:
        self._refresh_champion()
        for run in self.runs.list(self.config.name, limit=200):
            if (
                run.state == RunState.PROMOTED
                and run.candidate_version == self._champion_version
                and run.data
                and run.data.get("frame_sha256")
            ):
                blob = self.workspace.artifacts.get(str(run.data["frame_sha256"]))
                self._use_reference(frame_from_bytes(blob), f"run {run.id}'s training data")
                return
        if self.config.monitor.reference is not None:
            self._use_reference(self._reference_file(), str(self.config.monitor.reference))
            return
        first = self.inbox.first_labelled(
            self.config.features, self.config.training.min_rows, columns=self.config.columns
        )
        if len(first) >= self.config.training.min_rows:
            self._use_reference(first, f"the first {len(first)} labelled records")

    def _reference_file(self) -> TrainingFrame:
        assert self.config.monitor.reference is not None
        columns: dict[str, Any] = dict(read_frame(self.config.monitor.reference))
        if "label" not in columns:
            raise LoopConfigError(
                f"the reference file {self.config.monitor.reference} has no 'label' column; "
                "the loop checks training data against labelled reference rows"
            )
        labels = np.asarray(columns.pop("label"))
        n = len(labels)
        return TrainingFrame(
            columns=columns,
            labels=labels,
            features=self.config.features,
            record_ids=tuple(f"reference-{i}" for i in range(n)),
            seqs=np.zeros(n, dtype=np.int64),
            times=np.zeros(n),
        )

    def _use_reference(self, frame: TrainingFrame, origin: str) -> None:
        self.reference = frame
        self.monitors = LoopMonitors(
            self.workspace,
            self.config,
            frame,
            inbox=self.inbox,
            champion_version=self._champion_version,
            actor=self.actor,
            clock=time.time,
        )
        self.progress(f"monitoring against {origin} ({len(frame)} rows)")


def _reopener(workspace: Workspace, config: LoopConfig) -> Callable[[], StreamSource] | None:
    if config.source.kind != "redis":
        return None

    def reopen() -> StreamSource:
        source = open_source(workspace, config)
        assert source is not None  # a redis source always opens one
        return source

    return reopen
