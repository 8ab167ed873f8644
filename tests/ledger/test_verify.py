"""Every way of tampering with the stored ledger is caught and pinned down."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlgate.errors import LedgerIntegrityError
from mlgate.ledger import merkle, note
from mlgate.ledger.events import LedgerEvent
from mlgate.ledger.log import node_key
from mlgate.store.schema import ledger_entries, ledger_head, ledger_nodes
from mlgate.workspace import Workspace


@pytest.fixture
def ledger(workspace: Workspace) -> Workspace:
    """A ledger of 10 entries with checkpoints at sizes 3 and 10."""
    for batch in ([1, 2], list(range(3, 10))):
        with workspace.store.write() as conn:
            workspace.log.append_many(
                conn, [LedgerEvent(kind="test.item", actor="t", subject={"i": i}) for i in batch]
            )
        workspace.checkpoint()
    assert [c.size for c in workspace.checkpoints()] == [3, 10]
    workspace.verify()
    return workspace


def _entry(ws: Workspace, seq: int) -> bytes:
    with ws.store.read() as conn:
        return ws.log.entry(conn, seq).data


def _set_entry(ws: Workspace, seq: int, data: bytes) -> None:
    with ws.store.write() as conn:
        conn.execute(ledger_entries.update().where(ledger_entries.c.seq == seq).values(entry=data))


def _set_node(ws: Workspace, node: merkle.NodeId, digest: bytes) -> None:
    with ws.store.write() as conn:
        conn.execute(
            ledger_nodes.update()
            .where(ledger_nodes.c.node_id == node_key(node))
            .values(hash=digest)
        )


def _rebuild_nodes(ws: Workspace, conn: sa.Connection) -> None:
    """What a careful attacker does after editing entries: recompute every stored hash."""
    conn.execute(ledger_nodes.delete())
    leaves = [merkle.leaf_hash(e.data) for e in ws.log.entries(conn)]
    levels = merkle.MerkleLevels.from_leaf_hashes(leaves)
    conn.execute(
        ledger_nodes.insert(), [{"node_id": node_key(n), "hash": h} for n, h in levels.nodes()]
    )


def _fails_at(ws: Workspace, index: int | None, match: str) -> None:
    with pytest.raises(LedgerIntegrityError, match=match) as caught:
        ws.verify()
    assert caught.value.index == index


def test_changed_entry_data(ledger: Workspace) -> None:
    _set_entry(ledger, 6, _entry(ledger, 6).replace(b'"i":6', b'"i":7'))
    _fails_at(ledger, 6, "entry 6's bytes no longer hash")


def test_changed_leaf_hash(ledger: Workspace) -> None:
    _set_node(ledger, (0, 4), b"\x00" * 32)
    _fails_at(ledger, 4, "entry 4")


def test_changed_interior_node(ledger: Workspace) -> None:
    _set_node(ledger, (2, 1), b"\x11" * 32)
    _fails_at(ledger, 4, r"node \(2, 1\) over entries 4..7")


def test_swapped_entries(ledger: Workspace) -> None:
    two, three = _entry(ledger, 2), _entry(ledger, 3)
    _set_entry(ledger, 2, three)
    _set_entry(ledger, 3, two)
    _fails_at(ledger, 2, "entry 2")


def test_deleted_entry_in_the_middle(ledger: Workspace) -> None:
    with ledger.store.write() as conn:
        conn.execute(ledger_entries.delete().where(ledger_entries.c.seq == 5))
    _fails_at(ledger, 5, "entry 5 is missing")


def test_deleted_tail_with_the_head_and_nodes_rewound(ledger: Workspace) -> None:
    """Cutting the last entries consistently is still caught by the signed checkpoint."""
    with ledger.store.write() as conn:
        conn.execute(ledger_entries.delete().where(ledger_entries.c.seq >= 8))
        _rebuild_nodes(ledger, conn)
        conn.execute(ledger_head.update().values(size=8))
    _fails_at(ledger, 8, "entries 8..9 were deleted")


def test_rewritten_history_with_recomputed_hashes(ledger: Workspace) -> None:
    """The attacker who rebuilds the whole tree still cannot forge the signed roots."""
    with ledger.store.write() as conn:
        forged = ledger.log.entry(conn, 5).data.replace(b'"i":5', b'"i":50')
        conn.execute(ledger_entries.update().where(ledger_entries.c.seq == 5).values(entry=forged))
        _rebuild_nodes(ledger, conn)
    _fails_at(ledger, None, r"an entry in 3..9 differs from what was signed")


def test_entry_smuggled_past_the_head(ledger: Workspace) -> None:
    with ledger.store.write() as conn:
        conn.execute(ledger_entries.insert().values(seq=10, entry=b'{"forged":true}'))
    _fails_at(ledger, 10, "beyond the head")


def test_node_beyond_the_end(ledger: Workspace) -> None:
    with ledger.store.write() as conn:
        conn.execute(ledger_nodes.insert().values(node_id=node_key((0, 99)), hash=b"\0" * 32))
    _fails_at(ledger, None, "beyond the log's end")


def test_missing_node(ledger: Workspace) -> None:
    with ledger.store.write() as conn:
        conn.execute(ledger_nodes.delete().where(ledger_nodes.c.node_id == node_key((1, 2))))
    _fails_at(ledger, None, "missing from the store")


def test_checkpoint_signed_by_the_wrong_key(ledger: Workspace) -> None:
    impostor, _ = note.generate_key(ledger.origin)
    body = note.Checkpoint(
        origin=ledger.origin, size=10, root_hash=ledger.verify().root_hash
    ).to_text()
    with ledger.store.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO ledger_checkpoints (size, root_hash, note, created_at) "
                "VALUES (10, :root, :note, 'now')"
            ),
            {"root": ledger.verify().root_hash, "note": note.sign_note(body, impostor)},
        )
    with pytest.raises(LedgerIntegrityError, match="checkpoint #3"):
        ledger.verify()


def test_verifying_against_another_key_fails(ledger: Workspace) -> None:
    _, other_public = note.generate_key(ledger.origin)
    with pytest.raises(LedgerIntegrityError, match="checkpoint #1"):
        ledger.verify(public_key=other_public)


def test_stored_checkpoint_root_column_altered(ledger: Workspace) -> None:
    with ledger.store.write() as conn:
        conn.execute(
            sa.text("UPDATE ledger_checkpoints SET root_hash = :r WHERE id = 1"),
            {"r": b"\x22" * 32},
        )
    with pytest.raises(LedgerIntegrityError, match="checkpoint #1's stored size/root"):
        ledger.verify()
