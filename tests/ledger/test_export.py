"""The offline audit bundle: written by the real CLI, verified with mlgate out of reach.

The bundle's verifier runs in a separate Python process whose ``PYTHONPATH``
starts with a poisoned ``mlgate`` package that raises on import, and again
under ``python -I``; any import of mlgate would fail the run. Tampered copies
must fail with a clear ``FAILED:`` line.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from mlgate.ledger import merkle, note
from mlgate.workspace import Workspace
from tests.cli.test_cli import (
    Cli,
    append_events,
    assert_one_error_line,
    clean_env,
    snapshot,
)

BUNDLE_FILES = {"entries.jsonl", "checkpoints", "ledger.pub", "README.md", "manifest.json"}
VERIFIER_FILES = {"verify.py", "merkle.py", "note.py"}


@pytest.fixture
def cli(tmp_path: Path, store_url: str) -> Cli:
    """The executable on this test's store; HOME matches the ``workspace`` fixture's."""
    return Cli(home=tmp_path / "home", store=store_url, cwd=tmp_path)


@pytest.fixture(scope="module")
def poison(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``mlgate`` package refuses to be imported."""
    folder = tmp_path_factory.mktemp("poison")
    (folder / "mlgate").mkdir()
    (folder / "mlgate" / "__init__.py").write_text(
        'raise ImportError("poisoned: the bundle verifier must not import mlgate")\n'
    )
    return folder


def run_verifier(
    bundle: Path, *args: str | Path, poison: Path | None = None, isolated: bool = True
) -> subprocess.CompletedProcess[str]:
    env = clean_env(PYTHONPATH=str(poison)) if poison else clean_env()
    command = [sys.executable, *(["-I"] if isolated else [])]
    command += [str(bundle / "verifier" / "verify.py"), str(bundle), *map(str, args)]
    return subprocess.run(
        command,
        cwd=bundle.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_verified(done: subprocess.CompletedProcess[str], size: int, checkpoints: int) -> None:
    report = f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.returncode == 0, report
    assert done.stdout.startswith(
        f"OK: {size} entries, {checkpoints} signed checkpoint(s) verified"
    ), report
    assert done.stderr == "", report


def assert_failed(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    report = f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.returncode != 0, report
    assert "Traceback" not in done.stderr, report
    assert done.stderr.startswith("FAILED: "), report
    assert len(done.stderr.strip().splitlines()) == 1, report
    assert "OK" not in done.stdout, report
    for fragment in fragments:
        assert fragment in done.stderr, report


# -- the CLI writes a complete bundle ------------------------------------------------------


def test_export_writes_a_bundle_that_verifies_without_mlgate(
    cli: Cli, workspace: Workspace, poison: Path, tmp_path: Path
) -> None:
    assert append_events(workspace, 3) == 4
    workspace.checkpoint()
    assert append_events(workspace, 2) == 6  # unsigned: the export signs a checkpoint first
    bundle = tmp_path / "audit" / "bundle"

    summary = cli.json("ledger", "export", bundle)

    with workspace.store.read() as conn:
        root = workspace.log.root_hash(conn, 6).hex()
        entries = [entry.data for entry in workspace.log.entries(conn)]
    stored = workspace.checkpoints()
    assert [c.size for c in stored] == [4, 6]
    assert summary == {"path": str(bundle), "size": 6, "root_hash": root, "checkpoints": 2}

    # layout and contents
    assert {p.name for p in bundle.iterdir()} == BUNDLE_FILES | {"verifier"}
    assert {p.name for p in (bundle / "verifier").iterdir()} == VERIFIER_FILES
    assert not list(bundle.parent.glob(".bundle.*")), "the staging folder was left behind"
    entries_file = (bundle / "entries.jsonl").read_bytes()
    assert entries_file == b"".join(data + b"\n" for data in entries)
    assert [note_file.read_text() for note_file in sorted(bundle.glob("checkpoints/*.note"))] == [
        c.note for c in stored
    ]
    public_key = cli.public_key_file.read_text().strip()
    assert (bundle / "ledger.pub").read_text().strip() == public_key
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["size"] == 6 and manifest["root_hash"] == root
    assert manifest["origin"] == workspace.origin
    assert manifest["entries_sha256"] == hashlib.sha256(entries_file).hexdigest()
    assert root in (bundle / "README.md").read_text()
    package = resources.files("mlgate.ledger")
    for name in ("merkle.py", "note.py"):
        assert (bundle / "verifier" / name).read_text() == (package / name).read_text()
    for name in VERIFIER_FILES:
        source = (bundle / "verifier" / name).read_text()
        assert not re.search(r"^\s*(from|import)\s+mlgate\b", source, re.MULTILINE), name

    # the poison works: anything importing mlgate in that environment fails
    tried = subprocess.run(
        [sys.executable, "-c", "import mlgate"],
        env=clean_env(PYTHONPATH=str(poison)),
        capture_output=True,
        text=True,
        check=False,
    )
    assert tried.returncode != 0 and "poisoned" in tried.stderr

    # ... and the verifier passes in it, and in isolated mode
    key_file = tmp_path / "received.pub"
    key_file.write_text(public_key + "\n")
    assert_verified(
        run_verifier(bundle, "--public-key", public_key, poison=poison, isolated=False), 6, 2
    )
    assert_verified(run_verifier(bundle, "--public-key", key_file), 6, 2)
    own_key = run_verifier(bundle)
    assert_verified(own_key, 6, 2)
    assert "note: checked against the bundle's own key" in own_key.stdout


def test_export_refusals_delete_nothing_and_change_nothing(tmp_path: Path) -> None:
    cli = Cli(home=tmp_path / "home", store=None, cwd=tmp_path)
    Workspace.init(cli.settings)  # the log has grown past every checkpoint (there is none)
    occupied = tmp_path / "occupied"
    (occupied / "nested").mkdir(parents=True)
    (occupied / "keep.txt").write_text("precious\n")
    (occupied / "nested" / "deep.txt").write_text("also precious\n")
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder\n")
    listing = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    before = snapshot(cli.home)

    into_folder, into_file = cli.run_all(
        ("ledger", "export", occupied), ("ledger", "export", a_file)
    )

    assert_one_error_line(into_folder, str(occupied), "exists and is not")
    assert_one_error_line(into_file, str(a_file), "exists and is not")
    assert (occupied / "keep.txt").read_text() == "precious\n"
    assert (occupied / "nested" / "deep.txt").read_text() == "also precious\n"
    assert a_file.read_text() == "not a folder\n"
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == listing
    assert snapshot(cli.home) == before  # no checkpoint was signed for the refused export


# -- tampered copies fail ---------------------------------------------------------------


@dataclass(frozen=True)
class Exported:
    bundle: Path
    public_key: str
    origin: str


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Exported:
    """A clean bundle of 6 entries with checkpoints at sizes 3 and 6."""
    base = tmp_path_factory.mktemp("exported")
    cli = Cli(home=base / "home", store=None, cwd=base)
    report = Workspace.init(cli.settings)
    with Workspace.open(cli.settings) as ws:
        append_events(ws, 2)
        ws.checkpoint()
        append_events(ws, 3)
        ws.export(base / "bundle")
        assert [c.size for c in ws.checkpoints()] == [3, 6]
    exported = Exported(base / "bundle", report.verifier_key, report.origin)
    assert_verified(run_verifier(exported.bundle, "--public-key", exported.public_key), 6, 2)
    return exported


def _lines(bundle: Path) -> list[bytes]:
    raw = (bundle / "entries.jsonl").read_bytes()
    assert raw.endswith(b"\n")
    return raw[:-1].split(b"\n")


def _write_lines(bundle: Path, lines: list[bytes]) -> None:
    (bundle / "entries.jsonl").write_bytes(b"".join(line + b"\n" for line in lines))


def _edit_value(bundle: Path) -> None:
    lines = _lines(bundle)
    assert b'"i":4' in lines[4]
    lines[4] = lines[4].replace(b'"i":4', b'"i":5')
    _write_lines(bundle, lines)


def _flip_byte(bundle: Path) -> None:
    raw = bytearray((bundle / "entries.jsonl").read_bytes())
    start = raw.index(b"\n") + 1  # first byte of entry 1: '{'
    raw[start] ^= 0x01
    (bundle / "entries.jsonl").write_bytes(bytes(raw))


def _flip_string_byte(bundle: Path) -> None:
    """A flipped bit that keeps the entry valid, canonical JSON: only the hashes notice."""
    lines = _lines(bundle)
    at = lines[1].index(b'"actor":"') + len(b'"actor":"')
    line = bytearray(lines[1])
    line[at] ^= 0x01
    lines[1] = bytes(line)
    _write_lines(bundle, lines)


def _delete_line(bundle: Path) -> None:
    lines = _lines(bundle)
    del lines[2]
    _write_lines(bundle, lines)


def _swap_lines(bundle: Path) -> None:
    lines = _lines(bundle)
    lines[1], lines[2] = lines[2], lines[1]
    _write_lines(bundle, lines)


def _append_line(bundle: Path) -> None:
    lines = _lines(bundle)
    _write_lines(bundle, [*lines, lines[-1].replace(b'"i":5', b'"i":6')])


def _truncate_last_newline(bundle: Path) -> None:
    path = bundle / "entries.jsonl"
    path.write_bytes(path.read_bytes()[:-1])


def _remove_checkpoints(bundle: Path) -> None:
    for path in (bundle / "checkpoints").glob("*.note"):
        path.unlink()


def _replace_public_key(bundle: Path) -> None:
    origin = json.loads((bundle / "manifest.json").read_text())["origin"]
    (bundle / "ledger.pub").write_text(note.generate_key(origin)[1] + "\n")


def _edit_checkpoint_note(bundle: Path) -> None:
    path = bundle / "checkpoints" / "00000001.note"
    origin, size, rest = path.read_text().split("\n", 2)
    assert size == "3"
    path.write_text(f"{origin}\n2\n{rest}")


def _edit_manifest_root(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["root_hash"] = "00" * 32
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _remove_entries(bundle: Path) -> None:
    (bundle / "entries.jsonl").unlink()


TAMPERS: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    "edit-entry-value": (_edit_value, ("does not match the log", "3..5")),
    "flip-entry-byte": (_flip_byte, ("entry 1 is not valid JSON", "first bad entry: 1")),
    "flip-byte-keeping-json": (_flip_string_byte, ("does not match the log", "0..2")),
    "delete-line": (_delete_line, ("vouches for 6 entries but only 5 exist",)),
    "swap-lines": (_swap_lines, ("does not match the log",)),
    "append-unsigned-line": (_append_line, ("manifest says size 6",)),
    "truncate-last-newline": (_truncate_last_newline, ("truncated",)),
    "remove-all-checkpoints": (_remove_checkpoints, ("no signed checkpoint",)),
    "edit-checkpoint-note": (_edit_checkpoint_note, ("checkpoint 00000001.note",)),
    "edit-manifest-root": (_edit_manifest_root, ("manifest says",)),
    "remove-entries-file": (_remove_entries, ("incomplete or unreadable",)),
}


@pytest.mark.parametrize("tamper", list(TAMPERS))
def test_tampered_copy_fails(tamper: str, exported: Exported, tmp_path: Path) -> None:
    change, fragments = TAMPERS[tamper]
    bundle = tmp_path / "copy"
    shutil.copytree(exported.bundle, bundle)
    change(bundle)
    assert_failed(run_verifier(bundle, "--public-key", exported.public_key), *fragments)


def test_replaced_key_in_bundle_fails_without_public_key(
    exported: Exported, tmp_path: Path
) -> None:
    bundle = tmp_path / "copy"
    shutil.copytree(exported.bundle, bundle)
    _replace_public_key(bundle)
    assert_failed(run_verifier(bundle), "checkpoint 00000001.note")
    # the key the auditor received separately still vouches for the untouched data
    assert_verified(run_verifier(bundle, "--public-key", exported.public_key), 6, 2)


def test_resigned_forgery_is_caught_only_by_the_real_key(
    exported: Exported, tmp_path: Path
) -> None:
    """An intruder rewrites an entry, re-signs every checkpoint and swaps ledger.pub."""
    bundle = tmp_path / "forged"
    shutil.copytree(exported.bundle, bundle)
    _edit_value(bundle)
    lines = _lines(bundle)
    levels = merkle.MerkleLevels.from_leaf_hashes([merkle.leaf_hash(line) for line in lines])
    private, forged_key = note.generate_key(exported.origin)
    for path in sorted((bundle / "checkpoints").glob("*.note")):
        size = int(path.read_text().split("\n")[1])
        body = note.Checkpoint(
            origin=exported.origin, size=size, root_hash=levels.root_hash(size)
        ).to_text()
        path.write_text(note.sign_note(body, private))
    (bundle / "ledger.pub").write_text(forged_key + "\n")
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["root_hash"] = levels.root_hash(len(lines)).hex()
    manifest["entries_sha256"] = hashlib.sha256((bundle / "entries.jsonl").read_bytes()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(manifest))

    # self-consistent, so only the warning tells the auditor what was (not) checked
    trusting = run_verifier(bundle)
    assert_verified(trusting, 6, 2)
    assert "note: checked against the bundle's own key" in trusting.stdout
    # the key obtained through a separate channel exposes it
    assert_failed(run_verifier(bundle, "--public-key", exported.public_key), "checkpoint")
