"""``mlgate init``: create or upgrade the home folder, the store and the ledger key."""

from __future__ import annotations

import typer

from mlgate.cli._common import console, print_json, state_of
from mlgate.workspace import Workspace


def init_command(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Create the state folder, migrate the store and create the ledger signing key."""
    report = Workspace.init(state_of(ctx).settings)
    if json_output:
        print_json(report.to_json())
        return
    schema = (
        f"created at revision {report.schema_after}"
        if report.schema_before is None
        else f"at revision {report.schema_after}"
        + (
            f" (upgraded from {report.schema_before})"
            if report.schema_before != report.schema_after
            else ""
        )
    )
    console.print(f"home     {report.home}")
    console.print(f"store    {report.store_url}  [dim]{schema}[/]")
    console.print(
        f"ledger   {report.origin}" + ("  [dim](new)[/]" if report.created_ledger else "")
    )
    key_note = "created, mode 0600" if report.created_key else "existing"
    console.print(f"key      {state_of(ctx).settings.private_key_path}  [dim]{key_note}[/]")
    console.print(f"public   {report.verifier_key}")
    console.print("[dim]Give the public key to your auditors through a separate channel.[/]")
