"""Judge a gate on a holdout: every check evaluated, its number and verdict reported.

Composites evaluate all their checks rather than stopping at the first decisive one, so
that a rejected candidate's report shows every reason at once. With no gate configured
nothing is promoted: the safe default is to keep the model in production.
"""

from __future__ import annotations

from typing import assert_never

from mlgate.loop.gates._model_checks import (
    Holdout,
    check_champion,
    check_metric,
    check_significance,
)
from mlgate.loop.gates._serving_checks import check_latency, check_signature, check_size
from mlgate.loop.gates._slice_check import check_slices
from mlgate.loop.gates.inputs import GateInputs
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

__all__ = ["NO_GATE_MESSAGE", "evaluate_gate"]

NO_GATE_MESSAGE = (
    "no gate is configured, so nothing is promoted; add a gates: section to the loop file "
    "(for example all_of: [{metric: {name: accuracy, min: 0.8}}])"
)


def evaluate_gate(gate: Gate | None, inputs: GateInputs, *, seed: int = 0) -> GateReport:
    """The gate's verdict on ``inputs``; ``seed`` drives every bootstrap (same seed, same report).

    Raises :class:`~mlgate.errors.GateError` only when the gate cannot be evaluated at all
    (labels of mixed types, a slice column that was not given); a check whose number
    cannot be computed fails instead.
    """
    if gate is None:
        tree = CheckResult("gate", "no_gate", False, NO_GATE_MESSAGE)
        return GateReport(passed=False, tree=tree, gate=None, seed=seed)
    holdout = Holdout(inputs, seed)
    tree = _evaluate(gate.root, gate.root.KIND, holdout)
    return GateReport(passed=tree.passed, tree=tree, gate=gate.to_json(), seed=seed)


def _evaluate(node: Node, path: str, holdout: Holdout) -> CheckResult:
    if isinstance(node, AllOf | AnyOf):
        return _composite(node, path, holdout)
    if isinstance(node, MetricCheck):
        return check_metric(node, path, holdout)
    if isinstance(node, ChampionCheck):
        return check_champion(node, path, holdout)
    if isinstance(node, SignificanceCheck):
        return check_significance(node, path, holdout)
    if isinstance(node, SliceCheck):
        return check_slices(node, path, holdout)
    if isinstance(node, LatencyCheck):
        return check_latency(node, path, holdout.inputs)
    if isinstance(node, SizeCheck):
        return check_size(node, path, holdout.inputs)
    if isinstance(node, SignatureCheck):
        return check_signature(node, path, holdout.inputs)
    assert_never(node)


def _composite(node: AllOf | AnyOf, path: str, holdout: Holdout) -> CheckResult:
    children = tuple(
        _evaluate(child, f"{path}[{i}].{child.KIND}", holdout)
        for i, child in enumerate(node.checks)
    )
    passed_count = sum(1 for c in children if c.passed)
    total = len(children)
    needed = total if isinstance(node, AllOf) else 1
    passed = passed_count >= needed
    rule = "all must pass" if isinstance(node, AllOf) else "one must pass"
    message = f"{passed_count} of {total} checks passed ({rule})"
    details = {"passed": passed_count, "total": total}
    return CheckResult(
        path,
        node.KIND,
        passed,
        message,
        float(passed_count),
        float(needed),
        details,
        children=children,
    )
