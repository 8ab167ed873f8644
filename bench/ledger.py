"""Ledger benchmark: durable appends, full verification and inclusion proofs, beside pymerkle.

Run from the repository root::

    .venv/bin/python -m bench.ledger                      # 1,000,000 entries, SQLite + PostgreSQL
    .venv/bin/python -m bench.ledger --quick              # 20,000 entries
    .venv/bin/python -m bench.ledger --write BENCHMARKS.md --out ledger-bench.json

Every system is measured in the same process, batch by batch in rotating order,
so a noisy machine slows them alike: compare the ratios, not the absolute numbers.
See ``bench/README.md`` for what each row measures and how each side persists.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import math
import os
import platform
import random
import shlex
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench._report import publish, write_marked_section
from mlgate.config import Settings
from mlgate.ledger import merkle
from mlgate.ledger.events import LedgerEvent
from mlgate.ledger.log import MerkleLog
from mlgate.store import Store, open_store, upgrade
from mlgate.workspace import Workspace

__all__ = ["main", "render_markdown", "run", "write_section"]

MARK_START = "<!-- ledger:start -->"
MARK_END = "<!-- ledger:end -->"
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUICK_ENTRIES = 20_000
ACTOR = "user:bench@mlgate"
ENCODE_SAMPLE_EVERY = 10  # time JCS encoding alone on every 10th batch
PROGRESS_EVERY_S = 10.0

Timings = dict[str, list[float]]


# -- the workload --------------------------------------------------------------


def make_event(i: int) -> LedgerEvent:
    """The realistic entry: a model registration with two digests (about 330 bytes)."""
    return LedgerEvent(
        kind="model.registered",
        actor=ACTOR,
        subject={"model": "m", "version": i},
        digests={
            "artifact": "sha256:" + hashlib.sha256(b"artifact %d" % i).hexdigest(),
            "record": "sha256:" + hashlib.sha256(b"record %d" % i).hexdigest(),
        },
        attributes={"flavor": "onnx"},
    )


@dataclass(frozen=True)
class EncodedEvent(LedgerEvent):
    """An event whose canonical bytes are already known.

    Appending these runs mlgate's store path (hash, insert, commit) on exactly the
    bytes pymerkle gets, without the RFC 8785 encoding that ``LedgerEvent`` pays.
    """

    data: bytes = b""

    def to_entry(self, time: datetime) -> bytes:
        return self.data


def encoded(datas: Sequence[bytes]) -> list[EncodedEvent]:
    return [EncodedEvent(kind="model.registered", actor=ACTOR, data=data) for data in datas]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_s": percentile(values, 50),
        "p99_s": percentile(values, 99),
        "mean_s": sum(values) / len(values),
        "max_s": max(values),
    }


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- the systems under test ------------------------------------------------------


class BytesLog:
    """A bare mlgate ledger (store + MerkleLog, no workspace) fed pre-encoded entries."""

    name = "mlgate_bytes"

    def __init__(self, url: str) -> None:
        self.store: Store = open_store(url)
        upgrade(self.store)
        self.log = MerkleLog()

    def append(self, datas: Sequence[bytes]) -> float:
        events = encoded(datas)
        start = time.perf_counter()
        with self.store.write() as conn:
            self.log.append_many(conn, events)
        return time.perf_counter() - start

    def root(self, size: int) -> bytes:
        with self.store.read() as conn:
            return self.log.root_hash(conn, size)

    def close(self) -> None:
        self.store.dispose()


class PymerkleSqlite:
    """pymerkle's SqliteTree, switched to the same durability as mlgate (WAL, synchronous=FULL)."""

    name = "pymerkle_sqlite"

    def __init__(self, path: Path) -> None:
        from pymerkle import SqliteTree

        self.tree = SqliteTree(str(path))
        self.default_pragmas = self.pragmas()
        self.tree.con.execute("PRAGMA journal_mode=WAL")
        self.tree.con.execute("PRAGMA synchronous=FULL")

    def pragmas(self) -> dict[str, Any]:
        con = self.tree.con
        return {
            "journal_mode": con.execute("PRAGMA journal_mode").fetchone(),
            "synchronous": con.execute("PRAGMA synchronous").fetchone(),
        }

    def append(self, datas: Sequence[bytes]) -> float:
        start = time.perf_counter()
        self.tree.append_entries(datas)  # one transaction, one executemany
        return time.perf_counter() - start

    def append_one(self, data: bytes) -> float:
        start = time.perf_counter()
        self.tree.append_entry(data)  # its own transaction
        return time.perf_counter() - start

    def close(self) -> None:
        self.tree.close()


class PymerkleMemory:
    """pymerkle's InmemoryTree: no persistence at all, a floor for the hashing work."""

    name = "pymerkle_memory"

    def __init__(self) -> None:
        from pymerkle import InmemoryTree

        self.tree = InmemoryTree()

    def append(self, datas: Sequence[bytes]) -> float:
        start = time.perf_counter()
        self.tree.append_entries(datas)
        return time.perf_counter() - start

    def close(self) -> None:
        self.tree = None


# -- one backend -------------------------------------------------------------------


@dataclass
class Options:
    entries: int
    batch: int
    singles: int
    proofs: int
    seed: int
    pymerkle: bool
    inmemory: bool


def _read_entries(ws: Workspace, start: int, stop: int) -> list[bytes]:
    with ws.store.read() as conn:
        return [entry.data for entry in ws.log.entries(conn, start, stop)]


def _rotate(items: Sequence[Any], turn: int) -> list[Any]:
    if not items:
        return []
    k = turn % len(items)
    return [*items[k:], *items[:k]]


@contextmanager
def _postgres_schemas(base_url: str, count: int) -> Iterator[list[str]]:
    """``count`` fresh schemas on the server; URLs whose connections live in them."""
    engine = sa.create_engine(base_url)
    names = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(count)]
    try:
        with engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        separator = "&" if "?" in base_url else "?"
        yield [f"{base_url}{separator}options=-csearch_path%3D{name}" for name in names]
    finally:
        with engine.begin() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        engine.dispose()


def _postgres_settings(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            names = ("server_version", "fsync", "synchronous_commit", "wal_sync_method")
            settings = {name: str(conn.exec_driver_sql(f"SHOW {name}").scalar()) for name in names}
            settings["full_page_writes"] = str(
                conn.exec_driver_sql("SHOW full_page_writes").scalar()
            )
            return settings
    finally:
        engine.dispose()


def run_backend(backend: str, urls: Sequence[str], home: Path, opts: Options) -> dict[str, Any]:
    """Build an ``opts.entries`` log on one backend and measure everything on it."""
    n = opts.entries
    tag = f"[{backend}]"
    result: dict[str, Any] = {"backend": backend, "entries": n, "batch": opts.batch}
    settings = Settings(home=home / "home", store_url=urls[0], actor=ACTOR)
    Workspace.init(settings)
    with ExitStack() as stack:
        ws = Workspace.open(settings)
        stack.callback(ws.close)
        bytes_log = BytesLog(urls[1])
        stack.callback(bytes_log.close)
        others: list[Any] = [bytes_log]
        pym_sqlite: PymerkleSqlite | None = None
        pym_memory: PymerkleMemory | None = None
        if backend == "sqlite" and opts.pymerkle:
            pym_sqlite = PymerkleSqlite(home / "pymerkle.db")
            stack.callback(pym_sqlite.close)
            others.append(pym_sqlite)
            result["pymerkle_sqlite_pragmas"] = {
                "default": pym_sqlite.default_pragmas,
                "used": pym_sqlite.pragmas(),
            }
            if opts.inmemory:
                pym_memory = PymerkleMemory()
                stack.callback(pym_memory.close)
                others.append(pym_memory)
        if backend == "sqlite":
            with ws.store.read() as conn:
                result["mlgate_sqlite_pragmas"] = {
                    "journal_mode": conn.exec_driver_sql("PRAGMA journal_mode").scalar(),
                    "synchronous": conn.exec_driver_sql("PRAGMA synchronous").scalar(),
                }

        # Entry 0 is the workspace's own ledger.initialized event: copy it so that
        # every system holds byte-identical logs, hence identical roots and proofs.
        first = _read_entries(ws, 0, 1)
        for system in others:
            system.append(first)

        # 1. Batched appends, interleaved batch by batch.
        say(
            f"{tag} appending {n - 1:,} entries in batches of {opts.batch:,} "
            f"to {len(others) + 1} logs"
        )
        spent = {"mlgate": 0.0, "encode": 0.0} | {system.name: 0.0 for system in others}
        batch_times: Timings = {"mlgate": []}
        encode_count = 0
        size, turn = 1, 0
        started = last_report = time.perf_counter()
        while size < n:
            count = min(opts.batch, n - size)
            events = [make_event(size + j) for j in range(count)]
            t0 = time.perf_counter()
            with ws.store.write() as conn:
                appended = ws.log.append_many(conn, events)
            elapsed = time.perf_counter() - t0
            spent["mlgate"] += elapsed
            batch_times["mlgate"].append(elapsed)
            if turn % ENCODE_SAMPLE_EVERY == 0:
                now = datetime.now(UTC)
                t0 = time.perf_counter()
                for event in events:
                    event.to_entry(now)
                spent["encode"] += time.perf_counter() - t0
                encode_count += count
            datas = _read_entries(ws, appended.first, appended.size)
            for system in _rotate(others, turn):
                spent[system.name] += system.append(datas)
            size, turn = appended.size, turn + 1
            if time.perf_counter() - last_report >= PROGRESS_EVERY_S or size == n:
                last_report = time.perf_counter()
                rates = ", ".join(
                    f"{name} {(size - 1) / spent[name]:,.0f}/s"
                    for name in spent
                    if name != "encode" and spent[name]
                )
                say(
                    f"{tag} {size:,}/{n:,} ({100 * size / n:.0f}%) "
                    f"after {last_report - started:.0f}s: {rates}"
                )
        timed = n - 1
        result["append_batch"] = {
            name: {"entries": timed, "seconds": spent[name], "entries_per_s": timed / spent[name]}
            for name in spent
            if name != "encode" and spent[name]
        }
        result["append_batch"]["mlgate"]["batch_latency"] = latency(batch_times["mlgate"])
        if encode_count:
            result["encode_only"] = {
                "entries": encode_count,
                "seconds": spent["encode"],
                "entries_per_s": encode_count / spent["encode"],
            }
        gc.collect()

        # 2. Roots agree across systems (same bytes, same RFC 9162 hashing).
        with ws.store.read() as conn:
            root = ws.log.root_hash(conn, n)
        roots = {"mlgate": root.hex(), "mlgate_bytes": bytes_log.root(n).hex()}
        if pym_sqlite is not None:
            t0 = time.perf_counter()
            roots["pymerkle_sqlite"] = pym_sqlite.tree.get_root(n).hex()
            result["pymerkle_sqlite_cold_root_s"] = time.perf_counter() - t0
        if pym_memory is not None:
            roots["pymerkle_memory"] = pym_memory.tree.get_root(n).hex()
        result["roots"] = roots
        result["roots_match"] = len(set(roots.values())) == 1

        # 3. Full verification after one checkpoint.
        say(f"{tag} checkpoint + Workspace.verify() over {n:,} entries")
        ws.checkpoint()
        gc.collect()
        t0 = time.perf_counter()
        report = ws.verify(progress=lambda message: say(f"{tag}   verify: {message}"))
        verify_s = time.perf_counter() - t0
        result["verify"] = {
            "seconds": verify_s,
            "size": report.size,
            "nodes": report.nodes,
            "checkpoints": report.checkpoints,
            "root_matches": report.root_hash == root,
        }
        say(f"{tag}   verified in {verify_s:.2f}s")

        # 4. Inclusion proofs for the same random indices, two passes.
        say(f"{tag} {opts.proofs:,} inclusion proofs, two passes")
        result["proofs"] = _measure_proofs(ws, n, opts, pym_sqlite, pym_memory)

        # 5. Single-entry durable appends, one transaction (and fsync) each.
        say(f"{tag} {opts.singles:,} single-entry appends, one transaction each")
        result["append_single"] = _measure_singles(ws, bytes_log, pym_sqlite, n, opts)
    return result


Prover = Callable[[int], tuple[float, float, bool, list[bytes]]]


def _mlgate_prover(conn: sa.Connection, ws: Workspace, n: int, datas: dict[int, bytes]) -> Prover:
    def prove(i: int) -> tuple[float, float, bool, list[bytes]]:
        t0 = time.perf_counter()
        size, root, path = ws.log.inclusion_proof(conn, i, n)
        t1 = time.perf_counter()
        ok = merkle.verify_inclusion(merkle.leaf_hash(datas[i]), i, size, path, root)
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, ok, path

    return prove


def _pymerkle_prover(tree: Any, n: int, datas: dict[int, bytes]) -> Prover:
    from pymerkle import InvalidProof, verify_inclusion
    from pymerkle.hasher import MerkleHasher

    hasher = MerkleHasher("sha256")
    root = tree.get_root(n)

    def prove(i: int) -> tuple[float, float, bool, list[bytes]]:
        t0 = time.perf_counter()
        proof = tree.prove_inclusion(i + 1, n)  # pymerkle counts leaves from one
        t1 = time.perf_counter()
        try:
            verify_inclusion(hasher.hash_buff(datas[i]), root, proof)
            ok = True
        except InvalidProof:
            ok = False
        t2 = time.perf_counter()
        return t1 - t0, t2 - t1, ok, list(proof.path[1:])  # path[0] is the leaf hash

    return prove


def _measure_proofs(
    ws: Workspace,
    n: int,
    opts: Options,
    pym_sqlite: PymerkleSqlite | None,
    pym_memory: PymerkleMemory | None,
) -> dict[str, Any]:
    """Prove and verify the same random indices with every system, index by index.

    Two passes over the same indices: the first meets pymerkle's subtree cache
    cold, the second warm (mlgate keeps no cache; it reads stored nodes each time).
    """
    rng = random.Random(opts.seed)
    indices = [rng.randrange(n) for _ in range(opts.proofs)]
    with ws.store.read() as conn:
        datas = {i: ws.log.entry(conn, i).data for i in set(indices)}
    out: dict[str, Any] = {"indices": len(indices), "expected_max_length": math.ceil(math.log2(n))}
    with ws.store.read() as conn:
        provers: list[tuple[str, Prover]] = [("mlgate", _mlgate_prover(conn, ws, n, datas))]
        for system in (pym_sqlite, pym_memory):
            if system is not None:
                provers.append((system.name, _pymerkle_prover(system.tree, n, datas)))
        timings = {
            name: {kind: {"pass1": [], "pass2": []} for kind in ("generate", "verify")}
            for name, _ in provers
        }
        stats = {name: {"verified": 0, "max_length": 0} for name, _ in provers}
        paths: dict[tuple[str, str, int], list[bytes]] = {}
        first_proof: dict[str, float] = {}
        for phase in ("pass1", "pass2"):
            for turn, i in enumerate(indices):
                for name, prove in _rotate(provers, turn):
                    generate_s, verify_s, ok, path = prove(i)
                    first_proof.setdefault(name, generate_s)
                    timings[name]["generate"][phase].append(generate_s)
                    timings[name]["verify"][phase].append(verify_s)
                    stats[name]["verified"] += ok
                    stats[name]["max_length"] = max(stats[name]["max_length"], len(path))
                    paths[name, phase, i] = path
        for name, _ in provers:
            out[name] = {
                kind: {phase: latency(values) for phase, values in by_phase.items()}
                for kind, by_phase in timings[name].items()
            } | {
                "verified": stats[name]["verified"],
                "attempted": 2 * len(indices),
                "max_length": stats[name]["max_length"],
                "first_proof_s": first_proof[name],
            }
            if name != "mlgate":
                out[name]["paths_identical_to_mlgate"] = sum(
                    paths[name, phase, i] == paths["mlgate", phase, i]
                    for phase in ("pass1", "pass2")
                    for i in indices
                )
    return out


def _measure_singles(
    ws: Workspace, bytes_log: BytesLog, pym_sqlite: PymerkleSqlite | None, n: int, opts: Options
) -> dict[str, Any]:
    times: Timings = {"mlgate": [], "mlgate_bytes": []}
    if pym_sqlite is not None:
        times["pymerkle_sqlite"] = []
    for k in range(opts.singles):
        event = make_event(n + k)
        t0 = time.perf_counter()
        with ws.store.write() as conn:
            index = ws.log.append(conn, event)
        times["mlgate"].append(time.perf_counter() - t0)
        [data] = _read_entries(ws, index, index + 1)
        followers: list[tuple[str, Callable[[bytes], float]]] = [
            ("mlgate_bytes", lambda entry: bytes_log.append([entry]))
        ]
        if pym_sqlite is not None:
            followers.append(("pymerkle_sqlite", pym_sqlite.append_one))
        for name, append in _rotate(followers, k):
            times[name].append(append(data))
    return {name: latency(values) for name, values in times.items()}


# -- the whole run -------------------------------------------------------------------


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    entries = args.entries or (QUICK_ENTRIES if args.quick else 1_000_000)
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = set(backends) - {"sqlite", "postgres"}
    if unknown:
        raise SystemExit(f"unknown backend(s) {sorted(unknown)}: use sqlite and/or postgres")
    if entries < 2:
        raise SystemExit("--entries must be at least 2 (entry 0 is the workspace's own)")
    use_pymerkle = not args.no_pymerkle
    pymerkle_version = None
    if use_pymerkle:
        try:
            import pymerkle
        except ImportError:
            say("pymerkle is not installed (pip install -e '.[bench]'): measuring mlgate alone")
            use_pymerkle = False
        else:
            pymerkle_version = pymerkle.__version__
    singles = args.singles if args.singles is not None else (100 if args.quick else 300)
    proofs = args.proofs if args.proofs is not None else 1_000

    results: dict[str, Any] = {
        "meta": {
            "command": command,
            "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "sqlalchemy": sa.__version__,
            "pymerkle": pymerkle_version,
            "batch": args.batch,
            "seed": args.seed,
            "gc": "disabled while measuring, collected between phases",
        },
        "backends": {},
    }
    gc_was_enabled = gc.isenabled()
    gc.disable()
    workdir = Path(tempfile.mkdtemp(prefix="mlgate-bench-", dir=args.workdir))
    try:
        for backend in backends:
            size = entries
            if backend == "postgres" and args.pg_entries:
                size = min(entries, args.pg_entries)
            opts = Options(
                entries=size,
                batch=args.batch,
                singles=singles,
                proofs=proofs,
                seed=args.seed,
                pymerkle=use_pymerkle,
                inmemory=not args.no_inmemory,
            )
            home = workdir / backend
            if backend == "sqlite":
                urls = [
                    f"sqlite:///{home / 'mlgate.db'}",
                    f"sqlite:///{home / 'mlgate-bytes.db'}",
                ]
                results["backends"][backend] = run_backend(backend, urls, home, opts)
            else:
                try:
                    results["meta"]["postgres"] = _postgres_settings(args.postgres)
                except sa.exc.OperationalError as exc:
                    reason = f"PostgreSQL at {args.postgres} is unreachable: {exc.orig}"
                    say(reason)
                    results["backends"][backend] = {"backend": backend, "skipped": reason}
                    continue
                with _postgres_schemas(args.postgres, 2) as urls:
                    results["backends"][backend] = run_backend(backend, urls, home, opts)
            gc.collect()
    finally:
        if args.keep:
            say(f"kept the work folder {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
        if gc_was_enabled:
            gc.enable()
    results["meta"]["loadavg_end"] = os.getloadavg()
    results["checks"] = checks(results)
    results["rows"] = rows(results)
    return results


def checks(results: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """Correctness facts the run established; every value must be True."""
    out: dict[str, dict[str, bool]] = {}
    for backend, r in results["backends"].items():
        if "skipped" in r:
            continue
        proofs = r["proofs"]
        facts = {
            "roots_match": r["roots_match"],
            "verify_ok": r["verify"]["size"] == r["entries"] and r["verify"]["root_matches"],
            "proofs_verified": all(
                p["verified"] == p["attempted"]
                for name, p in proofs.items()
                if isinstance(p, dict) and "verified" in p
            ),
            "proof_length_is_ceil_log2_n": proofs["mlgate"]["max_length"]
            == proofs["expected_max_length"],
        }
        for name in ("pymerkle_sqlite", "pymerkle_memory"):
            if name in proofs:
                facts[f"{name}_paths_identical"] = (
                    proofs[name]["paths_identical_to_mlgate"] == proofs[name]["attempted"]
                )
        out[backend] = facts
    return out


# -- the table ---------------------------------------------------------------------------


def _rate(value: float) -> str:
    return f"{value:,.0f}/s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"


def _pair(stats: dict[str, float], fmt: Callable[[float], str]) -> str:
    return f"{fmt(stats['p50_s'])} / {fmt(stats['p99_s'])}"


def _ratio(ours: float, theirs: float, higher_is_better: bool) -> str:
    ratio = ours / theirs
    faster = ratio > 1 if higher_is_better else ratio < 1
    shown = f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"
    return f"{shown} ({'mlgate faster' if faster else 'pymerkle faster'})"


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The table, one dict per row; ``id`` is stable for tests and scripts."""
    out: list[dict[str, Any]] = []
    for backend, r in results["backends"].items():
        if "skipped" in r:
            out.append({"id": f"{backend}.skipped", "backend": backend, "what": r["skipped"]})
            continue
        n, batch = r["entries"], r["batch"]
        ab = r["append_batch"]
        ps = "pymerkle_sqlite" in ab
        pm = "pymerkle_memory" in ab

        def row(key: str, what: str, ours: str, backend: str = backend, **extra: Any) -> None:
            out.append(
                {"id": f"{backend}.{key}", "backend": backend, "what": what, "mlgate": ours} | extra
            )

        goal_20k = {"goal": "≥ 20,000/s", "met": ab["mlgate"]["entries_per_s"] >= 20_000}
        row(
            "append.batch",
            f"Durable append, {batch:,} events per transaction "
            "(LedgerEvent → JCS → hash → insert → commit)",
            _rate(ab["mlgate"]["entries_per_s"]),
            **(goal_20k if backend == "sqlite" else {}),
        )
        extra: dict[str, Any] = {}
        if ps:
            extra |= {
                "pymerkle": _rate(ab["pymerkle_sqlite"]["entries_per_s"]),
                "ratio": _ratio(
                    ab["mlgate_bytes"]["entries_per_s"],
                    ab["pymerkle_sqlite"]["entries_per_s"],
                    higher_is_better=True,
                ),
            }
        if pm:
            extra["pymerkle_memory"] = _rate(ab["pymerkle_memory"]["entries_per_s"])
        row(
            "append.batch_bytes",
            f"Durable append of the same pre-encoded bytes, {batch:,} per transaction",
            _rate(ab["mlgate_bytes"]["entries_per_s"]),
            **extra,
        )
        if "encode_only" in r:
            row(
                "encode",
                "RFC 8785 encoding alone (LedgerEvent.to_entry), sampled every 10th batch",
                _rate(r["encode_only"]["entries_per_s"]),
            )
        singles = r["append_single"]
        extra = {}
        if "pymerkle_sqlite" in singles:
            extra = {
                "pymerkle": _pair(singles["pymerkle_sqlite"], _ms),
                "ratio": _ratio(
                    singles["mlgate_bytes"]["p50_s"],
                    singles["pymerkle_sqlite"]["p50_s"],
                    higher_is_better=False,
                )
                + " at p50",
            }
        row(
            "append.single",
            f"Durable append, 1 event per transaction, p50 / p99 "
            f"({singles['mlgate']['n']} appends)",
            _pair(singles["mlgate"], _ms),
        )
        row(
            "append.single_bytes",
            "… same pre-encoded bytes, 1 per transaction, p50 / p99",
            _pair(singles["mlgate_bytes"], _ms),
            **extra,
        )
        verify = r["verify"]
        extra = {"goal": "≤ 10 s", "met": verify["seconds"] <= 10} if backend == "sqlite" else {}
        row(
            "verify",
            f"Workspace.verify() of {n:,} entries, 1 checkpoint (rehash entries, compare "
            f"{verify['nodes']:,} stored nodes, check signature)",
            _ms(verify["seconds"]),
            **extra,
        )
        proofs = r["proofs"]
        for phase, label in (("pass1", "first pass"), ("pass2", "same indices again")):
            for kind, verb in (
                ("generate", "generation (from the store)"),
                ("verify", "verification"),
            ):
                stats = proofs["mlgate"][kind][phase]
                extra = {}
                if "pymerkle_sqlite" in proofs:
                    theirs = proofs["pymerkle_sqlite"][kind][phase]
                    extra = {
                        "pymerkle": _pair(theirs, _us),
                        "ratio": _ratio(stats["p50_s"], theirs["p50_s"], higher_is_better=False)
                        + " at p50",
                    }
                if "pymerkle_memory" in proofs:
                    extra["pymerkle_memory"] = _pair(proofs["pymerkle_memory"][kind][phase], _us)
                row(
                    f"proof.{kind}.{phase}",
                    f"Inclusion proof {verb}, p50 / p99, "
                    f"{proofs['indices']:,} random indices, {label}",
                    _pair(stats, _us),
                    goal="< 1 ms",
                    met=stats["p99_s"] < 1e-3,
                    **extra,
                )
        extra = {}
        if "pymerkle_sqlite" in proofs:
            theirs_first = proofs["pymerkle_sqlite"]["first_proof_s"]
            extra = {
                "pymerkle": _ms(theirs_first),
                "ratio": _ratio(
                    proofs["mlgate"]["first_proof_s"], theirs_first, higher_is_better=False
                ),
            }
        if "pymerkle_memory" in proofs:
            extra["pymerkle_memory"] = _ms(proofs["pymerkle_memory"]["first_proof_s"])
        row(
            "proof.first",
            "First inclusion proof of the run"
            + (" (pymerkle: just after its first get_root)" if extra else ""),
            _ms(proofs["mlgate"]["first_proof_s"]),
            **extra,
        )
        extra = {}
        if "pymerkle_sqlite" in proofs:
            extra["pymerkle"] = str(proofs["pymerkle_sqlite"]["max_length"])
        if "pymerkle_memory" in proofs:
            extra["pymerkle_memory"] = str(proofs["pymerkle_memory"]["max_length"])
        row(
            "proof.length",
            f"Longest audit path seen vs ⌈log2 n⌉ = {proofs['expected_max_length']}",
            f"{proofs['mlgate']['max_length']}",
            goal=f"= {proofs['expected_max_length']}",
            met=proofs["mlgate"]["max_length"] == proofs["expected_max_length"],
            **extra,
        )
    return out


def render_markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        MARK_START,
        "## Ledger",
        "",
        f"Produced by `{meta['command']}` on {meta['started']}: {meta['cpus']} CPU cores, shared "
        f"and noisy (load average {meta['loadavg_start'][0]:.1f} at the start, "
        f"{meta['loadavg_end'][0]:.1f} at the end), Python {meta['python']}, "
        f"SQLite {meta['sqlite']}, "
        f"SQLAlchemy {meta['sqlalchemy']}"
        + (f", PostgreSQL {meta['postgres']['server_version']}" if "postgres" in meta else "")
        + (f", pymerkle {meta['pymerkle']}" if meta["pymerkle"] else "")
        + ".",
        "",
        "Read the ratios, not the absolute numbers: every system runs in the same process, "
        "batch by batch in rotating order, so the machine's noise hits them alike. Ratios "
        "are mlgate ÷ pymerkle SqliteTree and compare the same pre-encoded bytes.",
    ]
    for backend, r in results["backends"].items():
        title = {"sqlite": "SQLite", "postgres": "PostgreSQL"}[backend]
        lines += ["", f"### {title}", ""]
        if "skipped" in r:
            lines.append(f"Skipped: {r['skipped']}")
            continue
        lines.append(f"n = {r['entries']:,} entries.")
        backend_rows = [row for row in results["rows"] if row["backend"] == backend]
        with_pym = any("pymerkle" in row for row in backend_rows)
        with_mem = any("pymerkle_memory" in row for row in backend_rows)
        header = ["Measurement", "mlgate"]
        if with_pym:
            header += ["pymerkle SqliteTree", "mlgate ÷ pymerkle"]
        if with_mem:
            header += ["pymerkle InmemoryTree (not durable)"]
        header += ["Goal"]
        lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in backend_rows:
            cells = [row["what"], row["mlgate"]]
            if with_pym:
                cells += [row.get("pymerkle", "—"), row.get("ratio", "—")]
            if with_mem:
                cells.append(row.get("pymerkle_memory", "—"))
            goal = row.get("goal", "")
            if goal:
                goal += " ✅" if row["met"] else " ❌ missed"
            cells.append(goal)
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Correctness checks from the same run (all must be true):", ""]
    for backend, facts in results["checks"].items():
        listed = ", ".join(f"{name} = {str(value).lower()}" for name, value in facts.items())
        lines.append(f"- {backend}: {listed}")
    lines += ["", *_persistence_notes(results), MARK_END]
    return "\n".join(lines) + "\n"


def _persistence_notes(results: dict[str, Any]) -> list[str]:
    meta = results["meta"]
    notes = ["How each side persists:", ""]
    sqlite_run = results["backends"].get("sqlite", {})
    ours = sqlite_run.get("mlgate_sqlite_pragmas")
    if ours:
        notes.append(
            f"- mlgate on SQLite: journal_mode={ours['journal_mode']}, "
            f"synchronous={ours['synchronous']} (2 = FULL: the WAL is fsynced at every commit), "
            "BEGIN IMMEDIATE; each append stores the entry and every perfect Merkle subtree it "
            "completes (about 2 node rows per entry), so proofs and verification read "
            "stored hashes."
        )
    theirs = sqlite_run.get("pymerkle_sqlite_pragmas")
    if theirs:
        notes.append(
            "- pymerkle SqliteTree: out of the box "
            f"journal_mode={theirs['default']['journal_mode']}, "
            f"synchronous={theirs['default']['synchronous']}; switched here to "
            f"journal_mode={theirs['used']['journal_mode']}, "
            f"synchronous={theirs['used']['synchronous']} "
            "so both sides pay the same fsync per commit. It stores each entry and its leaf hash "
            "only; roots and proofs rehash leaves on demand behind an in-process LRU cache of "
            "subtree roots (wide subtrees only), which is why its first proofs are slow and "
            "repeated ones fast. Batches go through its append_entries (one transaction, one "
            "executemany); single appends through append_entry (one transaction each)."
        )
        notes.append(
            "- pymerkle InmemoryTree keeps nothing on disk: a floor for the hashing work, not "
            "a durable log."
        )
    cold_root = sqlite_run.get("pymerkle_sqlite_cold_root_s")
    if cold_root is not None:
        notes.append(
            "- pymerkle has no counterpart to `Workspace.verify()`: the nearest, its first "
            f"`get_root()` over all {sqlite_run['entries']:,} leaves (rehashing the stored leaf "
            f"hashes, comparing nothing, not rehashing entries), took {_ms(cold_root)}."
        )
    if "postgres" in meta:
        pg = meta["postgres"]
        notes.append(
            f"- mlgate on PostgreSQL: fsync={pg['fsync']}, synchronous_commit="
            f"{pg['synchronous_commit']}, wal_sync_method={pg['wal_sync_method']}, "
            f"full_page_writes={pg['full_page_writes']}; the same rows, over TCP to 127.0.0.1. "
            "pymerkle has no PostgreSQL backend."
        )
    for backend, r in results["backends"].items():
        if "encode_only" in r:
            share = r["append_batch"]["mlgate"]["entries_per_s"] / r["encode_only"]["entries_per_s"]
            notes.append(
                f"- {backend}: RFC 8785 encoding alone accounts for about {share:.0%} of the "
                "time of a batched `LedgerEvent` append (full-path rate ÷ encoding-only rate)."
            )
    notes += [
        "",
        "The first row of each table includes RFC 8785 (JCS) encoding of a `LedgerEvent`; "
        "the `pre-encoded bytes` rows feed mlgate and pymerkle the very bytes stored by the "
        "first row, so their ratio compares storage and hashing alone. All logs hold "
        "byte-identical entries, and the run checks that their roots and audit paths agree.",
    ]
    return notes


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the ledger markers of ``path``; other sections are kept."""
    write_marked_section(path, section, MARK_START, MARK_END)


# -- command line ------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.ledger",
        description="Benchmark mlgate's ledger (appends, verify, proofs) beside pymerkle.",
    )
    p.add_argument("--entries", type=int, help="log size (default 1,000,000; 20,000 with --quick)")
    p.add_argument("--quick", action="store_true", help=f"a {QUICK_ENTRIES:,}-entry run")
    p.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    p.add_argument(
        "--pg-entries",
        type=int,
        help="a smaller log size for PostgreSQL (default: the same as --entries)",
    )
    p.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL; runs in fresh schemas")
    p.add_argument(
        "--batch", type=int, default=1_000, help="events per transaction (default 1,000)"
    )
    p.add_argument(
        "--singles", type=int, help="single-entry appends to time (default 300; 100 quick)"
    )
    p.add_argument("--proofs", type=int, help="random indices to prove (default 1,000)")
    p.add_argument("--seed", type=int, default=20_251_127)
    p.add_argument("--no-pymerkle", action="store_true", help="measure mlgate alone")
    p.add_argument("--no-inmemory", action="store_true", help="skip pymerkle's InmemoryTree")
    p.add_argument("--write", type=Path, help="update the ledger section of this Markdown file")
    p.add_argument("--out", type=Path, help="write the raw numbers here as JSON")
    p.add_argument("--workdir", type=Path, help="where to put the temporary logs")
    p.add_argument("--keep", action="store_true", help="keep the temporary logs")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    command = shlex.join([".venv/bin/python", "-m", "bench.ledger", *arguments])
    results = run(args, command)
    section = render_markdown(results)
    publish("ledger", section, results, out=args.out, write=args.write, write_section=write_section)
    return results


if __name__ == "__main__":
    main()
