"""The drift report as one self-contained HTML page: inline CSS and SVG, no script, no CDN.

The page opens with the verdict, the counts and the method (tests, correction, alpha,
effect-size thresholds), then a summary table with a row per feature, then a section per
feature with its reason, every statistic, and a plot of reference against current (see
:mod:`._data` for what is plotted). Drifted features come first, then features that could
not be judged, then the rest, each group in the report's order.

Every string from the data (feature names, category labels, file names, reasons quoting
them) is escaped with :func:`html.escape`; section anchors are ``f0, f1, ...``, never
names. The page holds binned numbers only, about 10 kB per feature whatever the row count.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from mlgate import __version__
from mlgate.monitoring.drift import DriftReport, FeatureDrift
from mlgate.monitoring.report._data import CategoricalPlot, FeaturePlot, NoPlot, NumericPlot
from mlgate.monitoring.report._decision import deciding_value
from mlgate.monitoring.report._svg import CURRENT_COLOUR, REFERENCE_COLOUR, plot_svg, text

__all__ = ["render_html", "write_html"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0 auto;
max-width:1100px;padding:0 20px 40px}
h1{margin:0;font-size:26px}h2{font-size:18px;margin:28px 0 6px}
.verdict{padding:16px 20px;border-radius:6px;margin:20px 0 12px;color:#fff}
.verdict.drift{background:#c0392b}.verdict.ok{background:#2e7d32}
.verdict p{margin:6px 0 0}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
dl.meta dt{color:#666}dl.meta dd{margin:0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 9px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f4f4f4;font-weight:600}
td.name,th.name,td.text{text-align:left}td.name{white-space:normal;word-break:break-all}
tr.drifted td{background:#fdecea}
.badge{display:inline-block;border-radius:3px;padding:0 6px;font-size:12px;color:#fff;
vertical-align:middle}
.badge.drift{background:#c0392b}.badge.ok{background:#2e7d32}.badge.skip{background:#888}
section.feature{border-top:1px solid #ddd;margin-top:24px}
.reason{color:#444}.note{color:#666;font-size:12px}.new{color:#d62728;font-weight:600}
.columns{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
figure{margin:0}svg{max-width:100%;height:auto}
"""


def _num(value: float | None, *, p: bool = False) -> str:
    if value is None or math.isnan(value):
        return "\u2014"
    if math.isinf(value):
        return "\u221e" if value > 0 else "-\u221e"
    if p and 0 < value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.4g}"


def _badge(feature: FeatureDrift) -> str:
    if feature.drifted:
        return '<span class="badge drift">drifted</span>'
    if feature.p_value is None:
        return f'<span class="badge skip">{text(feature.status.replace("_", " "))}</span>'
    return '<span class="badge ok">no drift</span>'


def _ordered(report: DriftReport) -> list[tuple[int, FeatureDrift]]:
    features = list(enumerate(report.features.values()))

    def group(item: tuple[int, FeatureDrift]) -> int:
        _, f = item
        return 0 if f.drifted else 1 if f.p_value is None else 2

    return sorted(features, key=lambda item: (group(item), item[0]))


def _method_value(value: object) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{text(k)}: {text(v)}" for k, v in value.items())
    return text(value)


def _header(
    report: DriftReport, reference_label: str, current_label: str, generated_at: datetime | None
) -> list[str]:
    judged = sum(1 for f in report.features.values() if f.p_value is not None)
    kind = "drift" if report.drifted else "ok"
    headline = "Drift detected" if report.drifted else "No drift detected"
    out = [
        f'<header class="verdict {kind}"><h1>{headline}</h1>',
        f"<p>{report.n_drifted} of {len(report.features)} features drifted "
        f"(share {report.share_drifted:.1%}); {judged} judged.</p>",
        f"<p>{text(report.reason)}</p></header>",
        '<dl class="meta">',
        f"<dt>reference</dt><dd>{text(reference_label)} ({report.n_reference_rows:,} rows)</dd>",
        f"<dt>current</dt><dd>{text(current_label)} ({report.n_current_rows:,} rows)</dd>",
    ]
    for key, value in report.method.items():
        out.append(f"<dt>{text(str(key).replace('_', ' '))}</dt><dd>{_method_value(value)}</dd>")
    if report.ignored_columns:
        ignored = ", ".join(text(c) for c in report.ignored_columns)
        out.append(f"<dt>ignored columns</dt><dd>{ignored} (not in the reference)</dd>")
    if generated_at is not None:
        out.append(f"<dt>generated</dt><dd>{text(generated_at.isoformat(timespec='seconds'))}</dd>")
    out.append("</dl>")
    return out


_SUMMARY_HEAD = (
    "feature",
    "kind",
    "status",
    "test",
    "statistic",
    "p-value",
    "adjusted",
    "PSI",
    "JS",
    "Wasserstein",
    "decided by",
    "value",
    "threshold",
    "drifted",
)


def _statistic(feature: FeatureDrift) -> float | None:
    if feature.test == "ks":
        return feature.ks.statistic if feature.ks else None
    if feature.test == "chi2":
        return feature.chi2.statistic if feature.chi2 else None
    return feature.psi


def _summary(ordered: Sequence[tuple[int, FeatureDrift]]) -> list[str]:
    cells = "".join(
        f'<th class="name">{h}</th>' if h == "feature" else f"<th>{h}</th>" for h in _SUMMARY_HEAD
    )
    out = ["<h2>Features</h2>", f"<table><thead><tr>{cells}</tr></thead><tbody>"]
    for index, f in ordered:
        row = [
            f'<td class="name"><a href="#f{index}">{text(f.name)}</a></td>',
            f'<td class="text">{f.kind}</td>',
            f'<td class="text">{text(f.status)}</td>',
            f'<td class="text">{text(f.test)}</td>',
            f"<td>{_num(_statistic(f))}</td>",
            f"<td>{_num(f.p_value, p=True)}</td>",
            f"<td>{_num(f.p_value_adjusted, p=True)}</td>",
            f"<td>{_num(f.psi)}</td>",
            f"<td>{_num(f.js)}</td>",
            f"<td>{_num(f.wasserstein) if f.kind == 'numeric' else ''}</td>",
            f'<td class="text">{text(f.decided_by)}</td>',
            f"<td>{_num(deciding_value(f), p=True)}</td>",
            f"<td>{_num(f.threshold)}</td>",
            f"<td>{_badge(f)}</td>",
        ]
        out.append(f'<tr class="{"drifted" if f.drifted else ""}">{"".join(row)}</tr>')
    out.append("</tbody></table>")
    return out


def _stats_rows(f: FeatureDrift) -> list[tuple[str, str]]:
    limits = f.thresholds
    rows: list[tuple[str, str]] = [("test", text(f.test))]
    if f.ks is not None:
        rows += [("KS statistic", _num(f.ks.statistic)), ("KS p-value", _num(f.ks.p_value, p=True))]
    if f.chi2 is not None:
        rows += [
            ("chi-square", f"{_num(f.chi2.statistic)} (dof {f.chi2.dof})"),
            ("chi-square p-value", _num(f.chi2.p_value, p=True)),
        ]
    if f.p_value is not None:
        rows.append(("adjusted p-value", f"{_num(f.p_value_adjusted, p=True)}"))
        rows.append(("alpha", _num(limits.get("p_value"))))
    rows.append(
        ("PSI", _num(f.psi) + (f" (threshold {_num(limits['psi'])})" if "psi" in limits else ""))
    )
    js = _num(f.js) + (f" (threshold {_num(limits['js'])})" if "js" in limits else "")
    rows += [("Jensen-Shannon", js), ("KL divergence", _num(f.kl))]
    if f.kind == "numeric":
        w = limits.get("wasserstein")
        rows.append(
            (
                "Wasserstein / std",
                _num(f.wasserstein) + (f" (threshold {_num(w)})" if w is not None else ""),
            )
        )
    rows += [
        ("values (ref / cur)", f"{f.n_reference:,} / {f.n_current:,}"),
        ("missing (ref / cur)", f"{f.missing_reference:,} / {f.missing_current:,}"),
    ]
    if f.infinite_reference or f.infinite_current:
        rows.append(("infinite (ref / cur)", f"{f.infinite_reference:,} / {f.infinite_current:,}"))
    rows.append(("decided by", f"{text(f.decided_by)} (threshold {_num(f.threshold)})"))
    return rows


def _new_categories(f: FeatureDrift) -> str:
    if not f.new_categories:
        return ""
    shown = ", ".join(f'<span class="new">{text(c)}</span>' for c in f.new_categories[:50])
    more = f" and {len(f.new_categories) - 50} more" if len(f.new_categories) > 50 else ""
    share = _num(None if f.new_category_share is None else f.new_category_share * 100)
    return f"<p>New categories ({share}% of the current window): {shown}{more}</p>"


def _caption(plot: FeaturePlot) -> str:
    if isinstance(plot, CategoricalPlot):
        if not plot.other_count:
            return ""
        new = f", {plot.other_new} of them new" if plot.other_new else ""
        return (
            f'<figcaption class="note">"other" folds {plot.other_count} less frequent '
            f"categories{new}.</figcaption>"
        )
    if not isinstance(plot, NumericPlot):
        return ""
    parts = []
    (below_r, below_c), (above_r, above_c) = plot.below, plot.above
    if max(below_r, below_c, above_r, above_c) >= 0.01:  # the 0.1% tails are by design
        parts.append(
            f"Outside the plotted range: below {below_r:.2%} of the reference and "
            f"{below_c:.2%} of the current window, above {above_r:.2%} and {above_c:.2%}."
        )
    if plot.approximate:
        parts.append("Reference shares from the profile's quantile grid.")
    return f'<figcaption class="note">{" ".join(parts)}</figcaption>' if parts else ""


def _section(index: int, f: FeatureDrift, plot: FeaturePlot) -> list[str]:
    stats = "".join(f'<tr><td class="text">{k}</td><td>{v}</td></tr>' for k, v in _stats_rows(f))
    return [
        f'<section class="feature" id="f{index}">',
        f"<h2>{text(f.name)} {_badge(f)} <small>{f.kind}</small></h2>",
        f'<p class="reason">{text(f.reason)}</p>',
        _new_categories(f),
        '<div class="columns">',
        f"<figure>{plot_svg(f.name, plot)}{_caption(plot)}</figure>",
        f"<table><tbody>{stats}</tbody></table>",
        "</div></section>",
    ]


def render_html(
    report: DriftReport,
    plots: Mapping[str, FeaturePlot],
    *,
    reference_label: str = "reference",
    current_label: str = "current",
    generated_at: datetime | None = None,
    title: str = "Drift report",
) -> str:
    """The whole page as a string. A feature missing from ``plots`` gets a "no plot" box."""
    ordered = _ordered(report)
    legend = (
        f'<p class="note">Plots: <span style="color:{REFERENCE_COLOUR}">reference</span> vs '
        f'<span style="color:{CURRENT_COLOUR}">current</span>, as shares of each window\'s '
        "values, so windows of different sizes compare directly.</p>"
    )
    body: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{text(title)}: {text(current_label)} vs {text(reference_label)}</title>",
        f"<style>{_CSS}</style></head><body>",
        *_header(report, reference_label, current_label, generated_at),
        *_summary(ordered),
        legend,
    ]
    for index, feature in ordered:
        plot = plots.get(feature.name, NoPlot("no plot data for this feature"))
        body += _section(index, feature, plot)
    body.append(f'<footer class="note"><p>mlgate {text(__version__)}</p></footer>')
    body.append("</body></html>")
    return "\n".join(part for part in body if part) + "\n"


def write_html(path: str | os.PathLike[str], page: str) -> Path:
    """Write the page atomically (temporary file, then rename) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.chmod(tmp_name, 0o644)  # mkstemp's 0600 would hide a report meant to be shared
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target
