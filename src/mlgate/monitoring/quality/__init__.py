"""Data quality and poisoning checks at ingestion, and the quarantine for batches that fail.

A :class:`QualityProfile` is learnt once from trusted reference data; :func:`check_batch`
judges each incoming batch against it; :class:`Quarantine` sets failed batches aside with
their reasons so that nothing trains on them by accident.
"""

from __future__ import annotations

from mlgate.monitoring.quality.check import (
    CHECKS,
    Finding,
    QualityOptions,
    QualityReport,
    Severity,
    check_batch,
)
from mlgate.monitoring.quality.profile import (
    CategoricalQuality,
    LabelQuality,
    NumericQuality,
    QualityProfile,
)
from mlgate.monitoring.quality.quarantine import Quarantine, QuarantinedBatch

__all__ = [
    "CHECKS",
    "CategoricalQuality",
    "Finding",
    "LabelQuality",
    "NumericQuality",
    "QualityOptions",
    "QualityProfile",
    "QualityReport",
    "Quarantine",
    "QuarantinedBatch",
    "Severity",
    "check_batch",
]
