"""Value types of the data-quality checks; public through :mod:`mlgate.monitoring.quality`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["CHECKS", "Finding", "QualityOptions", "QualityReport", "Severity"]

Severity = Literal["error", "warning"]

CHECKS = (
    "empty_batch",
    "missing_column",
    "extra_columns",
    "wrong_type",
    "infinite_values",
    "out_of_range",
    "unseen_categories",
    "missing_rate",
    "outlier_rate",
    "duplicate_rows",
    "label_shift",
    "label_flip",
    "insufficient_data",
)


@dataclass(frozen=True)
class QualityOptions:
    """Thresholds of :func:`~mlgate.monitoring.quality.check_batch`; defaults documented there.

    Tolerances are absolute shares allowed above the reference's base rate.
    ``disabled`` names checks not to run; ``warn_only`` names checks whose errors
    become warnings. ``label_flip_index`` picks the neighbours of the label-flip
    check: ``"reference"`` (the profile's trusted sample; the batch itself if the
    profile kept none) or ``"batch"`` (leave-one-out within the batch). Batches with
    more labelled rows than ``label_flip_max_rows`` are judged on a random subsample
    of that size (drawn with ``seed``): the share test needs no more, and a
    neighbour query costs tens of microseconds a row.
    """

    alpha: float = 0.001
    out_of_range_tolerance: float = 0.01
    unseen_tolerance: float = 0.01
    missing_tolerance: float = 0.02
    outlier_tolerance: float = 0.01
    duplicate_tolerance: float = 0.02
    label_flip_margin: float = 0.01
    label_shift_min_tv: float = 0.1
    label_flip_index: Literal["reference", "batch"] = "reference"
    label_flip_max_rows: int = 20_000
    min_reference_rows: int = 100
    seed: int = 0
    disabled: frozenset[str] = field(default_factory=frozenset)
    warn_only: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        for name in (
            "out_of_range_tolerance",
            "unseen_tolerance",
            "missing_tolerance",
            "outlier_tolerance",
            "duplicate_tolerance",
            "label_flip_margin",
            "label_shift_min_tv",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise ValueError(f"{name} must be a share in [0, 1], got {value}")
        if self.label_flip_index not in ("reference", "batch"):
            raise ValueError(
                f"label_flip_index must be 'reference' or 'batch', got {self.label_flip_index!r}"
            )
        if self.label_flip_max_rows < 1:
            raise ValueError(f"label_flip_max_rows must be >= 1, got {self.label_flip_max_rows}")
        if self.min_reference_rows < 1:
            raise ValueError(f"min_reference_rows must be >= 1, got {self.min_reference_rows}")
        unknown = sorted((set(self.disabled) | set(self.warn_only)) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown check names {unknown}; known checks are {list(CHECKS)}")


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one column (or the whole batch when ``column`` is None).

    ``observed`` and ``threshold`` are in the check's unit (a share of rows for the
    rate checks, total variation for label shift); ``rows`` lists up to 100 row
    indices of the offending rows where the check is row-level.
    """

    check: str
    column: str | None
    observed: float | None
    threshold: float | None
    severity: Severity
    message: str
    p_value: float | None = None
    rows: tuple[int, ...] = ()

    def label(self) -> str:
        return self.check if self.column is None else f"{self.check}[{self.column}]"

    def to_json(self) -> dict[str, object]:
        return {
            "check": self.check,
            "column": self.column,
            "observed": self.observed,
            "threshold": self.threshold,
            "severity": self.severity,
            "message": self.message,
            "p_value": self.p_value,
            "rows": list(self.rows),
        }


@dataclass(frozen=True)
class QualityReport:
    """Findings of one :func:`check_batch` call; the batch passed if none is an error."""

    n_rows: int
    findings: tuple[Finding, ...]

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def passed(self) -> bool:
        return not self.errors

    @property
    def reasons(self) -> tuple[str, ...]:
        """One line per error, for quarantine records and exceptions."""
        return tuple(f.label() + ": " + f.message for f in self.errors)

    def summary(self) -> str:
        """One human line: verdict, rows, the failing checks, warning count."""
        errors, warnings = self.errors, self.warnings
        verdict = "passed" if not errors else "FAILED"
        line = f"batch {verdict}: {self.n_rows:,} rows, {len(errors)} errors"
        if errors:
            line += " (" + ", ".join(f.label() for f in errors) + ")"
        return line + f", {len(warnings)} warnings"

    def to_json(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "summary": self.summary(),
            "findings": [f.to_json() for f in self.findings],
        }
