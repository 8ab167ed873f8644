"""``mlgate models``: register, list, show and alias model versions."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlgate.cli._common import console, open_workspace, print_json, state_of
from mlgate.errors import RegistryError, SignatureError
from mlgate.registry.records import Lineage, ModelVersion
from mlgate.registry.signature import Signature

app = typer.Typer(help="Register model versions and move their aliases.", no_args_is_help=True)


def _pairs(values: list[str], what: str, *, numeric: bool = False) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise RegistryError(f"--{what} expects KEY=VALUE, got {item!r}")
        if numeric:
            try:
                parsed[key] = float(raw)
            except ValueError as exc:
                raise RegistryError(f"--{what} {key} must be a number, got {raw!r}") from exc
        else:
            parsed[key] = _scalar(raw) if what == "param" else raw
    return parsed


def _scalar(raw: str) -> Any:
    """Params keep JSON types when they parse as JSON scalars (3, 0.1, true), else strings."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    return value if isinstance(value, str | int | float | bool) or value is None else raw


def _read_signature(path: Path | None) -> Signature | None:
    if path is None:
        return None
    try:
        return Signature.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise SignatureError(f"cannot read the signature file {path}: {exc}") from exc


def _read_model_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read model file {path}: {exc.strerror}") from exc


@app.command("register")
def register(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name (letters, digits, . _ -)."),
    file: Path = typer.Argument(..., help="Model file: .onnx, .skops or LightGBM text model."),
    flavor: str | None = typer.Option(None, help="onnx | sklearn | lightgbm (default: detect)."),
    signature: Path | None = typer.Option(
        None, help="JSON file overriding the inferred input/output signature."
    ),
    param: list[str] = typer.Option([], help="Hyperparameter KEY=VALUE (repeatable)."),
    metric: list[str] = typer.Option([], help="Metric KEY=NUMBER (repeatable)."),
    tag: list[str] = typer.Option([], help="Tag KEY=VALUE (repeatable)."),
    trust: list[str] = typer.Option(
        [], help="A type the skops file may load (repeatable); only for files you trust."
    ),
    dataset: Path | None = typer.Option(None, help="Training data file to fingerprint."),
    dataset_fingerprint: str | None = typer.Option(None, help="Known dataset fingerprint."),
    code_from: Path | None = typer.Option(
        None, help="Git work tree whose commit and dirty flag to record."
    ),
    code_commit: str | None = typer.Option(None, help="Code commit to record."),
    code_dirty: bool | None = typer.Option(None, "--code-dirty/--code-clean"),
    run_id: str | None = typer.Option(None, help="Training run id."),
    parent_version: int | None = typer.Option(None, help="Version this one derives from."),
    json_output: bool = typer.Option(False, "--json", help="Print the version as JSON."),
) -> None:
    """Register FILE as the next version of NAME (hash-addressed, immutable, ledgered)."""
    data = _read_model_file(file)
    if dataset is not None:
        dataset_fingerprint = "sha256:" + hashlib.sha256(_read_model_file(dataset)).hexdigest()
    if code_from is not None:
        code_commit, code_dirty = Lineage.code_from_git(code_from)
    lineage = Lineage(
        dataset_fingerprint=dataset_fingerprint,
        code_commit=code_commit,
        code_dirty=code_dirty,
        run_id=run_id,
        parent_version=parent_version,
    )
    with open_workspace(ctx) as workspace:
        version = workspace.registry.register(
            name,
            data,
            actor=state_of(ctx).settings.actor,
            flavor=flavor,
            signature=_read_signature(signature),
            params=_pairs(param, "param"),
            metrics=_pairs(metric, "metric", numeric=True),
            tags=_pairs(tag, "tag"),
            lineage=lineage,
            trusted_types=trust,
        )
    if json_output:
        print_json(version.to_json())
        return
    console.print(
        f"registered [bold]{version.name}[/] version [bold]{version.version}[/] "
        f"({version.flavor}, sha256 {version.sha256[:12]}..., ledger entry {version.ledger_seq})"
    )


@app.command("list")
def list_models(
    ctx: typer.Context,
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List registered models with their newest version and aliases."""
    with open_workspace(ctx) as workspace:
        summaries = workspace.registry.models()
    if json_output:
        print_json([summary.to_json() for summary in summaries])
        return
    if not summaries:
        console.print("no models yet: `mlgate models register NAME FILE`")
        return
    table = Table("model", "latest", "versions", "aliases", "created")
    for s in summaries:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(s.aliases.items()))
        table.add_row(s.name, str(s.latest_version), str(s.version_count), aliases, s.created_at)
    console.print(table)


def _version_table(versions: list[ModelVersion]) -> Table:
    table = Table("version", "flavor", "sha256", "aliases", "metrics", "created", "by")
    for v in versions:
        metrics = ", ".join(f"{k}={val:.4g}" for k, val in v.metrics.items())
        table.add_row(
            str(v.version),
            v.flavor,
            v.sha256[:12],
            ", ".join(v.aliases),
            metrics,
            v.created_at,
            v.created_by,
        )
    return table


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    ref: str | None = typer.Argument(None, help="Version number, alias or 'latest'."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show all versions of NAME, or one version in full."""
    with open_workspace(ctx) as workspace:
        if ref is None:
            versions = workspace.registry.versions(name)
            history = workspace.registry.alias_history(name)
            if json_output:
                print_json(
                    {
                        "name": name,
                        "versions": [v.to_json() for v in versions],
                        "alias_history": [m.to_json() for m in history],
                    }
                )
                return
            console.print(_version_table(versions))
            for move in history:
                start = "-" if move.from_version is None else str(move.from_version)
                console.print(
                    f"[dim]{move.moved_at}[/] {move.alias}: {start} → {move.to_version} "
                    f"by {move.actor} (ledger {move.ledger_seq})"
                )
            return
        version = workspace.registry.get(name, ref)
        # Loading proves the artifact still opens here, and says where it would run.
        _, model = workspace.registry.load(name, version.version)
    choice = getattr(model, "runtime", None)
    shown = {**version.to_json(), "runtime": None if choice is None else choice.to_json()}
    if json_output:
        print_json(shown)
        return
    console.print_json(json.dumps(shown))


@app.command("alias")
def alias(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    alias_name: str = typer.Argument(..., metavar="ALIAS"),
    version: int = typer.Argument(..., help="Version number the alias should point to."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Point ALIAS (champion, challenger, ...) of NAME at VERSION."""
    with open_workspace(ctx) as workspace:
        move = workspace.registry.move_alias(
            name, alias_name, version, actor=state_of(ctx).settings.actor
        )
    if json_output:
        print_json(move.to_json())
        return
    start = "(new)" if move.from_version is None else f"from {move.from_version}"
    console.print(
        f"{name}: {move.alias} → {move.to_version} {start} (ledger entry {move.ledger_seq})"
    )


__all__ = ["app"]
