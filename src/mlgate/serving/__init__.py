"""Serving data plane: Open Inference Protocol v2 over HTTP, routing, batching, logging."""

from __future__ import annotations

__all__: list[str] = []
