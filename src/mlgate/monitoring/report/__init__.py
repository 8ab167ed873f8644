"""Drift reports for people: a self-contained HTML page with a plot per feature.

:func:`plots_from_frames` or :func:`plots_from_profile` bins both windows into what the
page draws (a fixed number of numbers per feature, whatever the row count);
:func:`render_html` lays out the verdict, the method, a summary table and a section per
feature; :func:`write_html` writes it. :func:`deciding_value` gives the number a verdict
turned on, for any table that shows "value vs threshold". ``mlgate drift --html`` uses all
four.
"""

from mlgate.monitoring.report._data import (
    CategoricalPlot,
    FeaturePlot,
    NoPlot,
    NumericPlot,
    plots_from_frames,
    plots_from_profile,
)
from mlgate.monitoring.report._decision import deciding_value
from mlgate.monitoring.report.html import render_html, write_html

__all__ = [
    "CategoricalPlot",
    "FeaturePlot",
    "NoPlot",
    "NumericPlot",
    "deciding_value",
    "plots_from_frames",
    "plots_from_profile",
    "render_html",
    "write_html",
]
