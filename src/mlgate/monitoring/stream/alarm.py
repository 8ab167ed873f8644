"""What a streaming monitor says: alarms with their numbers, and the measurements behind them.

An :class:`Alarm` is one event: which feature, which statistic, its value and the threshold
it crossed, the p-value where a test decided, and the window it was seen in. It crosses
module and process boundaries (ledger, Prometheus, subscribers such as a retraining loop),
so it is a frozen dataclass with a JSON form that never holds NaN or infinity: a number
that cannot be given is ``null`` and the ``reason`` says why.

A :class:`Measurement` is one statistic of one window, alarm or not: what dashboards plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["ALARM_KINDS", "Alarm", "AlarmKind", "Measurement", "WindowSpan"]

AlarmKind = Literal["data_drift", "prediction_drift", "concept_drift", "quality"]
ALARM_KINDS: tuple[AlarmKind, ...] = ("data_drift", "prediction_drift", "concept_drift", "quality")


def _num(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class WindowSpan:
    """Where a window lies in the stream.

    ``start``/``end`` number the records the monitor accepted, from 0, end exclusive;
    ``size`` is how many records the window holds (``end - start`` for count windows; a
    time window holds the accepted records whose time falls in ``[start_time, end_time)``).
    Times are Unix seconds, None when the records carried none and no clock was asked.
    ``index`` counts the windows judged so far, from 0.
    """

    index: int
    start: int
    end: int
    size: int
    start_time: float | None = None
    end_time: float | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "start": self.start,
            "end": self.end,
            "size": self.size,
            "start_time": _num(self.start_time),
            "end_time": _num(self.end_time),
        }


@dataclass(frozen=True, slots=True)
class Alarm:
    """One alarm: a feature's statistic crossed its threshold in a window.

    ``statistic`` names what decided (``psi``, ``js``, ``chi2``, ``missing_share``, or the
    concept detector, e.g. ``adwin``). ``value`` is that statistic in the window and
    ``threshold`` the value it had to reach (None for detectors, which have no single
    threshold); ``p_value`` is the multiple-testing adjusted p-value of the feature's test
    (None for detectors). ``reference`` is the statistic's reference level where one
    exists: the reference's missing share, the error rate before a concept change.
    ``raised_at`` is the monitor's clock (Unix seconds) when it was raised.
    """

    kind: AlarmKind
    feature: str
    statistic: str
    value: float
    threshold: float | None
    p_value: float | None
    window: WindowSpan
    endpoint: str | None = None
    version: str | None = None
    reference: float | None = None
    reason: str = ""
    raised_at: float | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-able dict (no NaN or infinity); the ledger sink digests exactly this."""
        return {
            "kind": self.kind,
            "feature": self.feature,
            "statistic": self.statistic,
            "value": _num(self.value),
            "threshold": _num(self.threshold),
            "p_value": _num(self.p_value),
            "reference": _num(self.reference),
            "window": self.window.to_json(),
            "endpoint": self.endpoint,
            "version": self.version,
            "reason": self.reason,
            "raised_at": _num(self.raised_at),
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Alarm:
        """Rebuild an alarm from :meth:`to_json` (null numbers come back as NaN or None)."""
        window = data["window"]
        if not isinstance(window, dict):
            raise ValueError("alarm window must be an object")
        kind = data["kind"]
        if kind not in ALARM_KINDS:
            raise ValueError(f"alarm kind must be one of {ALARM_KINDS}, got {kind!r}")
        return cls(
            kind=kind,
            feature=str(data["feature"]),
            statistic=str(data["statistic"]),
            value=_float(data["value"], math.nan),
            threshold=_optional(data.get("threshold")),
            p_value=_optional(data.get("p_value")),
            window=WindowSpan(
                index=int(window["index"]),
                start=int(window["start"]),
                end=int(window["end"]),
                size=int(window["size"]),
                start_time=_optional(window.get("start_time")),
                end_time=_optional(window.get("end_time")),
            ),
            endpoint=_text(data.get("endpoint")),
            version=_text(data.get("version")),
            reference=_optional(data.get("reference")),
            reason=str(data.get("reason", "")),
            raised_at=_optional(data.get("raised_at")),
        )


def _float(value: object, default: float) -> float:
    return default if value is None else float(value)  # type: ignore[arg-type]


def _optional(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _text(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One statistic of one feature in one window (or of the error stream), for gauges."""

    feature: str
    statistic: str
    value: float
    endpoint: str | None = None
    kind: AlarmKind = "data_drift"
