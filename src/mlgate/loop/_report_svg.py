"""Inline SVG for the loop report: rolling accuracy with story markers, traffic by version.

Pure drawing from plain sequences (request indices, correctness, versions), so the numbers
behind each plot can be tested apart from the page. Every string drawn goes through
:func:`~mlgate.monitoring.report._svg.text`: versions and event lines come from users.
Tooltips are SVG ``<title>`` elements, shown on hover without JavaScript.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import LoopError
from mlgate.monitoring.report._svg import _message_svg, _nice_ticks, _num, _svg, _tick_label, text

__all__ = [
    "Marker",
    "accuracy_svg",
    "message_svg",
    "rolling_accuracy",
    "traffic_shares",
    "traffic_svg",
    "version_colour",
]

_PALETTE = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#e45756", "#72b7b2", "#9d755d")
_AXIS = "#888"
_WIDTH, _LEFT, _RIGHT = 900, 50.0, 880.0
_ROW_H, _ROWS = 13.0, 4  # marker label rows above the accuracy plot
_POINTS = 1600  # at most about this many points on the accuracy line
_CHAR_W = 6.2  # rough width of one 11px character, to keep labels from overlapping


@dataclass(frozen=True)
class Marker:
    """A vertical line at a request index, with a short label and a hover line."""

    index: float
    label: str
    detail: str
    colour: str


def rolling_accuracy(correct: Sequence[bool], window: int) -> NDArray[np.float64]:
    """Share correct among each answer and the ``window - 1`` before it.

    The first answers have fewer before them and are averaged over what there is, so the
    line starts at the first request instead of ``window`` requests in.
    """
    if window < 1:
        raise LoopError(f"the rolling window must hold at least 1 answer, found {window}")
    values = np.asarray(correct, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])  # exact: 0/1 sums stay below 2**53
    ends = np.arange(1, values.size + 1)
    starts = np.maximum(ends - window, 0)
    return np.asarray((sums[ends] - sums[starts]) / (ends - starts), dtype=np.float64)


def traffic_shares(versions: Sequence[str], bucket: int) -> list[tuple[int, int, Counter[str]]]:
    """Consecutive buckets of ``bucket`` answers: (first position, end position, counts)."""
    if bucket < 1:
        raise LoopError(f"a traffic bucket must hold at least 1 answer, found {bucket}")
    return [
        (start, min(start + bucket, len(versions)), Counter(versions[start : start + bucket]))
        for start in range(0, len(versions), bucket)
    ]


def version_colour(order: Sequence[str], version: str) -> str:
    """The version's colour: by its place in ``order`` (first seen first)."""
    return _PALETTE[order.index(version) % len(_PALETTE)] if version in order else _AXIS


def message_svg(name: str, message: str) -> str:
    """A grey box saying why there is no plot."""
    return _message_svg(name, message)


def _domain(indices: Sequence[int], extra: Sequence[float]) -> tuple[float, float]:
    lo = float(min([*indices, *extra]))
    hi = float(max([*indices, *extra]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _x_axis(lo: float, hi: float, y: float, sx: _Scale) -> list[str]:
    ticks = _nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else hi - lo
    out = [f'<line x1="{_LEFT}" y1="{_num(y)}" x2="{_RIGHT}" y2="{_num(y)}" stroke="{_AXIS}"/>']
    for tick in ticks:
        px = _num(sx(tick))
        out.append(
            f'<line x1="{px}" y1="{_num(y)}" x2="{px}" y2="{_num(y + 4)}" stroke="{_AXIS}"/>'
            f'<text x="{px}" y="{_num(y + 16)}" text-anchor="middle">'
            f"{text(_tick_label(tick, step))}</text>"
        )
    return out


def _y_axis(top: float, bottom: float, label: str) -> list[str]:
    out = [
        f'<line x1="{_LEFT}" y1="{_num(top)}" x2="{_LEFT}" y2="{_num(bottom)}" stroke="{_AXIS}"/>'
    ]
    for tick in _nice_ticks(0.0, 1.0):
        py = _num(bottom - tick * (bottom - top))
        out.append(
            f'<line x1="{_LEFT}" y1="{py}" x2="{_RIGHT}" y2="{py}" stroke="#eee"/>'
            f'<text x="{_num(_LEFT - 6)}" y="{py}" dy="4" text-anchor="end">'
            f"{_tick_label(tick, 0.2)}</text>"
        )
    mid = _num((top + bottom) / 2)
    out.append(
        f'<text x="12" y="{mid}" text-anchor="middle" transform="rotate(-90 12 {mid})">'
        f"{text(label)}</text>"
    )
    return out


def _legend(order: Sequence[str], y: float) -> list[str]:
    out, x = [], _LEFT
    for version in order:
        label = f"version {version}"
        out.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" '
            f'fill="{version_colour(order, version)}" fill-opacity="0.6"/>'
            f'<text x="{_num(x + 14)}" y="{_num(y)}">{text(label)}</text>'
        )
        x += 14 + _CHAR_W * len(label) + 16
    return out


class _Scale:
    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def __call__(self, value: float) -> float:
        return _LEFT + (value - self.lo) / (self.hi - self.lo) * (_RIGHT - _LEFT)


def _markers(markers: Sequence[Marker], sx: _Scale, top: float, bottom: float) -> list[str]:
    ends = [-1e9] * _ROWS  # each label row's right edge so far: labels take the first free row
    out = []
    for marker in sorted(markers, key=lambda m: m.index):
        px = sx(marker.index)
        width = _CHAR_W * len(marker.label) + 4
        row = next(
            (r for r in range(_ROWS) if ends[r] < px), min(range(_ROWS), key=ends.__getitem__)
        )
        ends[row] = px + width
        y = 12 + row * _ROW_H
        out.append(
            f"<g><title>{text(marker.detail)}</title>"
            f'<line x1="{_num(px)}" y1="{_num(y + 2)}" x2="{_num(px)}" y2="{_num(bottom)}" '
            f'stroke="{marker.colour}" stroke-dasharray="4 3" stroke-width="1.2"/>'
            f'<text x="{_num(px + 3)}" y="{_num(y)}" fill="{marker.colour}">'
            f"{text(marker.label)}</text></g>"
        )
    return out


def _stretches(versions: Sequence[str], bucket: int) -> list[tuple[int, int, str]]:
    """Runs of buckets led by the same version: (first position, end position, version)."""
    out: list[tuple[int, int, str]] = []
    for start, end, counts in traffic_shares(versions, bucket):
        leader = counts.most_common(1)[0][0]
        if out and out[-1][2] == leader:
            out[-1] = (out[-1][0], end, leader)
        else:
            out.append((start, end, leader))
    return out


def accuracy_svg(
    indices: Sequence[int],
    correct: Sequence[bool],
    versions: Sequence[str],
    markers: Sequence[Marker],
    *,
    window: int = 100,
    bucket: int = 50,
) -> str:
    """Rolling accuracy over request index, shaded by the version that answered most."""
    top, bottom = 14 + _ROW_H * _ROWS, 270.0
    order = list(dict.fromkeys(versions))
    lo, hi = _domain(indices, [m.index for m in markers])
    sx = _Scale(lo, hi)
    body = ['<g font-size="11" fill="#333">']
    for start, end, leader in _stretches(versions, bucket):
        x1 = sx(indices[start])
        x2 = sx(indices[end]) if end < len(indices) else _RIGHT
        body.append(
            f'<rect x="{_num(x1)}" y="{_num(top)}" width="{_num(max(x2 - x1, 0.5))}" '
            f'height="{_num(bottom - top)}" fill="{version_colour(order, leader)}" '
            f'fill-opacity="0.13"><title>version {text(leader)} answered most</title></rect>'
        )
    body += _y_axis(top, bottom, f"accuracy (last {window})")
    body += _x_axis(lo, hi, bottom, sx)
    accuracy = rolling_accuracy(correct, window)
    stride = max(1, len(indices) // _POINTS)  # more points than pixels only weigh the page
    shown = [*range(0, len(indices), stride), len(indices) - 1]
    points = " ".join(
        f"{_num(sx(indices[k]))},{_num(bottom - accuracy[k] * (bottom - top))}" for k in shown
    )
    body.append(f'<polyline fill="none" stroke="#222" stroke-width="1.5" points="{points}"/>')
    body += _markers(markers, sx, top, bottom)
    body += _legend(order, bottom + 44)
    body.append(
        f'<text x="{_RIGHT}" y="{_num(bottom + 44)}" text-anchor="end">request index · '
        "background: version that answered most</text></g>"
    )
    return _svg(_WIDTH, int(bottom + 54), "rolling accuracy by request", body)


def traffic_svg(indices: Sequence[int], versions: Sequence[str], *, bucket: int = 50) -> str:
    """Each version's share of the answers in each bucket of ``bucket`` requests, stacked."""
    top, bottom = 12.0, 170.0
    order = list(dict.fromkeys(versions))
    lo, hi = _domain(indices, [])
    sx = _Scale(lo, hi)
    body = ['<g font-size="11" fill="#333">']
    body += _y_axis(top, bottom, "share of answers")
    for start, end, counts in traffic_shares(versions, bucket):
        x1 = sx(indices[start])
        x2 = sx(indices[end]) if end < len(indices) else _RIGHT
        total, y = end - start, bottom
        shares = ", ".join(f"version {v} {counts[v] / total:.0%}" for v in order if counts[v])
        body.append(
            f"<g><title>requests {indices[start]}\u2013{indices[end - 1]}: {text(shares)}</title>"
        )
        for version in order:
            h = counts[version] / total * (bottom - top)
            if h > 0:
                body.append(
                    f'<rect x="{_num(x1)}" y="{_num(y - h)}" width="{_num(max(x2 - x1 - 1, 0.5))}" '
                    f'height="{_num(h)}" fill="{version_colour(order, version)}" '
                    'fill-opacity="0.75"/>'
                )
                y -= h
        body.append("</g>")
    body += _x_axis(lo, hi, bottom, sx)
    body += _legend(order, bottom + 44)
    body.append(
        f'<text x="{_RIGHT}" y="{_num(bottom + 44)}" text-anchor="end">request index '
        f"(buckets of {bucket})</text></g>"
    )
    return _svg(_WIDTH, int(bottom + 54), "share of traffic by version", body)
