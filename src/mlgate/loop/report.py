"""The loop's incident report: one self-contained HTML page (inline CSS and SVG, no script).

What an SRE shows after a drift incident: a one-line outcome derived from the runs and
events (never a fixed story), rolling accuracy with the story's markers on it, each
version's share of traffic, the ledger timeline, every run with its gate checks, and the
ledger's root with how to verify it offline. Every value from users (versions, reasons,
event lines, check paths) is escaped; a number that is missing or NaN shows as "—".
The outcome line and the markers are worked out in :mod:`mlgate.loop._report_story`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from mlgate import __version__
from mlgate.loop._report_story import DASH, fmt, outcome_line, sorted_answers, story_markers
from mlgate.loop._report_svg import accuracy_svg, message_svg, rolling_accuracy, traffic_svg
from mlgate.monitoring.report._svg import text
from mlgate.monitoring.report.html import write_html

__all__ = [
    "LoopReport",
    "ReportAnswer",
    "ReportEvent",
    "outcome_line",
    "render_loop_report",
    "rolling_accuracy",
    "story_markers",
    "write_loop_report",
]

WINDOW = 100  # answers in the rolling accuracy
BUCKET = 50  # answers per traffic bar, more where there are over 200 bars


@dataclass(frozen=True)
class ReportAnswer:
    """One served request, judged against the true label."""

    index: int
    at: float
    version: str
    correct: bool
    world: str


@dataclass(frozen=True)
class ReportEvent:
    """One step of the story, from the ledger."""

    at: float
    kind: str
    text: str
    ledger_seq: int | None = None


@dataclass(frozen=True)
class LoopReport:
    """Everything on the page; ``started_at`` is time zero of every time axis."""

    title: str
    endpoint: str
    started_at: float
    answers: Sequence[ReportAnswer]
    events: Sequence[ReportEvent]
    runs: Sequence[Mapping[str, Any]]
    drift_at: int | None
    ledger: Mapping[str, Any]
    notes: Sequence[str] = ()


_FAMILY = {"monitor": "#e67e22", "loop": "#4c78a8", "canary": "#8e44ad", "model": "#2e7d32"}
_STATE = {"promoted": "#2e7d32", "quarantined": "#8e44ad", "rejected": "#c0392b"}
_STATE |= {"failed": "#c0392b", "rolled_back": "#c0392b"}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0 auto;
max-width:1100px;padding:0 20px 40px}h1{margin:0;font-size:24px}
h2{font-size:18px;margin:28px 0 6px}.outcome{padding:14px 18px;border-radius:6px;margin:16px 0;
color:#fff;font-size:15px}.outcome.good{background:#2e7d32}.outcome.open{background:#b9770e}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.meta dt{color:#666}dl.meta dd{margin:0}code{word-break:break-all}
table{border-collapse:collapse;font-variant-numeric:tabular-nums;margin:4px 0}
th,td{padding:3px 9px;border-bottom:1px solid #e4e4e4;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.n{text-align:right;white-space:nowrap}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;color:#fff;
white-space:nowrap}tr.detail>td{border-bottom:2px solid #ddd;padding-left:28px}
.err{color:#c0392b}.note{color:#666;font-size:12px}.box{border:1px solid #ddd;
border-radius:6px;padding:10px 16px}figure{margin:0}svg{max-width:100%;height:auto}
"""


def _plain(value: object) -> str:
    """An identifier (a version) as written, or a dash where there is none."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return DASH
    return text(value)


def _badge(label: object, colour: str) -> str:
    return f'<span class="badge" style="background:{colour}">{text(label)}</span>'


def _header(report: LoopReport, answers: Sequence[ReportAnswer], outcome: str) -> list[str]:
    try:
        started = datetime.fromtimestamp(report.started_at, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # NaN or out of the calendar's range
        started = DASH
    good = any(r.get("state") == "promoted" for r in report.runs)
    out = [
        f"<h1>{text(report.title)}</h1>",
        f'<p class="outcome {"good" if good else "open"}">{text(outcome)}</p>',
        '<dl class="meta">',
        f"<dt>endpoint</dt><dd><code>{text(report.endpoint)}</code></dd>",
        f"<dt>started</dt><dd>{text(started)}</dd>",
        f"<dt>requests judged</dt><dd>{len(answers):,}</dd>",
    ]
    out += [f"<dt>note</dt><dd>{text(note)}</dd>" for note in report.notes]
    return [*out, "</dl>"]


def _by_version(answers: Sequence[ReportAnswer]) -> list[str]:
    worlds = list(dict.fromkeys(a.world for a in answers))
    head = "".join(f'<th class="n">accuracy ({text(w)})</th>' for w in worlds)
    out = [f'<table><tr><th>version</th><th class="n">answers</th>{head}</tr>']
    for version in dict.fromkeys(a.version for a in answers):
        mine = [a for a in answers if a.version == version]
        cells = "".join(
            f'<td class="n">{fmt(np.mean(hits) if hits else None, ".1%")}</td>'
            for hits in ([a.correct for a in mine if a.world == w] for w in worlds)
        )
        out.append(f'<tr><td>{text(version)}</td><td class="n">{len(mine):,}</td>{cells}</tr>')
    return [*out, "</table>"]


def _plots(report: LoopReport, answers: Sequence[ReportAnswer]) -> list[str]:
    out = ["<h2>Accuracy</h2>"]
    if not answers:
        empty = message_svg("accuracy", "no answers were judged, so there is nothing to plot")
        return [*out, f"<figure>{empty}</figure>", "<h2>Traffic by version</h2>", "<p>none</p>"]
    indices = [a.index for a in answers]
    versions = [a.version for a in answers]
    bucket = max(BUCKET, math.ceil(len(answers) / 200))  # a light page for long streams
    correct = [a.correct for a in answers]
    markers = story_markers(report)
    hero = accuracy_svg(indices, correct, versions, markers, window=WINDOW, bucket=bucket)
    return [
        *out,
        f"<figure>{hero}</figure>",
        f'<p class="note">Share correct over the last {WINDOW} answers; hover a marker for '
        "its ledger line.</p>",
        *_by_version(answers),
        "<h2>Traffic by version</h2>",
        f"<figure>{traffic_svg(indices, versions, bucket=bucket)}</figure>",
    ]


def _timeline(report: LoopReport) -> list[str]:
    if not report.events:
        return ["<h2>Timeline</h2>", "<p>No events were recorded.</p>"]
    out = ["<h2>Timeline</h2>", '<table><tr><th class="n">t (s)</th><th>kind</th>']
    out.append('<th>what happened</th><th class="n">ledger seq</th></tr>')
    for e in sorted(report.events, key=lambda e: e.at):
        colour = _FAMILY.get(e.kind.split(".", 1)[0], "#888")
        out.append(
            f'<tr><td class="n">{fmt(e.at - report.started_at, ".1f")}</td>'
            f"<td>{_badge(e.kind, colour)}</td><td>{text(e.text)}</td>"
            f'<td class="n">{fmt(e.ledger_seq, ".0f")}</td></tr>'
        )
    return [*out, "</table>"]


def _leaves(node: Any) -> Iterator[Mapping[str, Any]]:
    if not isinstance(node, Mapping):
        return
    if node.get("kind") in ("all_of", "any_of"):
        for child in node.get("children") or ():
            yield from _leaves(child)
    else:
        yield node


def _checks(gate: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The leaf checks: a ``checks`` list, or the leaves of a stored GateReport's tree."""
    listed = gate.get("checks")
    if isinstance(listed, Sequence):
        return [c for c in listed if isinstance(c, Mapping)]
    return list(_leaves(gate.get("tree")))


def _run_detail(run: Mapping[str, Any]) -> str:
    gate, parts = run.get("gate_report"), []
    if isinstance(gate, Mapping) and (checks := _checks(gate)):
        parts.append("<table><tr><th>check</th><th>kind</th><th class='n'>value</th>")
        parts.append("<th class='n'>threshold</th><th>result</th><th>message</th></tr>")
        for c in checks:
            verdict = _badge("pass", "#2e7d32") if c.get("passed") else _badge("fail", "#c0392b")
            parts.append(
                f"<tr><td>{_plain(c.get('path'))}</td><td>{_plain(c.get('kind'))}</td>"
                f"<td class='n'>{fmt(c.get('value'))}</td>"
                f"<td class='n'>{fmt(c.get('threshold'))}</td><td>{verdict}</td>"
                f"<td>{_plain(c.get('message'))}</td></tr>"
            )
        parts.append("</table>")
    if run.get("error"):
        parts.append(f'<p class="err">{text(run["error"])}</p>')
    return f'<tr class="detail"><td colspan="6">{"".join(parts)}</td></tr>' if parts else ""


def _runs(report: LoopReport) -> list[str]:
    if not report.runs:
        return ["<h2>Runs</h2>", "<p>No retraining run was started.</p>"]
    out = ["<h2>Runs</h2>", "<table><tr><th>run</th><th>trigger</th><th>state</th>"]
    out.append('<th class="n">rows</th><th>candidate</th><th>gates</th></tr>')
    for run in report.runs:
        trigger, data, gate = run.get("trigger"), run.get("data"), run.get("gate_report")
        why = DASH
        if isinstance(trigger, Mapping):
            why = f"{trigger.get('kind', '')}: {trigger.get('reason', '')}"
        verdict = DASH
        if isinstance(gate, Mapping) and "passed" in gate:
            verdict = _badge("passed", "#2e7d32") if gate["passed"] else _badge("failed", "#c0392b")
        state = str(run.get("state"))
        rows = data.get("rows") if isinstance(data, Mapping) else None
        out.append(
            f"<tr><td>{_plain(run.get('id'))}</td><td>{text(why)}</td>"
            f"<td>{_badge(state, _STATE.get(state, '#4c78a8'))}</td>"
            f'<td class="n">{fmt(rows, ",.0f")}</td>'
            f"<td>{_plain(run.get('candidate_version'))}</td><td>{verdict}</td></tr>"
            + _run_detail(run)
        )
    return [*out, "</table>"]


def _ledger(ledger: Mapping[str, Any]) -> list[str]:
    verified = ledger.get("verified")
    badge = _badge("verified", "#2e7d32") if verified else _badge("not verified", "#c0392b")
    return [
        '<h2>Ledger</h2><div class="box"><dl class="meta">',
        f"<dt>entries</dt><dd>{fmt(ledger.get('size'), ',.0f')}</dd>",
        f"<dt>root hash</dt><dd><code>{_plain(ledger.get('root'))}</code></dd>",
        f"<dt>integrity</dt><dd>{badge}</dd>",
        f"<dt>checkpoints</dt><dd>{fmt(ledger.get('checkpoints'), ',.0f')}</dd></dl>",
        "<p>Verify offline, without mlgate: <code>mlgate ledger export BUNDLE</code>, then "
        "<code>python BUNDLE/verifier/verify.py BUNDLE --public-key KEY</code> with the key "
        "received separately; it recomputes this root from the entries.</p></div>",
    ]


def render_loop_report(report: LoopReport) -> str:
    """The whole page as a string."""
    answers = sorted_answers(report)
    body = [
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{text(report.title)}</title><style>{_CSS}</style></head><body>",
        *_header(report, answers, outcome_line(report)),
        *_plots(report, answers),
        *_timeline(report),
        *_runs(report),
        *_ledger(report.ledger),
        f'<footer class="note"><p>mlgate {text(__version__)}</p></footer></body></html>',
    ]
    return "\n".join(body) + "\n"


def write_loop_report(path: Path, report: LoopReport) -> Path:
    """Render and write the page atomically (temporary file, then rename)."""
    return write_html(path, render_loop_report(report))
