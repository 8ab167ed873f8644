"""mlgate: serve machine-learning models and keep them provably correct over time.

The top level exposes the composition root and the error root; capabilities
live in their subpackages (``mlgate.registry``, ``mlgate.ledger``, ``mlgate.store``).
``Workspace`` is imported on first use: it brings SQLAlchemy and Alembic, which
``mlgate drift`` and the monitoring library never need (0.25 s of every start).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlgate.config import Settings
from mlgate.errors import MlgateError

if TYPE_CHECKING:
    from mlgate.workspace import Workspace

__version__ = "0.1.0"

__all__ = ["MlgateError", "Settings", "Workspace", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Workspace":
        from mlgate.workspace import Workspace

        return Workspace
    raise AttributeError(f"module 'mlgate' has no attribute {name!r}")
