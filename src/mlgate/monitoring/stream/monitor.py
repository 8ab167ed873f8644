"""Streaming data and prediction drift: a reference profile judged window after window.

``DriftMonitor(profile, window, options, sinks)`` takes batches of records (frames) and
returns the alarms they raised. Per batch it encodes every record into its reference bin
or category per feature (:mod:`._codec`), adds the codes to the window's panes
(:mod:`.windows`), and when a window closes judges its counts with the batch drift rule
(:mod:`._judge`). Nothing of the records is kept, so memory is bounded by
``panes x slots`` however long the stream runs.

Prediction drift is the same monitor on model outputs: fit the profile on the outputs of
the reference data (probabilities, scores, predicted labels declared categorical) and
build the monitor with ``kind="prediction_drift"``.

Alarms are edge-triggered: a feature that drifts raises one alarm when it enters the
drifted state and none while it stays there (a sliding window would otherwise repeat the
alarm at every slide); a window judged "not drifted" re-arms it. Windows too small to
judge neither raise nor re-arm.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from mlgate.errors import DataError
from mlgate.monitoring.drift import DriftOptions, DriftReport, FeatureDrift
from mlgate.monitoring.profile import ReferenceProfile
from mlgate.monitoring.stream._codec import FeatureCodec
from mlgate.monitoring.stream._judge import (
    FeatureCounts,
    MissingShare,
    feature_counts,
    judge_drift,
    judge_missing,
    streaming_options,
)
from mlgate.monitoring.stream.alarm import Alarm, AlarmKind, Measurement, WindowSpan
from mlgate.monitoring.stream.sinks import AlarmSink, Dispatch, Subscriber
from mlgate.monitoring.stream.windows import ClosedWindow, CountWindow, Panes, WindowSpec

__all__ = ["FUTURE_TOLERANCE_S", "DriftKind", "DriftMonitor", "WindowReport"]

Clock = Callable[[], float]
DriftKind = Literal["data_drift", "prediction_drift"]
_EFFECTS = ("psi", "js", "wasserstein")
FUTURE_TOLERANCE_S = 86_400.0
"""How far beyond the clock an event time may lie: further is no time (epoch milliseconds)."""


@dataclass(frozen=True, slots=True)
class WindowReport:
    """One judged window: where it lies, the drift verdict, the missing-rate check, alarms.

    ``counts`` are the per-feature reference and window bin counts the statistics used.
    ``final`` marks a partial window judged by :meth:`DriftMonitor.flush`.
    """

    span: WindowSpan
    drift: DriftReport
    missing: tuple[MissingShare, ...]
    counts: Mapping[str, FeatureCounts]
    versions: tuple[str, ...]
    alarms: tuple[Alarm, ...]
    final: bool = False


class DriftMonitor:
    """Data (or prediction) drift of a stream against a reference profile, window by window.

    ``update(frame, times=..., versions=...)`` counts a batch and returns the alarms of the
    windows it closed. ``times`` are the records' event times (Unix seconds); without them
    a time window uses ``clock()`` at arrival. ``versions`` (one per record) label alarms
    with the model versions that served the window. A batch that does not fit the profile
    (a column of the wrong type, columns of unequal length, non-finite times, or times more
    than a day beyond the clock, such as epoch milliseconds) raises :class:`DataError` and
    changes nothing. :attr:`watermark` is the newest event time seen: pass it to
    :meth:`advance` on an idle stream of event-timed records (as the loop does).
    """

    def __init__(
        self,
        profile: ReferenceProfile,
        window: WindowSpec,
        options: DriftOptions | None = None,
        sinks: Sequence[AlarmSink] = (),
        *,
        subscribers: Sequence[Subscriber] = (),
        kind: DriftKind = "data_drift",
        endpoint: str | None = None,
        version: str | None = None,
        clock: Clock = time.time,
        missing_share_threshold: float = 0.1,
    ) -> None:
        if kind not in ("data_drift", "prediction_drift"):
            raise ValueError(f"kind must be 'data_drift' or 'prediction_drift', got {kind!r}")
        if not 0.0 < missing_share_threshold <= 1.0:
            raise ValueError(
                f"missing_share_threshold must lie in (0, 1], got {missing_share_threshold}"
            )
        self.profile = profile
        self.window = window
        self.options = streaming_options(options or DriftOptions(), profile)
        self.kind: DriftKind = kind
        self.endpoint = endpoint
        self.version = version
        self.dispatch = Dispatch(sinks, subscribers)
        self._clock = clock
        self._missing_threshold = missing_share_threshold
        self._codec = FeatureCodec(profile)
        self._panes = Panes(window, self._codec.n_slots)
        self._active: set[tuple[AlarmKind, str]] = set()
        self._seen = 0
        self._alarms = 0
        self._watermark: float | None = None
        self.last_window: WindowReport | None = None

    # -- state -----------------------------------------------------------------------------

    @property
    def records_seen(self) -> int:
        """Records given to :meth:`update` (late ones included)."""
        return self._seen

    @property
    def late_records(self) -> int:
        """Records dropped because their time window had already been judged."""
        return self._panes.late

    @property
    def window_records(self) -> int:
        """Records counted towards the next window."""
        return self._panes.window_records

    @property
    def window_fill(self) -> float | None:
        """Share of the next count window filled so far; None for time windows."""
        capacity = self._panes.capacity
        return None if capacity is None else self._panes.window_records / capacity

    @property
    def watermark(self) -> float | None:
        """The newest event time given to :meth:`update`; None before any (or without times)."""
        return self._watermark

    @property
    def windows_judged(self) -> int:
        return self._panes.judged

    @property
    def alarms_raised(self) -> int:
        return self._alarms

    @property
    def state_nbytes(self) -> int:
        """Bytes of window state (pane counts), fixed however long the stream runs."""
        return self._panes.nbytes

    @property
    def features(self) -> tuple[str, ...]:
        return self._codec.names

    # -- feeding -----------------------------------------------------------------------------

    def update(
        self,
        frame: Mapping[str, Any],
        *,
        times: ArrayLike | None = None,
        versions: Sequence[str] | None = None,
    ) -> list[Alarm]:
        """Count a batch of records; return the alarms of every window it closed."""
        codes = self._codec.encode(frame)
        n = codes.shape[0]
        version_list = None if versions is None else [str(v) for v in versions]
        if version_list is not None and len(version_list) != n:
            raise DataError(f"versions has {len(version_list)} entries for {n} records")
        stamps = None if times is None else _times(times, n, float(self._clock()))
        self._seen += n
        if n == 0:
            return [] if isinstance(self.window, CountWindow) else self.advance(self._watermark)
        if stamps is not None:
            newest = float(stamps.max())
            self._watermark = newest if self._watermark is None else max(self._watermark, newest)
        if isinstance(self.window, CountWindow):
            closed = self._panes.add_count(codes, version_list, stamps)
        else:
            if stamps is None:
                stamps = np.full(n, float(self._clock()))
            closed = self._panes.add_timed(codes, stamps, version_list)
        return self._judge_all(closed)

    def advance(self, now: float | None = None) -> list[Alarm]:
        """Close the time windows that ended before ``now`` (default: the clock).

        Call it when the stream is idle, so a quiet period still ends its windows. For
        records with event times pass the :attr:`watermark` (or a time derived from the
        events), not the clock: a replay of old events would otherwise see every window up
        to today close and the rest of the replay dropped as late. Count windows only close
        on records: for them this does nothing.
        """
        if isinstance(self.window, CountWindow):
            return []
        moment = float(self._clock() if now is None else now)
        return self._judge_all(self._panes.advance_to(self._panes.pane_of(moment)))

    def flush(self) -> list[Alarm]:
        """Judge the window being filled as it stands (at the end of a finite stream).

        The window is not closed: later records still count towards it.
        """
        partial = self._panes.partial()
        if partial is None:
            return []
        return list(self._judge(partial, final=True).alarms)

    # -- judging -----------------------------------------------------------------------------

    def _judge_all(self, closed: list[ClosedWindow]) -> list[Alarm]:
        alarms: list[Alarm] = []
        for window in closed:
            alarms.extend(self._judge(window, final=False).alarms)
        return alarms

    def _judge(self, window: ClosedWindow, *, final: bool) -> WindowReport:
        counts = feature_counts(self._codec, window.counts)
        size = window.span.size
        drift = judge_drift(self._codec, counts, size, self.options)
        missing = judge_missing(self.profile, counts, size, self.options, self._missing_threshold)
        version = self.version or (",".join(sorted(window.versions)) or None)
        now = float(self._clock())
        alarms: list[Alarm] = []
        for name, feature in drift.features.items():
            key: tuple[AlarmKind, str] = (self.kind, name)
            if feature.drifted and key not in self._active:
                self._active.add(key)
                alarms.append(self._drift_alarm(feature, window.span, version, now))
            elif not feature.drifted and feature.status in ("ok", "constant"):
                self._active.discard(key)
        for share in missing:
            key = ("quality", share.name)
            if share.raised and key not in self._active:
                self._active.add(key)
                alarms.append(self._missing_alarm(share, window.span, version, now))
            elif not share.raised:
                self._active.discard(key)
        report = WindowReport(
            window.span, drift, tuple(missing), counts, tuple(sorted(window.versions)),
            tuple(alarms), final,
        )  # fmt: skip
        self.last_window = report
        self.dispatch.measurements(self._measurements(drift, missing))
        for alarm in alarms:
            self._alarms += 1
            self.dispatch.alarm(alarm)
        return report

    def _drift_alarm(
        self, f: FeatureDrift, span: WindowSpan, version: str | None, now: float
    ) -> Alarm:
        if f.decided_by in _EFFECTS:
            statistic = f.decided_by
            value = getattr(f, statistic)
            threshold = f.threshold
        else:  # no effect size applies (no bins): the test decided at alpha
            statistic, value, threshold = "p_value", f.p_value_adjusted, self.options.alpha
        return Alarm(
            kind=self.kind,
            feature=f.name,
            statistic=statistic,
            value=float("nan") if value is None else float(value),
            threshold=threshold,
            p_value=f.p_value_adjusted,
            window=span,
            endpoint=self.endpoint,
            version=version,
            reason=f.reason,
            raised_at=now,
        )

    def _missing_alarm(
        self, share: MissingShare, span: WindowSpan, version: str | None, now: float
    ) -> Alarm:
        return Alarm(
            kind="quality",
            feature=share.name,
            statistic="missing_share",
            value=share.current,
            threshold=share.threshold,
            p_value=share.p_value_adjusted,
            window=span,
            endpoint=self.endpoint,
            version=version,
            reference=share.reference,
            reason=(
                f"missing share {share.current:.3g} >= {share.threshold:.3g} (reference "
                f"{share.reference:.3g}) and adjusted p={share.p_value_adjusted:.3g} <= "
                f"alpha {self.options.alpha}"
            ),
            raised_at=now,
        )

    def _measurements(
        self, drift: DriftReport, missing: Sequence[MissingShare]
    ) -> list[Measurement]:
        out: list[Measurement] = []
        for name, f in drift.features.items():
            values = {
                "psi": f.psi,
                "js": f.js,
                "kl": f.kl,
                "chi2": f.chi2.statistic if f.chi2 else None,
                "p_value": f.p_value_adjusted,
            }
            for statistic, value in values.items():
                if value is not None and np.isfinite(value):
                    out.append(Measurement(name, statistic, float(value), self.endpoint, self.kind))
        for share in missing:
            out.append(
                Measurement(share.name, "missing_share", share.current, self.endpoint, "quality")
            )
        return out


def _times(times: ArrayLike, n: int, now: float) -> np.ndarray[Any, np.dtype[np.float64]]:
    try:
        stamps = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"times must be Unix seconds (numbers), found values that are not: {exc}"
        ) from exc
    if stamps.shape != (n,):
        raise DataError(f"times must have one entry per record ({n}), found shape {stamps.shape}")
    if n and not np.isfinite(stamps).all():
        at = int(np.flatnonzero(~np.isfinite(stamps))[0])
        raise DataError(
            f"times must be finite Unix seconds, found {stamps[at]} at record {at}; "
            "no record of this batch was counted"
        )
    if n and float(stamps.max()) > now + FUTURE_TOLERANCE_S:
        at = int(np.argmax(stamps))
        raise DataError(
            f"time {stamps[at]:.0f} at record {at} lies more than a day after the clock "
            f"({now:.0f}); are these epoch milliseconds? Times must be Unix seconds; no "
            "record of this batch was counted"
        )
    return stamps
