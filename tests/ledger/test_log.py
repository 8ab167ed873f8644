"""The stored ledger against the pure RFC 9162 functions, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlgate.config import Settings
from mlgate.errors import LedgerError, ProofError
from mlgate.ledger import merkle
from mlgate.ledger.events import LedgerEvent
from mlgate.workspace import Workspace


def event(i: int) -> LedgerEvent:
    return LedgerEvent(
        kind="test.appended", actor="test:pytest", subject={"i": i}, attributes={"n": i}
    )


def append(ws: Workspace, count: int, batch: int = 7) -> None:
    for start in range(0, count, batch):
        with ws.store.write() as conn:
            ws.log.append_many(conn, [event(i) for i in range(start, min(count, start + batch))])


def all_leaves(ws: Workspace) -> list[bytes]:
    with ws.store.read() as conn:
        return [merkle.leaf_hash(entry.data) for entry in ws.log.entries(conn)]


def test_roots_and_proofs_match_a_tree_rebuilt_from_the_entries(workspace: Workspace) -> None:
    append(workspace, 45)  # plus the init entry: 46 leaves, an uneven tree
    leaves = all_leaves(workspace)
    reference = merkle.MerkleLevels.from_leaf_hashes(leaves)
    with workspace.store.read() as conn:
        size = workspace.log.size(conn)
        assert size == len(leaves) == 46
        for tree_size in (1, 2, 7, 32, 45, 46):
            assert workspace.log.root_hash(conn, tree_size) == reference.root_hash(tree_size)
        for index in range(size):
            tree_size, root, proof = workspace.log.inclusion_proof(conn, index)
            assert root == reference.root_hash(size)
            assert len(proof) <= math.ceil(math.log2(size))
            assert merkle.verify_inclusion(leaves[index], index, size, proof, root)
        for old in (0, 1, 5, 16, 31, 46):
            new_size, old_root, new_root, proof = workspace.log.consistency_proof(conn, old)
            assert (old_root, new_root) == (reference.root_hash(old), reference.root_hash(46))
            assert merkle.verify_consistency(old, new_size, old_root, new_root, proof)


def test_proofs_for_positions_outside_the_tree_are_refused(workspace: Workspace) -> None:
    append(workspace, 3)
    with workspace.store.read() as conn:
        with pytest.raises(ProofError, match="not in a tree of size 2"):
            workspace.log.inclusion_proof(conn, 3, 2)
        with pytest.raises(ProofError, match="outside 1..4"):
            workspace.log.inclusion_proof(conn, 0, 9)
        with pytest.raises(ProofError, match="old size"):
            workspace.log.consistency_proof(conn, 5, 4)
        with pytest.raises(ProofError, match="does not exist"):
            workspace.log.entry(conn, 4)


def test_a_rolled_back_transaction_leaves_no_entry(workspace: Workspace) -> None:
    append(workspace, 2)
    with pytest.raises(RuntimeError), workspace.store.write() as conn:
        workspace.log.append_many(conn, [event(10), event(11)])
        raise RuntimeError("the caller's change failed")
    with workspace.store.read() as conn:
        assert workspace.log.size(conn) == 3
        assert [e.index for e in workspace.log.entries(conn)] == [0, 1, 2]
    workspace.verify()


def test_entries_are_canonical_and_carry_kind_time_and_actor(workspace: Workspace) -> None:
    append(workspace, 1)
    with workspace.store.read() as conn:
        document = workspace.log.entry(conn, 1).document()
    assert document["kind"] == "test.appended"
    assert document["actor"] == "test:pytest"
    assert document["time"].endswith("Z")
    assert document["v"] == 1


def test_appending_nothing_changes_nothing(workspace: Workspace) -> None:
    with workspace.store.write() as conn:
        result = workspace.log.append_many(conn, [])
    assert (result.first, result.count, result.size) == (1, 0, 1)


def _append_worker(settings: Settings, worker: int, count: int) -> None:
    with Workspace.open(settings) as ws:
        for i in range(count):
            with ws.store.write() as conn:
                ws.log.append(
                    conn,
                    LedgerEvent(kind="test.concurrent", actor=f"worker:{worker}", subject={"i": i}),
                )


def test_several_processes_appending_keep_one_gap_free_sequence(
    workspace: Workspace, settings: Settings
) -> None:
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=_append_worker, args=(settings, w, 25)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with workspace.store.read() as conn:
        indices = [entry.index for entry in workspace.log.entries(conn)]
        actors = [entry.document()["actor"] for entry in workspace.log.entries(conn)]
    assert indices == list(range(101))
    for w in range(4):
        assert actors.count(f"worker:{w}") == 25
    workspace.checkpoint()
    workspace.verify()


_KILL_TARGET = """
import sys
from mlgate.config import Settings
from mlgate.ledger.events import LedgerEvent
from mlgate.workspace import Workspace

settings = Settings(home=__import__("pathlib").Path(sys.argv[1]), store_url=sys.argv[2], actor="t")
with Workspace.open(settings) as ws:
    print("ready", flush=True)
    i = 0
    while True:
        with ws.store.write() as conn:
            ws.log.append_many(
                conn, [LedgerEvent(kind="test.killed", actor="t", subject={"i": i + k})
                       for k in range(50)]
            )
        i += 50
"""


def test_a_process_killed_mid_append_leaves_no_partial_entry(
    workspace: Workspace, settings: Settings, tmp_path: Path
) -> None:
    script = tmp_path / "appender.py"
    script.write_text(_KILL_TARGET)
    child = subprocess.Popen(
        [sys.executable, str(script), str(settings.home), settings.store_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with workspace.store.read() as conn:
            if workspace.log.size(conn) > 200:
                break
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    with workspace.store.read() as conn:
        size = workspace.log.size(conn)
        count = conn.execute(sa.text("SELECT count(*) FROM ledger_entries")).scalar_one()
    assert size > 200
    assert (size - 1) % 50 == 0, "only whole batches were committed"
    assert count == size
    workspace.checkpoint()
    assert workspace.verify().size == size


def test_missing_head_row_is_reported_not_crashed(workspace: Workspace) -> None:
    with workspace.store.write() as conn:
        conn.execute(sa.text("DELETE FROM ledger_head"))
    with pytest.raises(LedgerError, match="head row is missing"), workspace.store.read() as conn:
        workspace.log.size(conn)
