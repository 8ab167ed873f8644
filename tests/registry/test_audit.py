"""Registry rows edited behind mlgate's back are caught by their ledger digests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlgate.errors import LedgerIntegrityError
from mlgate.workspace import Workspace
from tests.registry.conftest import Built


@pytest.fixture
def registry(workspace: Workspace, onnx_classifier: Built, sklearn_classifier: Built) -> Workspace:
    workspace.registry.register(
        "m", onnx_classifier.data, actor="a", metrics={"accuracy": 0.9333333333333333}
    )
    workspace.registry.register("m", sklearn_classifier.data, actor="a", params={"C": 1e-3})
    workspace.registry.move_alias("m", "champion", 1, actor="a")
    workspace.registry.move_alias("m", "champion", 2, actor="a")
    workspace.checkpoint()
    report = workspace.verify()
    assert (report.registry_versions, report.alias_moves) == (2, 2)
    return workspace


def _sql(statement: str) -> Callable[[Connection], object]:
    return lambda conn: conn.execute(sa.text(statement))


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        (
            _sql(f"UPDATE model_versions SET sha256 = '{'0' * 64}' WHERE version = 1"),
            "m version 1",
        ),
        (_sql("UPDATE model_versions SET created_by = 'mallory' WHERE version = 2"), "m version 2"),
        (_sql("UPDATE model_versions SET ledger_seq = 1 WHERE version = 2"), "m version 2"),
        (_sql("UPDATE aliases SET version = 1"), "moved outside mlgate"),
        (_sql("UPDATE alias_history SET actor = 'mallory' WHERE to_version = 2"), "history row"),
        (_sql("DELETE FROM alias_history WHERE to_version = 2"), "moved outside mlgate"),
    ],
)
def test_edited_rows_are_reported(
    registry: Workspace, tamper: Callable[[Connection], object], message: str
) -> None:
    with registry.store.write() as conn:
        tamper(conn)
    with pytest.raises(LedgerIntegrityError, match=message):
        registry.verify()


def test_edited_metric_json_is_reported(registry: Workspace) -> None:
    from mlgate.store.schema import model_versions

    with registry.store.write() as conn:
        conn.execute(
            model_versions.update()
            .where(model_versions.c.version == 1)
            .values(metrics={"accuracy": 0.99})
        )
    with pytest.raises(LedgerIntegrityError, match="edited after registration"):
        registry.verify()
