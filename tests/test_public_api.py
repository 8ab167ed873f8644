"""Pin the public surface so that changing it is a decision, not an accident."""

from __future__ import annotations

import mlgate
import mlgate.ledger
import mlgate.registry
import mlgate.store


def test_top_level_exports() -> None:
    assert sorted(mlgate.__all__) == ["MlgateError", "Settings", "Workspace", "__version__"]


def test_every_exported_name_exists() -> None:
    for module in (mlgate, mlgate.ledger, mlgate.registry, mlgate.store):
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_every_error_derives_from_the_root() -> None:
    import mlgate.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), mlgate.MlgateError), name
