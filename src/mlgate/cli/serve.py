"""``mlgate serve``, ``mlgate deploy``, ``mlgate endpoints`` and ``mlgate tokens``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer
from rich.table import Table

from mlgate.cli._common import console, open_workspace, print_json, state_of
from mlgate.errors import PolicyError
from mlgate.serving.auth import ROLES, TokenStore
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.spec import parse_endpoint_yaml
from mlgate.workspace import Workspace

__all__ = ["deploy_command", "endpoints_app", "serve_command", "tokens_app"]

endpoints_app = typer.Typer(help="Inspect and remove deployed endpoints.", no_args_is_help=True)
tokens_app = typer.Typer(
    help="Bearer tokens for the admin API and protected endpoints.", no_args_is_help=True
)


def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
    workers: int = typer.Option(1, min=1, help="Server processes sharing the port."),
    log_level: str = typer.Option("warning", help="uvicorn log level."),
) -> None:
    """Serve every deployed endpoint and every model with a champion alias over OIP v2."""
    import uvicorn

    settings = state_of(ctx).settings
    Workspace.open(settings).close()  # fail here, clearly, rather than in every worker
    os.environ["MLGATE_HOME"] = str(settings.home)
    os.environ["MLGATE_STORE"] = settings.store_url
    os.environ["MLGATE_ACTOR"] = settings.actor
    metrics_dir: str | None = None  # made here, so removed here once the workers are gone
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        metrics_dir = tempfile.mkdtemp(prefix="mlgate-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    console.print(f"serving on http://{host}:{port} (OpenAPI at /docs), {workers} worker(s)")
    try:
        uvicorn.run(
            "mlgate.serving.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def deploy_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Endpoint YAML file."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Validate and deploy an endpoint; running servers apply it within a second."""
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read {file}: {exc.strerror}") from exc
    spec = parse_endpoint_yaml(text)
    with open_workspace(ctx) as ws:
        deployed = EndpointStore(ws.store, ws.registry, ws.log, ws.clock).deploy(
            spec, actor=state_of(ctx).settings.actor
        )
    if json_output:
        print_json(deployed.to_json())
        return
    console.print(
        f"deployed endpoint [bold]{spec.name}[/] revision {deployed.revision} "
        f"(model {spec.model}, ledger entry {deployed.ledger_seq})"
    )


@endpoints_app.command("list")
def list_endpoints(
    ctx: typer.Context, json_output: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """Deployed endpoints (models with a champion are also served without one)."""
    with open_workspace(ctx) as ws:
        deployed = EndpointStore(ws.store, ws.registry, ws.log, ws.clock).deployed()
    if json_output:
        print_json([d.to_json() for d in deployed])
        return
    table = Table("endpoint", "model", "revision", "updated", "by")
    for d in deployed:
        table.add_row(d.spec.name, d.spec.model, str(d.revision), d.updated_at, d.updated_by)
    console.print(table)


@endpoints_app.command("show")
def show_endpoint(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """The endpoint's spec and its revision history."""
    with open_workspace(ctx) as ws:
        store = EndpointStore(ws.store, ws.registry, ws.log, ws.clock)
        found = store.get(name)
        if found is None:
            raise PolicyError(f"there is no deployed endpoint {name!r}: `mlgate endpoints list`")
        print_json({**found.to_json(), "history": store.history(name)})


@endpoints_app.command("remove")
def remove_endpoint(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    """Remove a deployed endpoint (a champion-aliased model stays served zero-config)."""
    with open_workspace(ctx) as ws:
        EndpointStore(ws.store, ws.registry, ws.log, ws.clock).remove(
            name, actor=state_of(ctx).settings.actor
        )
    console.print(f"removed endpoint {name}")


@tokens_app.command("create")
def create_token(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Who or what holds the token."),
    role: str = typer.Option("viewer", help=f"One of {', '.join(ROLES)}."),
) -> None:
    """Create a token; it is printed once and only its hash is stored."""
    with open_workspace(ctx) as ws:
        token = TokenStore(ws.store, ws.log, ws.clock).create(
            name, role, actor=state_of(ctx).settings.actor
        )
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(
    ctx: typer.Context, json_output: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    with open_workspace(ctx) as ws:
        tokens = TokenStore(ws.store, ws.log, ws.clock).list()
    if json_output:
        print_json(tokens)
        return
    table = Table("name", "role", "created", "revoked")
    for t in tokens:
        table.add_row(str(t["name"]), str(t["role"]), str(t["created_at"]), str(t["revoked"]))
    console.print(table)


@tokens_app.command("revoke")
def revoke_token(ctx: typer.Context, name: str = typer.Argument(...)) -> None:
    with open_workspace(ctx) as ws:
        TokenStore(ws.store, ws.log, ws.clock).revoke(name, actor=state_of(ctx).settings.actor)
    console.print(f"revoked token {name}")
