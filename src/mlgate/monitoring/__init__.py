"""Monitoring: drift statistics, reference profiles, streaming detectors, data quality.

Subpackages, each one capability:

* :mod:`~mlgate.monitoring.stats`: pure statistics (PSI, KL, JS, KS, Wasserstein,
  chi-square, multiple-testing control); numpy and scipy only.
* :mod:`~mlgate.monitoring.profile`: a reference profile, fitted once and stored, so no
  reference data needs to stay in memory.
* :mod:`~mlgate.monitoring.drift`: per-feature tests and the dataset verdict.
* :mod:`~mlgate.monitoring.detectors`: streaming concept-drift detectors.
* :mod:`~mlgate.monitoring.quality`: data-quality and poisoning checks, quarantine.
* :mod:`~mlgate.monitoring.tabular`: CSV and Parquet into frames (column name -> array).
"""

from __future__ import annotations

__all__: list[str] = []
