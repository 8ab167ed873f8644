"""``mlgate canary``: roll a version out in judged steps; see its progress; stop it.

The command only changes the stored canary and the endpoint; the running servers judge
and move it (every ``mlgate serve`` process drives canaries from its poll loop).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from mlgate.cli._common import console, open_workspace, print_json, state_of
from mlgate.errors import CanaryError

app = typer.Typer(help="Progressive rollouts judged against the baseline.", no_args_is_help=True)


def _target(text: str) -> int | str:
    return int(text) if text.isdigit() else text


@app.command("start")
def start_command(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="An endpoint that routes to one target."),
    candidate: str = typer.Argument(..., help="The version (or alias) to roll out."),
    baseline: str | None = typer.Option(None, help="Compare against this (default: current)."),
    steps: str = typer.Option("5,25,50,100", help="Candidate's traffic shares in percent."),
    interval: float = typer.Option(300.0, help="Seconds between judgements."),
    failure_limit: int = typer.Option(1, help="Failed judgements before rolling back."),
    inconclusive_limit: int = typer.Option(3, help="Inconclusive judgements before holding."),
    sticky_key: str | None = typer.Option(None, help="Keep each user on one side (a key)."),
    min_samples: int = typer.Option(50, help="Requests each side needs before a verdict."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start a canary: the endpoint splits between baseline and candidate at the first step."""
    from mlgate.experiments.canary import CanaryConfig, CanaryController

    try:
        shares = [float(part) for part in steps.split(",") if part.strip()]
    except ValueError:
        raise CanaryError(f"--steps takes percentages such as 5,25,50,100; got {steps!r}") from None
    config = CanaryConfig.from_json(
        {
            "steps": shares,
            "interval_s": interval,
            "failure_limit": failure_limit,
            "inconclusive_limit": inconclusive_limit,
            "sticky_key": sticky_key,
            "judge": {"min_samples": min_samples},
        }
    )
    actor = state_of(ctx).settings.actor
    with open_workspace(ctx) as workspace:
        status = CanaryController.from_workspace(workspace).start(
            endpoint,
            _target(candidate),
            baseline=None if baseline is None else _target(baseline),
            config=config,
            actor=actor,
        )
    _show(status.to_json(), as_json)


@app.command("status")
def status_command(
    ctx: typer.Context,
    endpoint: str | None = typer.Argument(None, help="One endpoint (default: all canaries)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Where a canary stands: step, state, and its last judgement."""
    from mlgate.experiments.canary import CanaryController

    with open_workspace(ctx) as workspace:
        controller = CanaryController.from_workspace(workspace)
        if endpoint is None:
            found = [status.to_json() for status in controller.list()]
            if as_json:
                print_json({"canaries": found})
            else:
                _table(found)
            return
        status = controller.status(endpoint)
    if status is None:
        raise CanaryError(f"endpoint {endpoint!r} has never had a canary; start one first")
    _show(status.to_json(), as_json)


def _action(name: str, help_text: str) -> None:
    def command(
        ctx: typer.Context,
        endpoint: str = typer.Argument(..., help="The endpoint whose canary to change."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        from mlgate.experiments.canary import CanaryController

        actor = state_of(ctx).settings.actor
        with open_workspace(ctx) as workspace:
            method = getattr(CanaryController.from_workspace(workspace), name)
            status = method(endpoint, actor=actor)
        _show(status.to_json(), as_json)

    command.__doc__ = help_text
    app.command(name)(command)


_action("abort", "Roll back now: the endpoint's original spec is deployed again.")
_action("pause", "Hold the canary at its step until resumed.")
_action("resume", "Resume a paused or held canary.")


def _show(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(status)
        return
    console.print(
        f"canary {status['id']} of [bold]{status['endpoint']}[/]: v{status['baseline']} → "
        f"v{status['candidate']}, [bold]{status['state']}[/] at step "
        f"{status['step_index'] + 1}/{len(status['steps'])} ({status['percent']:g}%)"
    )
    report = status.get("last_report")
    if report:
        score = report.get("score")
        shown = "–" if score is None else f"{score:g}"
        console.print(f"last judgement: {report['verdict']} (score {shown}): {report['reason']}")


def _table(found: list[dict[str, Any]]) -> None:
    table = Table(title="canaries")
    for column in ("id", "endpoint", "baseline", "candidate", "state", "step", "percent"):
        table.add_column(column)
    for s in found:
        step = f"{s['step_index'] + 1}/{len(s['steps'])}"
        table.add_row(
            str(s["id"]),
            s["endpoint"],
            str(s["baseline"]),
            str(s["candidate"]),
            s["state"],
            step,
            f"{s['percent']:g}",
        )
    console.print(table)
