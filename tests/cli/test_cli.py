"""End to end: the real ``mlgate`` executable, run as a subprocess on a real store.

Every command here is the console script a user runs, configured only through
``MLGATE_HOME`` / ``MLGATE_STORE`` / ``MLGATE_ACTOR``. Ledger contents are seeded
in-process through the real :class:`Workspace` where that saves a process start;
everything the tests assert about comes out of the executable.

Helpers at the top (:class:`Cli`, :func:`write_onnx`, ...) are shared with
``test_cli_errors.py`` and ``tests/ledger/test_export.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from mlgate.config import Settings
from mlgate.ledger import merkle, note
from mlgate.ledger.events import LedgerEvent
from mlgate.workspace import Workspace

MLGATE = Path(sys.executable).parent / "mlgate"
ACTOR = "test:cli"
_TIMEOUT_S = 180


# -- running the executable ------------------------------------------------------


def clean_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without anything that could steer mlgate or git."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLGATE_", "GIT_")) and key not in {"PYTHONPATH", "FORCE_COLOR"}
    }
    env.update(overrides)
    return env


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    code: int
    stdout: bytes
    stderr: str

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __str__(self) -> str:
        return (
            f"$ mlgate {' '.join(self.args)}\n-> exit {self.code}\n"
            f"stdout: {self.stdout[:2000]!r}\nstderr: {self.stderr[:2000]}"
        )


@dataclass(frozen=True)
class Cli:
    """One mlgate installation: a home folder and a store URL (None: the default in HOME)."""

    home: Path
    store: str | None
    cwd: Path
    actor: str = ACTOR

    @property
    def store_url(self) -> str:
        return self.store or f"sqlite:///{self.home / 'mlgate.db'}"

    @property
    def settings(self) -> Settings:
        return Settings(home=self.home, store_url=self.store_url, actor=self.actor)

    @property
    def public_key_file(self) -> Path:
        return self.home / "keys" / "ledger.pub"

    def env(self) -> dict[str, str]:
        env = clean_env(MLGATE_HOME=str(self.home), MLGATE_ACTOR=self.actor)
        if self.store is not None:
            env["MLGATE_STORE"] = self.store
        return env

    def run(self, *args: str | Path) -> Result:
        argv = tuple(str(arg) for arg in args)
        done = subprocess.run(
            [str(MLGATE), *argv],
            cwd=self.cwd,
            env=self.env(),
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        return Result(argv, done.returncode, done.stdout, done.stderr.decode("utf-8", "replace"))

    def ok(self, *args: str | Path) -> Result:
        result = self.run(*args)
        assert result.code == 0, str(result)
        assert "Traceback" not in result.stderr, str(result)
        return result

    def json(self, *args: str | Path) -> Any:
        return self.ok(*args, "--json").json()

    def run_all(self, *commands: Sequence[str | Path]) -> list[Result]:
        """Run independent commands side by side, each its own process (results in order)."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda argv: self.run(*argv), commands))


def assert_one_error_line(result: Result, *fragments: str) -> str:
    """A refused command: non-zero exit, one 'error:' line on stderr, no traceback."""
    assert result.code != 0, str(result)
    assert "Traceback" not in result.stderr, str(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, str(result)
    assert lines[0].startswith("error: "), str(result)
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in the error line\n{result}"
    assert result.stdout == b"", str(result)
    return lines[0]


def assert_verify_fails(result: Result, *fragments: str) -> None:
    """`ledger verify` found a fault: non-zero exit, 'FAILED' and the details on stderr."""
    assert result.code != 0, str(result)
    assert "Traceback" not in result.stderr, str(result)
    assert "ledger verification FAILED:" in result.stderr, str(result)
    for fragment in fragments:
        assert fragment in result.stderr, str(result)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(home: Path) -> dict[str, Any]:
    """Every row of every table, and every file under HOME (SQLite's own side files aside)."""
    if not home.exists():
        return {"home": None}
    files = sorted(
        str(path.relative_to(home))
        for path in home.rglob("*")
        if path.is_file() and not path.name.startswith("mlgate.db")
    )
    tables: dict[str, list[tuple[Any, ...]]] = {}
    database = home / "mlgate.db"
    if database.exists():
        with closing(sqlite3.connect(database)) as conn:
            query = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            for (name,) in conn.execute(query).fetchall():
                tables[name] = sorted(conn.execute(f'SELECT * FROM "{name}"'), key=repr)
    return {"home": files, "tables": tables}


# -- tiny real models ------------------------------------------------------------


def write_onnx(path: Path, bias: float = 0.1) -> Path:
    """A linear classifier x[N,4] FP32 -> logits[N,3] FP32, label[N] INT64 (~300 bytes)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.linspace(-1.0, 1.0, 12, dtype=np.float32).reshape(4, 3)
    offsets = np.array([bias, -0.2, 0.3], dtype=np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["logits"]),
            helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(offsets, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save_model(model, path)
    return path


def write_forest(path: Path) -> Path:
    """A two-tree RandomForestRegressor saved with skops (its tree type needs --trust)."""
    import skops.io
    from sklearn.ensemble import RandomForestRegressor

    x = np.random.default_rng(0).normal(size=(40, 3))
    model = RandomForestRegressor(n_estimators=2, max_depth=2, random_state=0)
    skops.io.dump(model.fit(x, x[:, 0] - x[:, 1]), path)
    return path


FOREST_TREE_TYPE = "sklearn.tree._tree.Tree"


def write_booster(path: Path) -> Path:
    lightgbm = pytest.importorskip("lightgbm")
    x = np.random.default_rng(1).normal(size=(60, 3))
    booster = lightgbm.train(
        {"objective": "regression", "verbose": -1, "num_leaves": 4, "min_data_in_leaf": 5},
        lightgbm.Dataset(x, x[:, 0] + x[:, 2]),
        num_boost_round=3,
    )
    booster.save_model(path)
    return path


# -- seeding the ledger in-process -------------------------------------------------


def append_events(ws: Workspace, count: int) -> int:
    """Append ``count`` events whose subject i is their own index; return the new size."""
    with ws.store.write() as conn:
        start = ws.log.size(conn)
        return ws.log.append_many(
            conn,
            [
                LedgerEvent(kind="test.item", actor=ACTOR, subject={"i": i})
                for i in range(start, start + count)
            ],
        ).size


def entry_bytes(ws: Workspace, index: int) -> bytes:
    with ws.store.read() as conn:
        return ws.log.entry(conn, index).data


# -- fixtures ----------------------------------------------------------------------


@dataclass(frozen=True)
class Models:
    onnx_v1: Path
    onnx_v2: Path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    folder = tmp_path_factory.mktemp("cli-models")
    return Models(write_onnx(folder / "v1.onnx", 0.1), write_onnx(folder / "v2.onnx", 0.7))


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    """The executable on this test's store; HOME matches the ``settings`` fixture's."""
    return Cli(home=tmp_path / "home", store=store_url, cwd=tmp_path)


@dataclass(frozen=True)
class GitTree:
    path: Path
    commit: str


@pytest.fixture
def git_tree(tmp_path: Path) -> GitTree:
    """A scratch git work tree (in tmp) with one commit and an uncommitted change."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    path = tmp_path / "training-code"
    path.mkdir()
    env = clean_env(
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
    )

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(path), *args], env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    git("init", "-q")
    (path / "train.py").write_text("print('train')\n", encoding="utf-8")
    git("add", "train.py")
    git("commit", "-q", "-m", "training code")
    (path / "train.py").write_text("print('train harder')\n", encoding="utf-8")
    return GitTree(path, git("rev-parse", "HEAD"))


# -- init, register, alias, show, list --------------------------------------------------


def test_models_workflow(cli: Cli, models: Models, git_tree: GitTree, tmp_path: Path) -> None:
    # init: a 0600 signing key, its public half exported; a second init changes nothing.
    first = cli.ok("init")
    key_file = cli.home / "keys" / "ledger.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    public_key = cli.public_key_file.read_text(encoding="utf-8").strip()
    assert public_key in first.out
    key_before = key_file.read_bytes()

    # a second init (side by side with the first registration: both are safe at once)
    # and a registration with every option that is recorded
    dataset = tmp_path / "train.csv"
    dataset.write_bytes(b"a,b,label\n1,2,0\n3,4,1\n")
    second_init, registered = cli.run_all(
        ("init", "--json"),
        (
            "models", "register", "fraud", models.onnx_v1,
            "--param", "lr=0.1", "--param", "depth=3", "--param", "optimizer=adam",
            "--param", "early_stop=true",
            "--metric", "auc=0.91", "--metric", "loss=2",
            "--tag", "team=risk", "--tag", "stage=dev",
            "--dataset", dataset,
            "--code-from", git_tree.path,
            "--run-id", "run-42",
            "--json",
        ),
    )  # fmt: skip
    assert second_init.code == 0 and registered.code == 0, f"{second_init}\n{registered}"
    again = second_init.json()
    assert again["created_key"] is False and again["created_ledger"] is False
    assert again["public_key"] == public_key
    assert public_key.startswith(again["origin"] + "+")
    assert key_file.read_bytes() == key_before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    v1 = registered.json()
    assert v1["name"] == "fraud" and v1["version"] == 1
    assert v1["sha256"] == sha256_file(models.onnx_v1)
    assert v1["flavor"] == "onnx"
    assert v1["size_bytes"] == models.onnx_v1.stat().st_size
    assert v1["params"] == {"lr": 0.1, "depth": 3, "optimizer": "adam", "early_stop": True}
    assert v1["metrics"] == {"auc": 0.91, "loss": 2.0}
    assert v1["tags"] == {"team": "risk", "stage": "dev"}
    assert v1["lineage"] == {
        "dataset_fingerprint": "sha256:" + sha256_file(dataset),
        "code_commit": git_tree.commit,
        "code_dirty": True,
        "run_id": "run-42",
        "parent_version": None,
    }
    assert v1["created_by"] == ACTOR
    assert [spec["name"] for spec in v1["signature"]["inputs"]] == ["x"]

    # a second version: explicit flavor, parent, and a signature override
    override = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [8, 4]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [8, 3]},
            {"name": "label", "datatype": "INT64", "shape": [8]},
        ],
    }
    signature_file = tmp_path / "signature.json"
    signature_file.write_text(json.dumps(override), encoding="utf-8")
    v2 = cli.json(
        "models", "register", "fraud", models.onnx_v2, "--flavor", "onnx",
        "--parent-version", "1", "--signature", signature_file,
    )  # fmt: skip
    assert (v2["name"], v2["version"], v2["flavor"]) == ("fraud", 2, "onnx")
    assert v2["sha256"] == sha256_file(models.onnx_v2)
    assert v2["signature"] == override
    assert v2["lineage"]["parent_version"] == 1
    assert v2["ledger_seq"] > v1["ledger_seq"]

    # aliases: champion created on 1, then moved to 2
    created = cli.ok("models", "alias", "fraud", "champion", "1")
    assert "champion" in created.out
    moved = cli.json("models", "alias", "fraud", "champion", "2")
    assert (moved["alias"], moved["from_version"], moved["to_version"]) == ("champion", 1, 2)
    assert moved["actor"] == ACTOR

    shown, one, listed = cli.run_all(
        ("models", "show", "fraud", "--json"),
        ("models", "show", "fraud", "1", "--json"),
        ("models", "list", "--json"),
    )
    for result in (shown, one, listed):
        assert result.code == 0, str(result)

    # every option round-trips through the store, and nothing else changed; showing one
    # version also loads it, and says where it runs (checked against the session)
    runtime = one.json().pop("runtime")
    assert runtime["provider"] == "CPUExecutionProvider" and runtime["reason"]
    assert {k: v for k, v in one.json().items() if k != "runtime"} == v1
    versions = shown.json()["versions"]
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[0] == v1
    assert versions[1] == {**v2, "aliases": ["champion"]}
    history = [
        (m["alias"], m["from_version"], m["to_version"], m["actor"], m["ledger_seq"])
        for m in shown.json()["alias_history"]
    ]
    assert history == [
        ("champion", None, 1, ACTOR, v2["ledger_seq"] + 1),
        ("champion", 1, 2, ACTOR, moved["ledger_seq"]),
    ]

    (summary,) = listed.json()
    assert summary["name"] == "fraud"
    assert (summary["latest_version"], summary["versions"]) == (2, 2)
    assert summary["aliases"] == {"champion": 2}


def test_register_sklearn_with_trust_and_lightgbm(tmp_path: Path) -> None:
    """The other two flavors, on the default store (SQLite under MLGATE_HOME)."""
    forest = write_forest(tmp_path / "forest.skops")
    booster = write_booster(tmp_path / "booster.txt")
    cli = Cli(home=tmp_path / "home", store=None, cwd=tmp_path)
    Workspace.init(cli.settings)

    trusted_run, boosted_run = cli.run_all(
        (
            "models", "register", "forest", forest, "--flavor", "sklearn",
            "--trust", FOREST_TREE_TYPE, "--json",
        ),
        ("models", "register", "booster", booster, "--flavor", "lightgbm", "--json"),
    )  # fmt: skip
    assert trusted_run.code == 0 and boosted_run.code == 0, f"{trusted_run}\n{boosted_run}"
    trusted, boosted = trusted_run.json(), boosted_run.json()
    assert (trusted["name"], trusted["version"], trusted["flavor"]) == ("forest", 1, "sklearn")
    assert trusted["sha256"] == sha256_file(forest)
    assert FOREST_TREE_TYPE in trusted["trusted_types"]
    assert (boosted["name"], boosted["version"], boosted["flavor"]) == ("booster", 1, "lightgbm")
    assert boosted["sha256"] == sha256_file(booster)
    assert (cli.home / "mlgate.db").is_file()


# -- ledger: checkpoint, show --raw, prove, verify ----------------------------------------


# SQLite only: proofs from both backends are checked in-process (tests/ledger/test_log.py);
# what this adds is the command line's output, which is the same code on either.
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_ledger_checkpoint_show_prove_verify(
    cli: Cli, workspace: Workspace, tmp_path: Path
) -> None:
    assert append_events(workspace, 4) == 5
    signed = workspace.checkpoint()
    old = {"size": signed.size, "root_hash": signed.root_hash.hex()}
    assert old["size"] == 5
    assert append_events(workspace, 6) == 11
    new = cli.json("ledger", "checkpoint")
    assert new["size"] == 11 and len(new["root_hash"]) == 64
    with workspace.store.read() as conn:
        assert new["root_hash"] == workspace.log.root_hash(conn, 11).hex() != old["root_hash"]
    old_root, new_root = bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"])

    _, other_key = note.generate_key(workspace.origin)
    other_file = tmp_path / "other.pub"
    other_file.write_text(other_key + "\n", encoding="utf-8")
    raw, proof, old_proof, consistency, verified, wrong_key = cli.run_all(
        ("ledger", "show", "3", "--raw"),
        ("ledger", "prove", "3", "--json"),
        ("ledger", "prove", "3", "--size", "5", "--json"),
        ("ledger", "prove", "--consistency", "5", "11", "--json"),
        ("ledger", "verify"),
        ("ledger", "verify", "--public-key", other_file),
    )
    for result in (raw, proof, old_proof, consistency, verified):
        assert result.code == 0, str(result)

    # --raw: the exact leaf bytes, canonical JSON, no 0x00 prefix, no newline
    data = raw.stdout
    assert data == entry_bytes(workspace, 3)
    assert not data.startswith(b"\x00") and not data.endswith(b"\n")
    document = json.loads(data)
    assert {"kind", "time", "actor"} <= document.keys()
    assert (document["kind"], document["actor"], document["subject"]) == (
        "test.item",
        ACTOR,
        {"i": 3},
    )
    assert json.dumps(document, sort_keys=True, separators=(",", ":")).encode() == data
    leaf = hashlib.sha256(b"\x00" + data).digest()
    assert leaf == merkle.leaf_hash(data)

    # inclusion in the current tree, against the newest checkpoint
    doc = proof.json()
    assert {"leaf_index", "tree_size", "root_hash", "proof"} <= doc.keys()
    assert (doc["leaf_index"], doc["tree_size"], doc["root_hash"]) == (3, 11, new["root_hash"])
    path = [bytes.fromhex(h) for h in doc["proof"]]
    assert merkle.verify_inclusion(leaf, 3, 11, path, new_root)
    assert not merkle.verify_inclusion(merkle.leaf_hash(data + b" "), 3, 11, path, new_root)

    # inclusion in the older tree, against the older checkpoint
    doc = old_proof.json()
    assert (doc["leaf_index"], doc["tree_size"], doc["root_hash"]) == (3, 5, old["root_hash"])
    old_path = [bytes.fromhex(h) for h in doc["proof"]]
    assert merkle.verify_inclusion(leaf, 3, 5, old_path, old_root)
    assert not merkle.verify_inclusion(leaf, 3, 5, old_path, new_root)

    # the older tree is a prefix of the newer one
    doc = consistency.json()
    assert (doc["old_size"], doc["tree_size"]) == (5, 11)
    assert (doc["old_root_hash"], doc["root_hash"]) == (old["root_hash"], new["root_hash"])
    steps = [bytes.fromhex(h) for h in doc["proof"]]
    assert steps
    assert merkle.verify_consistency(5, 11, old_root, new_root, steps)
    assert not merkle.verify_consistency(5, 11, new_root, new_root, steps)

    assert "OK" in verified.out and "11 entries" in verified.out
    assert "2 signed checkpoint(s)" in verified.out and new["root_hash"] in verified.out

    # the same ledger, checked against a key that did not sign its checkpoints
    assert_verify_fails(wrong_key, "checkpoint #1")


def _sql(url: str, statement: str, **params: object) -> None:
    """Change the store below mlgate, the way an intruder with database access would."""
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def test_verify_catches_tampering(cli: Cli, workspace: Workspace) -> None:
    assert append_events(workspace, 7) == 8
    workspace.checkpoint()
    workspace.verify()
    url = cli.store_url

    # 1. an entry's data rewritten in place
    original = entry_bytes(workspace, 3)
    forged = original.replace(b'"i":3', b'"i":4')
    assert forged != original
    _sql(url, "UPDATE ledger_entries SET entry = :data WHERE seq = 3", data=forged)
    assert_verify_fails(cli.run("ledger", "verify"), "first bad entry: 3")
    _sql(url, "UPDATE ledger_entries SET entry = :data WHERE seq = 3", data=original)
    workspace.verify()

    # 2. an entry deleted
    deleted = entry_bytes(workspace, 5)
    _sql(url, "DELETE FROM ledger_entries WHERE seq = 5")
    assert_verify_fails(cli.run("ledger", "verify"), "first bad entry: 5")
    _sql(url, "INSERT INTO ledger_entries (seq, entry) VALUES (5, :data)", data=deleted)
    workspace.verify()


# -- demo --------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "unused-home", store=None, cwd=tmp_path)
    result = cli.ok("demo", "--dir", tmp_path / "demo")
    text = result.out
    good = text.index("audit-bundle/verifier/verify.py ... → exit 0")
    bad = text.index("tampered-bundle/verifier/verify.py ... → exit 1")
    assert good < bad
    assert text.index("OK:", good) < bad
    assert "FAILED:" in text[bad:]
    # The story, in its order: drift injected, poisoned data quarantined, a clean
    # retraining gated, canaried and promoted; the timeline comes from the ledger.
    drift = text.index("drift injected at request")
    quarantined = text.index("training data quarantined: label_flip", drift)
    promoted = text.index("version 2 promoted to champion", quarantined)
    assert text.index("gates passed", quarantined) < promoted
    assert "after drift, version 2:" in text
    for kind in ("loop.quarantined", "loop.gated", "canary.step", "loop.promoted"):
        assert kind in text[promoted:], kind
    assert "lineage risk --request" in text
    folder = tmp_path / "demo"
    assert (folder / "audit-bundle" / "entries.jsonl").is_file()
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert "<svg" in page and "promoted" in page
    assert (folder / "loop.yaml").is_file()
    assert not (tmp_path / "unused-home").exists()
