"""``mlgate lineage``: from a served prediction or a model version back to its data and code.

The command only parses, calls :mod:`mlgate.loop.lineage` and prints its JSON as a tree.
Every name and reason in it comes from users or the store, so each is escaped for rich.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import typer
from rich.markup import escape
from rich.text import Text
from rich.tree import Tree

from mlgate.cli._common import console, open_workspace, print_json
from mlgate.errors import LineageError

__all__ = ["lineage_command"]


def lineage_command(
    ctx: typer.Context,
    target: str = typer.Argument(
        ...,
        help="MODEL:VERSION (a number or an alias such as champion), or ENDPOINT with --request.",
    ),
    request: str | None = typer.Option(None, "--request", help="A request id ENDPOINT answered."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Re-hash artifact and training frame; compare digests with the ledger.",
    ),
    depth: int = typer.Option(5, "--depth", min=0, help="Replaced champions to follow back."),
) -> None:
    """Show where a model version, or the version that answered a request, came from.

    With --verify the exit code is 1 when any recomputed digest disagrees with the store.
    """
    from mlgate.loop.lineage import lineage_of_request, lineage_of_version

    if request is not None:
        if ":" in target:
            raise LineageError(
                f"with --request, TARGET is the endpoint that answered it, not {target!r}"
            )
        with open_workspace(ctx) as workspace:
            document = lineage_of_request(workspace, target, request, verify=verify).to_json()
        tree = request_tree(document)
    else:
        model, _, version = target.rpartition(":")
        if not model or not version:
            raise LineageError(
                f"TARGET must be MODEL:VERSION (such as churn:3 or churn:champion), or an "
                f"endpoint with --request ID; got {target!r}"
            )
        ref: int | str = int(version) if version.isdigit() else version
        with open_workspace(ctx) as workspace:
            found = lineage_of_version(workspace, model, ref, verify=verify, depth=depth)
        document = found.to_json()
        tree = _version_node(None, document)
    if as_json:
        print_json(document)
    else:
        console.print(tree, soft_wrap=False)  # a tree crops unwrapped lines: wrap them
    if verify and any(c["result"] != "ok" for c in _checks(document)):
        raise typer.Exit(1)


def _checks(document: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every verification result in a request's or version's lineage, parents included."""
    for version in document.get("versions", [document]):
        while version is not None:
            yield from version.get("verification") or []
            version = version.get("parent")


def request_tree(doc: Mapping[str, Any]) -> Tree:
    tree = _tree(
        f"[bold]request {escape(doc['request_id'])}[/] on endpoint "
        f"[bold]{escape(doc['endpoint'])}[/] (model {escape(doc['model'])})"
    )
    for row in doc["predictions"]:
        _add(
            tree,
            f"{'shadow' if row['shadow'] else 'answered'} {row['created_at']}: version "
            f"{escape(row['version'])}, route {escape(row['route'])}, status {row['status']}",
        )
    for row in doc["feedback"]:
        given = [f"label {json.dumps(row['label'])}"] if row["label"] is not None else []
        given += [f"reward {row['reward']:g}"] if row["reward"] is not None else []
        _add(tree, f"feedback {row['created_at']}: {escape(', '.join(given))}")
    for note in doc["notes"]:
        _add(tree, f"[yellow]{escape(note)}[/]")
    for version in doc["versions"]:
        _version_node(tree, version)
    return tree


def _version_node(parent: Tree | None, doc: Mapping[str, Any], role: str = "") -> Tree:
    record = doc["record"]
    aliases = f" ({', '.join(record['aliases'])})" if record["aliases"] else ""
    label = (
        f"{role}[bold]{escape(doc['model'])} v{doc['version']}[/]{escape(aliases)}: "
        f"{record['flavor']}, registered {record['created_at']} "
        f"by {escape(record['created_by'])} (ledger #{record['ledger_seq']})"
    )
    node = Tree(_text(label)) if parent is None else _add(parent, label)
    _add(node, f"artifact sha256:{record['sha256']}")
    for note in doc["notes"]:
        _add(node, f"[yellow]{escape(note)}[/]")
    if doc["run"] is not None:
        _run_node(node, doc["run"], doc["events"])
    _deployments(node, doc["deployments"])
    if doc["verification"] is not None:
        _verification(node, doc["verification"])
    if doc["parent"] is not None:
        _version_node(node, doc["parent"], "replaced ")
    return node


def _run_node(parent: Tree, run: Mapping[str, Any], events: list[Mapping[str, Any]]) -> None:
    node = _add(
        parent,
        f"training run {run['id']} of loop [bold]{escape(run['loop'])}[/]: {run['state']}"
        + (f" ([red]{escape(run['error'])}[/])" if run["error"] else ""),
    )
    trigger = run["trigger"] or {}
    _add(node, f"trigger: {escape(str(trigger.get('kind')))}: {escape(str(trigger.get('reason')))}")
    data = run["data"] or {}
    rows = f"{data.get('rows')} rows (inbox seq {data.get('seq_min')}..{data.get('seq_max')})"
    branch = _add(node, f"data: {rows}")
    _add(branch, f"fingerprint {data.get('fingerprint')}")
    _add(branch, f"frame sha256:{data.get('frame_sha256')}")
    code = run["code"] or {}
    dirty = " (dirty)" if code.get("dirty") else ""
    branch = _add(node, f"code: {escape(str(code.get('target')))}")
    _add(branch, f"commit {code.get('commit')}{dirty}")
    _add(branch, f"source {code.get('source_digest')}")
    env = run["environment"] or {}
    packages = ", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items())
    branch = _add(node, f"environment: python {env.get('python')}; {escape(packages)}")
    _add(branch, f"digest {env.get('digest')}")
    _add(node, f"params: {escape(_pairs(run['params']))}")
    _add(node, f"metrics: {escape(_pairs(run['metrics']))}")
    gate = run["gate"]
    if gate is not None:
        colour = "green" if gate["passed"] else "red"
        branch = _add(node, f"gate: [{colour}]{escape(str(gate['summary']))}[/]")
        _add(branch, f"report {gate['digest']}")
        for check in gate["checks"]:
            mark = "–" if check["skipped"] else "✓" if check["passed"] else "✗"
            _add(branch, f"{mark} {escape(check['path'])}: {escape(check['message'])}")
    ledger = _add(node, "ledger")
    for event in events:
        _add(ledger, f"#{event['seq']} {event['kind']} {event['time']} by {escape(event['actor'])}")


def _deployments(parent: Tree, deployments: Mapping[str, Any]) -> None:
    moves, canaries = deployments["alias_moves"], deployments["canaries"]
    revisions = deployments["endpoint_revisions"]
    if not (moves or canaries or revisions):
        _add(parent, "deployments: none")
        return
    node = _add(parent, "deployments")
    for move in moves:
        _add(
            node,
            f"alias {escape(move['alias'])}: {_v(move['from_version'])} → v{move['to_version']} "
            f"at {move['moved_at']} by {escape(move['actor'])} (ledger #{move['ledger_seq']})",
        )
    for canary in canaries:
        _add(
            node,
            f"canary {canary['id']} on {escape(canary['endpoint'])}: v{canary['baseline']} → "
            f"v{canary['candidate']}, {canary['state']} (started {canary['created_at']} by "
            f"{escape(canary['created_by'])})",
        )
    for row in revisions:
        _add(
            node,
            f"endpoint {escape(row['endpoint'])} revision {row['revision']} routes to it via "
            f"{escape(', '.join(row['via']))} ({row['updated_at']} by {escape(row['updated_by'])})",
        )


def _verification(parent: Tree, checks: list[Mapping[str, Any]]) -> None:
    bad = [check for check in checks if check["result"] != "ok"]
    title = f"[red]verification: {len(bad)} MISMATCH[/]" if bad else "[green]verification: ok[/]"
    node = _add(parent, title)
    for check in checks:
        if check["result"] == "ok":
            _add(node, f"✓ {check['check']}")
            continue
        branch = _add(node, f"[red]✗ {check['check']}: mismatch[/]")
        for where, value in check["values"].items():
            _add(branch, f"{escape(where)}: {escape(str(value))}")


def _text(markup: str) -> Text:
    """Long lines wrap (a digest moves whole to the next line) instead of being cut off."""
    return Text.from_markup(markup, overflow="fold")


def _tree(markup: str) -> Tree:
    return Tree(_text(markup))


def _add(parent: Tree, markup: str) -> Tree:
    return parent.add(_text(markup))


def _v(version: int | None) -> str:
    return "(new)" if version is None else f"v{version}"


def _pairs(values: Mapping[str, Any] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in (values or {}).items()) or "none"
