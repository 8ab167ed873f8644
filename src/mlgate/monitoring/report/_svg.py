"""Inline SVG for the drift report: histograms, ECDFs and category bars, with no script.

Every string drawn comes through :func:`text`, which escapes it: feature names and
category labels come from users' files. Tooltips are SVG ``<title>`` elements, which
browsers show on hover without JavaScript.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from mlgate.monitoring.report._data import CategoricalPlot, NoPlot, NumericPlot

__all__ = ["REFERENCE_COLOUR", "CURRENT_COLOUR", "NEW_COLOUR", "plot_svg", "text"]

REFERENCE_COLOUR = "#4c78a8"
CURRENT_COLOUR = "#f58518"
NEW_COLOUR = "#d62728"
_AXIS = "#888"
_LABEL_CHARS = 28


def text(value: object) -> str:
    """Any value as text safe inside HTML or SVG, attributes included."""
    return html.escape(str(value), quote=True)


def _num(value: float) -> str:
    """Coordinates with one decimal: enough for a screen, and a light page."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _percent(share: float) -> str:
    """A share as markup-safe text."""
    if share == 0.0:
        return "0%"
    if share < 0.001:
        return "&lt;0.1%"
    return f"{share:.1%}"


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round numbers between lo and hi (1, 2 or 5 times a power of ten apart).

    Spans a float cannot divide into steps (subnormal, or tiny next to huge values) get
    their two ends instead.
    """
    raw = (hi - lo) / count
    if not (raw > 0 and math.isfinite(raw)):
        return [lo, hi] if hi > lo else [lo]
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 5.0, 10.0) if m * power >= raw)
    start = lo / step
    if not (step > 0 and math.isfinite(start) and abs(start) < 2.0**52):
        return [lo, hi]
    first = math.ceil(start) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= hi + step * 1e-9]


def _tick_label(value: float, step: float) -> str:
    """Plain decimals for everyday magnitudes, else enough significant digits (at most 12)
    to tell ticks ``step`` apart."""
    if value == 0 or abs(value) < step * 1e-9:
        return "0"
    if not step > 0:
        return f"{value:.6g}"
    if abs(value) < 1e10 and step >= 1e-4 and (abs(value) < 1e7 or step >= 1):
        return f"{value:.{max(0, -math.floor(math.log10(step)))}f}"
    digits = math.ceil(math.log10(abs(value)) - math.log10(step)) + 1
    return f"{value:.{max(1, min(12, digits))}g}"


def _svg(width: int, height: int, label: str, body: Sequence[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{text(label)}">'
        + "".join(body)
        + "</svg>"
    )


def _legend(x: float, y: float, *, new: bool = False) -> list[str]:
    items = [("reference", REFERENCE_COLOUR), ("current", CURRENT_COLOUR)]
    if new:
        items.append(("new in current", NEW_COLOUR))
    out: list[str] = []
    for label, colour in items:
        out.append(
            f'<rect x="{_num(x)}" y="{_num(y - 9)}" width="10" height="10" fill="{colour}" '
            f'fill-opacity="0.6"/><text x="{_num(x + 14)}" y="{_num(y)}">{label}</text>'
        )
        x += 14 + 7.5 * len(label) + 14
    return out


def _x_axis(x0: float, y: float, width: float, lo: float, hi: float) -> list[str]:
    out = [f'<line x1="{_num(x0)}" y1="{_num(y)}" x2="{_num(x0 + width)}" y2="{_num(y)}"/>']
    ticks = _nice_ticks(lo, hi)
    step = ticks[1] - ticks[0] if len(ticks) > 1 else abs(hi - lo) or 1.0
    for tick in ticks:
        px = x0 + (tick - lo) / (hi - lo) * width
        out.append(
            f'<line x1="{_num(px)}" y1="{_num(y)}" x2="{_num(px)}" y2="{_num(y + 4)}"/>'
            f'<text x="{_num(px)}" y="{_num(y + 16)}" text-anchor="middle">'
            f"{text(_tick_label(tick, step))}</text>"
        )
    return out


def _numeric_svg(name: str, plot: NumericPlot) -> str:
    width, height = 760, 240
    top, bottom = 30.0, 200.0
    hx, hw = 50.0, 430.0  # histogram panel
    ex, ew = 540.0, 200.0  # ECDF panel
    plot_h = bottom - top
    lo, hi = plot.edges[0], plot.edges[-1]
    peak = max(max(plot.reference), max(plot.current)) or 1.0

    def sx(value: float, x0: float, w: float) -> float:
        return x0 + (value - lo) / (hi - lo) * w

    body = ['<g font-size="11" fill="#333" stroke-width="1">']
    body += _legend(hx, 14)
    body.append(f'<g stroke="{_AXIS}">')
    body += _x_axis(hx, bottom, hw, lo, hi)
    body += _x_axis(ex, bottom, ew, lo, hi)
    body.append(
        f'<line x1="{_num(hx)}" y1="{_num(top)}" x2="{_num(hx)}" y2="{_num(bottom)}"/>'
        f'<line x1="{_num(ex)}" y1="{_num(top)}" x2="{_num(ex)}" y2="{_num(bottom)}"/></g>'
    )
    body.append(
        f'<text x="{_num(hx - 6)}" y="{_num(top + 4)}" text-anchor="end">'
        f"{_percent(peak)}</text>"
        f'<text x="{_num(hx - 6)}" y="{_num(bottom)}" text-anchor="end">0</text>'
        f'<text x="{_num(ex - 6)}" y="{_num(top + 4)}" text-anchor="end">1</text>'
        f'<text x="{_num(ex - 6)}" y="{_num(bottom)}" text-anchor="end">0</text>'
        f'<text x="{_num(hx + hw / 2)}" y="{height - 6}" text-anchor="middle">'
        "share of values per bin</text>"
        f'<text x="{_num(ex + ew / 2)}" y="{height - 6}" text-anchor="middle">'
        "cumulative share (ECDF)</text>"
    )
    for shares, colour in ((plot.reference, REFERENCE_COLOUR), (plot.current, CURRENT_COLOUR)):
        body.append(f'<g fill="{colour}" fill-opacity="0.5">')
        for i, share in enumerate(shares):
            if share <= 0.0:
                continue
            x1, x2 = sx(plot.edges[i], hx, hw), sx(plot.edges[i + 1], hx, hw)
            h = share / peak * plot_h
            body.append(
                f'<rect x="{_num(x1)}" y="{_num(bottom - h)}" width="{_num(max(x2 - x1, 0.5))}" '
                f'height="{_num(h)}"/>'
            )
        body.append("</g>")
    # One transparent hover target per bin carries both shares as a tooltip.
    body.append('<g fill="#000" fill-opacity="0">')
    for i, (r, c) in enumerate(zip(plot.reference, plot.current, strict=True)):
        x1, x2 = sx(plot.edges[i], hx, hw), sx(plot.edges[i + 1], hx, hw)
        span = f"{plot.edges[i]:.4g} to {plot.edges[i + 1]:.4g}"
        body.append(
            f'<rect x="{_num(x1)}" y="{_num(top)}" width="{_num(max(x2 - x1, 0.5))}" '
            f'height="{_num(plot_h)}"><title>{text(span)}: reference {_percent(r)}, '
            f"current {_percent(c)}</title></rect>"
        )
    body.append("</g>")
    for ys, colour in (
        (plot.ecdf_reference, REFERENCE_COLOUR),
        (plot.ecdf_current, CURRENT_COLOUR),
    ):
        points = " ".join(
            f"{_num(sx(x, ex, ew))},{_num(bottom - y * plot_h)}"
            for x, y in zip(plot.ecdf_x, ys, strict=True)
        )
        body.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>'
        )
    body.append("</g>")
    return _svg(width, height, f"distribution of {name}: reference and current", body)


def _short(label: str) -> str:
    return label if len(label) <= _LABEL_CHARS else label[: _LABEL_CHARS - 1] + "\u2026"


def _categorical_svg(name: str, plot: CategoricalPlot) -> str:
    rows: list[tuple[str, float, float, bool, str]] = [
        (c, r, s, new, c)
        for c, r, s, new in zip(
            plot.categories, plot.reference, plot.current, plot.new, strict=True
        )
    ]
    if plot.other_count:
        noun = "category" if plot.other_count == 1 else "categories"
        label = f"other ({plot.other_count} {noun})"
        hover = label + (f", {plot.other_new} new" if plot.other_new else "")
        rows.append((label, plot.other_reference, plot.other_current, False, hover))
    label_w, bar_w, row_h, top = 190.0, 430.0, 24.0, 30.0
    width, height = 760, int(top + row_h * len(rows) + 8)
    # Scaled to the named categories: "other" often holds most of the rows, and would
    # flatten every named bar. It is clipped at full width; its label gives its share.
    named = [max(r, c) for r, c in zip(plot.reference, plot.current, strict=True)]
    peak = max(named, default=0.0) or max(plot.other_reference, plot.other_current) or 1.0
    body = ['<g font-size="11" fill="#333">']
    body += _legend(label_w, 14, new=any(plot.new) or plot.other_new > 0)
    body.append(
        f'<line x1="{_num(label_w)}" y1="{_num(top - 4)}" x2="{_num(label_w)}" '
        f'y2="{_num(height - 4)}" stroke="{_AXIS}"/>'
    )
    for k, (label, r, c, new, hover) in enumerate(rows):
        y = top + k * row_h
        tag = " (new)" if new else ""
        wr, wc = min(r / peak, 1.0) * bar_w, min(c / peak, 1.0) * bar_w
        colour = NEW_COLOUR if new else "#333"
        body.append(
            f"<g><title>{text(hover)}{tag}: reference {_percent(r)}, current {_percent(c)}"
            f'</title><text x="{_num(label_w - 6)}" y="{_num(y + 13)}" text-anchor="end" '
            f'fill="{colour}">{text(_short(label))}{tag}</text>'
            f'<rect x="{_num(label_w)}" y="{_num(y + 2)}" width="{_num(wr)}" '
            f'height="9" fill="{REFERENCE_COLOUR}" fill-opacity="0.6"/>'
            f'<rect x="{_num(label_w)}" y="{_num(y + 11)}" width="{_num(wc)}" '
            f'height="9" fill="{NEW_COLOUR if new else CURRENT_COLOUR}" fill-opacity="0.6"/>'
            f'<text x="{_num(label_w + bar_w + 8)}" y="{_num(y + 13)}">'
            f"{_percent(r)} \u2192 {_percent(c)}</text></g>"
        )
    body.append("</g>")
    return _svg(width, height, f"categories of {name}: reference and current", body)


def _message_svg(name: str, message: str) -> str:
    body = [
        '<rect x="0.5" y="0.5" width="759" height="59" fill="#f6f6f6" stroke="#ddd"/>',
        f'<text x="380" y="35" font-size="13" fill="#666" text-anchor="middle">{text(message)}'
        "</text>",
    ]
    return _svg(760, 60, f"no plot for {name}", body)


def plot_svg(name: str, plot: NumericPlot | CategoricalPlot | NoPlot) -> str:
    """One ``<svg>`` element for a feature's plot."""
    if isinstance(plot, NumericPlot):
        return _numeric_svg(name, plot)
    if isinstance(plot, CategoricalPlot):
        return _categorical_svg(name, plot)
    return _message_svg(name, plot.reason)
