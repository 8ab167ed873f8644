"""The gate's verdict with its numbers: stored whole with the run, its digest ledgered.

The JSON form is plain (finite floats, ``None`` where a number could not be had, never
NaN) so that its canonical digest is well defined and the stored report can be read back
with :meth:`GateReport.from_json` and digested again to the same value.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgate.errors import GateError
from mlgate.ledger.events import digest_json

__all__ = ["FORMAT", "CheckResult", "GateReport"]

FORMAT = "mlgate.gate_report/1"
_COMPOSITE = ("all_of", "any_of")


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: what was compared, the numbers, and what to do about it.

    ``value`` is the measured number and ``threshold`` the bound it was held to (both
    None where they do not apply). ``skipped`` marks a pass by rule rather than by
    measurement (no champion yet, a segment too small to judge). Composite checks and
    per-segment slice results carry their parts in ``children``.
    """

    path: str
    kind: str
    passed: bool
    message: str
    value: float | None = None
    threshold: float | None = None
    details: Mapping[str, float | int | None] = field(default_factory=dict)
    skipped: bool = False
    children: tuple[CheckResult, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _finite(self.value))
        object.__setattr__(self, "threshold", _finite(self.threshold))
        plain = {str(k): _plain_number(v) for k, v in self.details.items()}
        object.__setattr__(self, "details", plain)

    def walk(self) -> Iterator[CheckResult]:
        """This result and every result under it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "passed": self.passed,
            "skipped": self.skipped,
            "value": self.value,
            "threshold": self.threshold,
            "details": dict(self.details),
            "message": self.message,
            "children": [child.to_json() for child in self.children],
        }

    @classmethod
    def from_json(cls, data: Any) -> CheckResult:
        try:
            return cls(
                path=str(data["path"]),
                kind=str(data["kind"]),
                passed=bool(data["passed"]),
                message=str(data["message"]),
                value=data["value"],
                threshold=data["threshold"],
                details=dict(data["details"]),
                skipped=bool(data["skipped"]),
                children=tuple(cls.from_json(child) for child in data["children"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GateError(f"a stored gate check result is malformed ({exc!r})") from None


@dataclass(frozen=True)
class GateReport:
    """The verdict: ``passed`` and the result ``tree``, with the gate that was used.

    ``gate`` is the gate's ``to_json()`` (None when none was configured) and ``seed`` the
    bootstrap seed, so the report alone says how to reproduce every number in it.
    """

    passed: bool
    tree: CheckResult
    gate: Mapping[str, Any] | None = None
    seed: int = 0

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        """Every leaf check (composites and slice segments left out), depth first."""
        return tuple(self._leaves(self.tree))

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        """The failed leaf checks that made the gate fail (none when it passed).

        A failed check inside an ``any_of`` that passed anyway is not a cause.
        """
        return () if self.passed else tuple(self._causes(self.tree))

    def summary(self) -> str:
        """One line for people: the verdict and what failed."""
        leaves = self.checks
        skipped = sum(1 for c in leaves if c.skipped)
        note = f" ({skipped} skipped)" if skipped else ""
        if self.passed:
            return f"gate passed: {len(leaves)} of {len(leaves)} checks passed{note}"
        if self.tree.kind == "no_gate":
            return f"gate failed: {self.tree.message}"
        failed = self.failures
        shown = "; ".join(f"{c.path} {_short(c)}" for c in failed[:3])
        more = f"; and {len(failed) - 3} more" if len(failed) > 3 else ""
        return f"gate failed: {len(failed)} of {len(leaves)} checks failed: {shown}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "passed": self.passed,
            "summary": self.summary(),
            "seed": self.seed,
            "gate": None if self.gate is None else dict(self.gate),
            "tree": self.tree.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> GateReport:
        """Read a stored report back; :class:`GateError` if it is not one."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise GateError(f"not a gate report of format {FORMAT}: {str(data)[:80]!r}")
        try:
            return cls(
                passed=bool(data["passed"]),
                tree=CheckResult.from_json(data["tree"]),
                gate=data["gate"],
                seed=int(data["seed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise GateError(f"a stored gate report is malformed ({exc!r})") from None

    def digest(self) -> str:
        """``sha256:`` of the canonical JSON form: what the ledger records."""
        return digest_json(self.to_json())

    def _leaves(self, node: CheckResult) -> Iterator[CheckResult]:
        if node.kind in _COMPOSITE:
            for child in node.children:
                yield from self._leaves(child)
        else:
            yield node

    def _causes(self, node: CheckResult) -> Iterator[CheckResult]:
        if node.passed:
            return
        if node.kind in _COMPOSITE:
            for child in node.children:
                yield from self._causes(child)
        else:
            yield node


def _short(check: CheckResult) -> str:
    """Value against threshold, or the message's first clause when there is no number."""
    if check.value is not None and check.threshold is not None:
        return f"{check.value:.4g} against {check.threshold:.4g}"
    return check.message.split(";")[0]


def _finite(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _plain_number(value: object) -> float | int | None:
    """JSON-safe detail: ints stay ints (counts), non-finite floats become None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return _plain_number(value.item())
    return _finite(value)
