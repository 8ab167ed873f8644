"""The loop's two watchers: input drift on stored records, and the champion's error.

Both reuse the streaming monitors of :mod:`mlgate.monitoring.stream` and ledger their
alarms (``monitor.alarm``) before the loop decides anything, so the ledger shows the
evidence a trigger acted on. Alarms come back as :class:`~mlgate.loop.triggers.Signal`\\ s,
one per kind per batch (a window where five features drifted is one reason to retrain,
not five).

The error stream is computed here rather than joined from the prediction log: each stored
record carries its features, so when its label arrives the loop asks the champion what it
answers for those features and scores that. It works for every source (HTTP, Redis,
files), and it measures the current champion even during a canary.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mlgate.loop.config import LoopConfig
from mlgate.loop.frame import TrainingFrame
from mlgate.loop.inbox import Inbox, InboxSlice
from mlgate.loop.triggers import Signal
from mlgate.monitoring.detectors import ADWIN, HDDMA, BernoulliCusum, Detector, PageHinkley
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.stream import (
    Alarm,
    ConceptMonitor,
    CountWindow,
    DriftMonitor,
    LedgerSink,
    absolute_error,
    zero_one_loss,
)
from mlgate.registry.flavors.base import LoadedModel
from mlgate.workspace import Workspace

__all__ = ["LabelObservation", "LoopMonitors"]

_LABEL_BATCH = 5000


def _detector(name: str) -> Detector:
    factories: dict[str, Callable[[], Detector]] = {
        "adwin": ADWIN,
        "page_hinkley": lambda: PageHinkley(mode="up"),
        "hddm_a": HDDMA,
        "cusum": BernoulliCusum,
    }
    return factories[name]()


@dataclass
class LabelObservation:
    count: int = 0
    signals: list[Signal] = field(default_factory=list)


class LoopMonitors:
    def __init__(
        self,
        workspace: Workspace,
        config: LoopConfig,
        reference: TrainingFrame,
        *,
        inbox: Inbox,
        champion_version: int | None,
        actor: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._workspace = workspace
        self._config = config
        self._clock = clock
        self._sink = LedgerSink(workspace.store, workspace.log, actor)
        profile = fit_profile({name: reference.columns[name] for name in config.features})
        self.drift = DriftMonitor(
            profile,
            CountWindow(config.monitor.window),
            sinks=[self._sink],
            endpoint=config.endpoint,
            clock=clock,
        )
        self.concept: ConceptMonitor | None = None
        self._champion: LoadedModel | None = None
        self._champion_version: int | None = None
        self._inbox = inbox
        # Label reading starts after the labels already stored: history is not replayed.
        self._watermark = inbox.label_watermark()
        self.set_champion(champion_version)

    def set_champion(self, version: int | None) -> None:
        """Score a new champion from here on: its error stream starts a new detector."""
        self._champion_version = version
        self._champion = (
            None
            if version is None
            else self._workspace.registry.load(self._config.model, version)[1]
        )
        loss = absolute_error if self._config.task == "regression" else zero_one_loss
        self.concept = ConceptMonitor(
            _detector(self._config.monitor.detector),
            loss=loss,
            sinks=[self._sink],
            endpoint=self._config.endpoint,
            version=None if version is None else str(version),
            clock=self._clock,
        )

    def observe_records(self, records: InboxSlice) -> list[Signal]:
        frame = {name: records.columns[name] for name in self._config.features}
        alarms = self.drift.update(frame)
        drifted = [a for a in alarms if a.kind == "data_drift"]
        missing = [a for a in alarms if a.kind != "data_drift"]
        signals: list[Signal] = []
        if drifted:
            signals.append(self._signal("drift", drifted))
        if missing:
            signals.append(self._signal("quality", missing))
        return signals

    def observe_labels(self) -> LabelObservation:
        """Score the champion on labels stored since the last call."""
        observation = LabelObservation()
        if self._champion is None or self.concept is None:
            return observation
        while True:
            labelled, self._watermark = self._inbox.labelled_since(
                self._watermark, self._config.features, limit=_LABEL_BATCH
            )
            if not labelled.record_ids:
                return observation
            observation.count += len(labelled.record_ids)
            matrix = np.column_stack(
                [np.asarray(labelled.columns[n], dtype=np.float64) for n in self._config.features]
            )
            mask = np.asarray(np.isfinite(matrix).all(axis=1), dtype=bool)
            usable: list[bool] = [bool(ok) for ok in mask]
            if not any(usable):
                continue
            outputs = self._champion.predict(
                {self._champion.signature.inputs[0].name: matrix[mask]}
            )
            predicted = np.asarray(outputs.get("label", outputs.get("prediction"))).reshape(-1)
            ids = [rid for rid, ok in zip(labelled.record_ids, usable, strict=True) if ok]
            labels = [lab for lab, ok in zip(labelled.labels.tolist(), usable, strict=True) if ok]
            self.concept.add_predictions(ids, predicted.tolist())
            alarms = self.concept.add_labels(ids, labels)
            worse = [a for a in alarms if a.reference is None or a.value > a.reference]
            if worse:
                observation.signals.append(self._signal("performance", worse))

    def _signal(self, kind: str, alarms: list[Alarm]) -> Signal:
        features = sorted({a.feature for a in alarms})
        first = alarms[0]
        reason = f"{len(features)} feature(s) alarmed ({', '.join(features[:5])}): {first.reason}"
        if kind == "performance":
            reason = first.reason or f"{first.statistic}: error {first.value:.3f}"
        return Signal(
            kind,  # type: ignore[arg-type]
            reason[:300],
            self._clock(),
            {
                "alarms": len(alarms),
                "statistic": first.statistic,
                "value": f"{first.value:.6g}",
            },
        )
