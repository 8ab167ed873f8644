"""``mlgate loop``: run a retraining loop, list its runs, trigger, approve or deny.

``run`` is the long-running process (stop it with Ctrl-C; a restart resumes the active
run from the store). The other commands change or read the store only; a running loop
picks their effect up on its next step.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlgate.cli._common import console, open_workspace, print_json, state_of

app = typer.Typer(help="The closed retraining loop.", no_args_is_help=True)

_FILE = typer.Argument(..., help="The loop file (loop.yaml).", exists=True, dir_okay=False)


@app.command("run")
def run_command(
    ctx: typer.Context,
    loop_file: Path = _FILE,
    max_seconds: float | None = typer.Option(None, help="Stop after this many seconds."),
    until_exhausted: bool = typer.Option(
        False, help="Stop once a file source is read to its end and no run is active."
    ),
    poll_interval: float = typer.Option(0.5, help="Seconds to wait when nothing happens."),
) -> None:
    """Ingest, watch, retrain, gate, canary and promote until stopped (Ctrl-C)."""
    from mlgate.loop.config import load_loop_config
    from mlgate.loop.runner import LoopRunner

    config = load_loop_config(loop_file)
    actor = state_of(ctx).settings.actor
    stop = {"now": False}
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        with open_workspace(ctx) as workspace:
            runner = LoopRunner(
                workspace,
                config,
                progress=lambda text: console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {text}"),
                actor=f"mlgate:loop:{actor}",
            )
            console.print(
                f"loop [bold]{config.name}[/] on endpoint {config.endpoint}: source "
                f"{config.source.kind}, {len(config.features)} features; Ctrl-C stops it"
            )
            try:
                runner.run(
                    should_stop=lambda: (
                        stop["now"] or (deadline is not None and time.monotonic() >= deadline)
                    ),
                    poll_interval_s=poll_interval,
                    until_exhausted=until_exhausted,
                )
            except KeyboardInterrupt:
                console.print("stopped; `mlgate loop run` again resumes the active run")
            finally:
                runner.close()
    finally:
        signal.signal(signal.SIGTERM, previous)


@app.command("runs")
def runs_command(
    ctx: typer.Context,
    name: str | None = typer.Argument(None, help="One loop (default: all)."),
    limit: int = typer.Option(20, help="How many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The newest runs: state, trigger, candidate, gate verdict."""
    from mlgate.loop.runs import RunStore

    with open_workspace(ctx) as workspace:
        runs = RunStore(workspace.store, workspace.log, workspace.clock).list(name, limit=limit)
    if as_json:
        print_json([run.to_json() for run in runs])
        return
    table = Table("run", "loop", "state", "trigger", "version", "gates", "updated", "error")
    for run in runs:
        gate = run.gate_report or {}
        table.add_row(
            str(run.id),
            run.loop,
            str(run.state),
            str(run.trigger.get("kind", "")),
            "" if run.candidate_version is None else str(run.candidate_version),
            "" if not gate else ("passed" if gate.get("passed") else "failed"),
            run.updated_at[:19],
            (run.error or "")[:60],
        )
    console.print(table)


@app.command("show")
def show_command(
    ctx: typer.Context,
    run_id: int = typer.Argument(..., help="The run id (`mlgate loop runs`)."),
) -> None:
    """One run as stored, in full (JSON)."""
    from mlgate.loop.runs import RunStore

    with open_workspace(ctx) as workspace:
        run = RunStore(workspace.store, workspace.log, workspace.clock).get(run_id)
    print_json(run.to_json())


@app.command("trigger")
def trigger_command(
    ctx: typer.Context,
    loop_file: Path = _FILE,
    reason: str = typer.Option("manual", help="Why (recorded in the ledger)."),
) -> None:
    """Start a run now (skips cooldown and confirmation; never a second active run)."""
    decision = _with_runner(ctx, loop_file, lambda runner: runner.trigger(reason))
    verdict = "fired" if decision.fire else "suppressed"
    console.print(f"{verdict}: {decision.reason}")
    if not decision.fire:
        raise typer.Exit(1)


@app.command("approve")
def approve_command(
    ctx: typer.Context, loop_file: Path = _FILE, run_id: int = typer.Argument(...)
) -> None:
    """Let a run that waits for approval start its canary."""
    actor = state_of(ctx).settings.actor
    run = _with_runner(ctx, loop_file, lambda runner: runner.approve(run_id, actor=actor))
    console.print(f"run {run.id} approved: canary {run.canary_id} started")


@app.command("deny")
def deny_command(
    ctx: typer.Context,
    loop_file: Path = _FILE,
    run_id: int = typer.Argument(...),
    reason: str = typer.Option(..., help="Why (recorded in the ledger)."),
) -> None:
    """Reject a run that waits for approval; its version is never rolled out."""
    actor = state_of(ctx).settings.actor
    run = _with_runner(ctx, loop_file, lambda r: r.deny(run_id, actor=actor, reason=reason))
    console.print(f"run {run.id} rejected")


def _with_runner(ctx: typer.Context, loop_file: Path, action: Any) -> Any:
    from mlgate.loop.config import load_loop_config
    from mlgate.loop.runner import LoopRunner

    config = load_loop_config(loop_file)
    with open_workspace(ctx) as workspace:
        runner = LoopRunner(workspace, config, actor=state_of(ctx).settings.actor, ingest=False)
        return action(runner)
