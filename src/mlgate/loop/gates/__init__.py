"""Validation gates: composable checks that decide whether a candidate may be promoted.

A gate is a tree of checks joined by ``all_of`` / ``any_of`` (read from the loop file's
``gates:`` by :func:`parse_gate`); :func:`evaluate_gate` judges it on a holdout and
returns a :class:`GateReport` whose every check says pass or fail with its numbers. The
report is stored with the run and its :meth:`GateReport.digest` is ledgered.

::

    parse_gate(yaml) ─► Gate ─┐
                              ├─► evaluate_gate ─► GateReport ─► to_json / digest / summary
    GateInputs(y_true, candidate, champion, slices, latency, size, signatures) ─┘

No gate configured means nothing is promoted.
"""

from __future__ import annotations

from mlgate.loop.gates._metrics import METRICS, Metric
from mlgate.loop.gates._parse import parse_gate
from mlgate.loop.gates._serving_checks import signature_problems
from mlgate.loop.gates.evaluate import evaluate_gate
from mlgate.loop.gates.inputs import GateInputs, Predictions, Task
from mlgate.loop.gates.report import CheckResult, GateReport
from mlgate.loop.gates.spec import (
    AllOf,
    AnyOf,
    ChampionCheck,
    Gate,
    LatencyCheck,
    MetricCheck,
    Node,
    SignatureCheck,
    SignificanceCheck,
    SizeCheck,
    SliceCheck,
)

__all__ = [
    "METRICS",
    "AllOf",
    "AnyOf",
    "ChampionCheck",
    "CheckResult",
    "Gate",
    "GateInputs",
    "GateReport",
    "LatencyCheck",
    "Metric",
    "MetricCheck",
    "Node",
    "Predictions",
    "SignatureCheck",
    "SignificanceCheck",
    "SizeCheck",
    "SliceCheck",
    "Task",
    "evaluate_gate",
    "parse_gate",
    "signature_problems",
]
