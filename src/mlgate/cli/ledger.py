"""``mlgate ledger``: verify, show, prove, checkpoint and export the tamper-evident log."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from mlgate.cli._common import console, err_console, open_workspace, print_json
from mlgate.errors import ProofError
from mlgate.ledger import merkle

app = typer.Typer(help="Inspect and prove the tamper-evident ledger.", no_args_is_help=True)


@app.command("verify")
def verify(
    ctx: typer.Context,
    public_key: str | None = typer.Option(
        None, help="Verifier key (string or file); default HOME/keys/ledger.pub."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recompute every leaf, the whole tree and every checkpoint signature; exit 1 on any fault."""
    with open_workspace(ctx) as workspace:
        progress = None if json_output else (lambda m: err_console.print(f"[dim]{m}...[/]"))
        report = workspace.verify(public_key, progress)
    if json_output:
        print_json(report.to_json())
        return
    console.print(
        f"[bold green]OK[/] {report.size} entries, {report.nodes} Merkle nodes, "
        f"{report.checkpoints} signed checkpoint(s), {report.registry_versions} model "
        f"version(s) and {report.alias_moves} alias move(s) match their entries; "
        f"root {report.root_hash.hex()}"
    )


@app.command("show")
def show(
    ctx: typer.Context,
    index: int | None = typer.Argument(None, help="Entry number (from 0); omit to list."),
    raw: bool = typer.Option(False, "--raw", help="Write the exact leaf bytes to stdout."),
    last: int = typer.Option(20, help="How many recent entries to list."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show entry INDEX (or the most recent entries)."""
    with open_workspace(ctx) as workspace, workspace.store.read() as conn:
        if index is not None:
            entry = workspace.log.entry(conn, index)
            if raw:
                sys.stdout.buffer.write(entry.data)
                sys.stdout.buffer.flush()
                return
            document = {
                "index": entry.index,
                "leaf_hash": merkle.leaf_hash(entry.data).hex(),
                "entry": entry.document(),
            }
            if json_output:
                print_json(document)
            else:
                console.print_json(json.dumps(document))
            return
        size = workspace.log.size(conn)
        recent = list(workspace.log.entries(conn, max(0, size - last)))
    if json_output:
        print_json([{"index": e.index, "entry": e.document()} for e in recent])
        return
    table = Table("#", "time", "kind", "actor", "subject")
    for entry in recent:
        doc = entry.document()
        subject = ", ".join(f"{k}={v}" for k, v in doc.get("subject", {}).items())
        table.add_row(str(entry.index), doc["time"], doc["kind"], doc["actor"], subject)
    console.print(table)
    console.print(f"[dim]{size} entries in all[/]")


@app.command("prove")
def prove(
    ctx: typer.Context,
    index: int | None = typer.Argument(
        None, help="Entry to prove; with --consistency, the newer tree size."
    ),
    size: int | None = typer.Option(None, "--size", help="Tree size (default: current)."),
    consistency: int | None = typer.Option(
        None, "--consistency", metavar="OLD_SIZE", help="Prove OLD_SIZE is a prefix instead."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print an RFC 9162 inclusion proof (or, with --consistency, a consistency proof)."""
    with open_workspace(ctx) as workspace, workspace.store.read() as conn:
        if consistency is not None:
            new_size = index if index is not None else size
            tree_size, old_root, new_root, path = workspace.log.consistency_proof(
                conn, consistency, new_size
            )
            document: dict[str, object] = {
                "old_size": consistency,
                "tree_size": tree_size,
                "old_root_hash": old_root.hex(),
                "root_hash": new_root.hex(),
                "proof": [h.hex() for h in path],
            }
        else:
            if index is None:
                raise ProofError("give the entry INDEX to prove, or --consistency OLD_SIZE")
            entry = workspace.log.entry(conn, index)
            tree_size, root, path = workspace.log.inclusion_proof(conn, index, size)
            document = {
                "leaf_index": index,
                "tree_size": tree_size,
                "root_hash": root.hex(),
                "leaf_hash": merkle.leaf_hash(entry.data).hex(),
                "proof": [h.hex() for h in path],
            }
    if json_output:
        print_json(document)
        return
    for key, value in document.items():
        if key == "proof":
            console.print(f"{key}:")
            for step in value:  # type: ignore[attr-defined]
                console.print(f"  {step}")
        else:
            console.print(f"{key}: {value}")


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sign and store a checkpoint of the current tree (C2SP tlog-checkpoint, Ed25519)."""
    with open_workspace(ctx) as workspace:
        stored = workspace.checkpoint()
    if json_output:
        print_json(stored.to_json())
        return
    console.print(f"checkpoint #{stored.id}: size {stored.size}, root {stored.root_hash.hex()}")
    sys.stdout.write(stored.note)


@app.command("export")
def export(
    ctx: typer.Context,
    directory: Path = typer.Argument(..., help="New folder for the audit bundle."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Write a self-contained audit bundle that verifies without mlgate."""
    with open_workspace(ctx) as workspace:
        summary = workspace.export(directory)
    if json_output:
        print_json(
            {
                "path": str(summary.path),
                "size": summary.size,
                "root_hash": summary.root_hash,
                "checkpoints": summary.checkpoints,
            }
        )
        return
    console.print(
        f"exported {summary.size} entries and {summary.checkpoints} checkpoint(s) to "
        f"{summary.path}\nverify offline with: python {summary.path}/verifier/verify.py "
        f"{summary.path} --public-key KEY"
    )


__all__ = ["app"]
