"""mlgate: serve machine-learning models and keep them provably correct over time.

The top level exposes the composition root and the error root; capabilities
live in their subpackages (``mlgate.registry``, ``mlgate.ledger``, ``mlgate.store``).
"""

from __future__ import annotations

from mlgate.config import Settings
from mlgate.errors import MlgateError
from mlgate.workspace import Workspace

__version__ = "0.1.0"

__all__ = ["MlgateError", "Settings", "Workspace", "__version__"]
