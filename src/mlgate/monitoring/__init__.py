"""Monitoring: drift statistics, reference profiles, streaming detectors, data quality.

Pure statistics live in :mod:`mlgate.monitoring.stats` and import nothing of mlgate;
everything else builds on them.
"""

from __future__ import annotations

__all__: list[str] = []
