"""Root of the ``mlgate`` command: global options and error reporting."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.markup import escape

from mlgate import __version__
from mlgate.cli import (
    canary,
    demo,
    drift,
    experiment,
    init,
    ledger,
    lineage,
    loop,
    models,
    monitor,
    optimize,
    serve,
)
from mlgate.cli._common import CliState, err_console, one_line
from mlgate.config import Settings
from mlgate.errors import LedgerIntegrityError, MlgateError

__all__ = ["app", "main"]

app = typer.Typer(
    name="mlgate",
    help="Serve machine-learning models and keep them provably correct over time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("init")(init.init_command)
app.command("demo")(demo.demo_command)
app.add_typer(models.app, name="models")
app.add_typer(ledger.app, name="ledger")
app.command("serve")(serve.serve_command)
app.command("deploy")(serve.deploy_command)
app.add_typer(serve.endpoints_app, name="endpoints")
app.add_typer(serve.tokens_app, name="tokens")
app.command("drift")(drift.drift_command)
app.command("monitor")(monitor.monitor_command)
app.add_typer(experiment.app, name="experiment")
app.add_typer(canary.app, name="canary")
app.command("optimize")(optimize.optimize_command)
app.command("lineage")(lineage.lineage_command)
app.add_typer(loop.app, name="loop")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlgate {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", envvar="MLGATE_HOME", help="State folder (default ./.mlgate)."
    ),
    store: str | None = typer.Option(
        None,
        "--store",
        envvar="MLGATE_STORE",
        help="Store URL (default sqlite:///HOME/mlgate.db; or postgresql+psycopg://...).",
    ),
    actor: str | None = typer.Option(
        None, "--actor", envvar="MLGATE_ACTOR", help="Identity recorded in the ledger."
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    ctx.obj = CliState(Settings.resolve(home=home, store_url=store, actor=actor))


def main() -> None:
    """Entry point: MlgateError becomes one clear line on stderr, never a traceback.

    Typer runs in standalone mode, so usage errors, --help and exit codes are its
    business; only exceptions raised by our commands reach this handler.
    """
    try:
        app()
    except LedgerIntegrityError as exc:
        where = f" (first bad entry: {exc.index})" if exc.index is not None else ""
        err_console.print(
            f"[bold red]ledger verification FAILED:[/] {escape(one_line(exc))}{where}"
        )
        sys.exit(1)
    except MlgateError as exc:
        err_console.print(f"[bold red]error:[/] {escape(one_line(exc))}")
        sys.exit(1)
    except Exception as exc:  # a bug: one line for the user, not a traceback
        err_console.print(
            f"[bold red]internal error:[/] {escape(type(exc).__name__)}: {escape(one_line(exc))}\n"
            "This is a bug in mlgate; please report it with the command you ran."
        )
        sys.exit(70)
