"""``mlgate experiment``: analyse A/B results, size experiments, replay bandit policies."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from mlgate.cli._common import console, open_workspace, print_json
from mlgate.errors import ExperimentInputError

app = typer.Typer(
    help="A/B analysis, sample sizes and offline bandit evaluation.", no_args_is_help=True
)

_POLICIES = ("epsilon_greedy", "ucb1", "thompson", "linucb", "linear_thompson")


@app.command("analyze")
def analyze_command(
    file: str = typer.Argument(..., help="The analysis document (JSON), or - for stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """Analyse summary statistics: lift, interval, p-value and sample-ratio check per variant."""
    from mlgate.experiments.analysis import analyze_document

    result = analyze_document(_read_document(file))
    if as_json:
        print_json(result)
    else:
        _print_analysis(result)


@app.command("live")
def live_command(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="A deployed endpoint that splits or bandits."),
    kind: str = typer.Option("proportion", help="proportion (0/1 rewards) or mean."),
    method: str = typer.Option("sequential", help="sequential, frequentist or bayesian."),
    difference: str = typer.Option("relative", help="relative or absolute lift."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    since: str | None = typer.Option(None, help="Only requests logged since (ISO 8601)."),
    as_json: bool = typer.Option(False, "--json", help="Print the analysis as JSON."),
) -> None:
    """Analyse a running endpoint from its prediction log and feedback rewards."""
    from mlgate.experiments.live import analyze_endpoint, parse_since

    for name, value, allowed in (
        ("kind", kind, ("mean", "proportion")),
        ("method", method, ("frequentist", "sequential", "bayesian")),
        ("difference", difference, ("relative", "absolute")),
    ):
        if value not in allowed:
            raise ExperimentInputError(f"--{name} must be one of {list(allowed)}, got {value!r}")
    with open_workspace(ctx) as workspace:
        result = analyze_endpoint(
            workspace,
            endpoint,
            kind=kind,  # type: ignore[arg-type]  # checked above
            method=method,  # type: ignore[arg-type]
            difference=difference,  # type: ignore[arg-type]
            alpha=alpha,
            since=None if since is None else parse_since(since),
        )
    if as_json:
        print_json(result)
        return
    versions = ", ".join(f"{t} → v{v}" for t, v in result["versions"].items())
    console.print(f"endpoint [bold]{endpoint}[/] (revision {result['revision']}): {versions}")
    _print_analysis(result["analysis"])


@app.command("power")
def power_command(
    baseline: float = typer.Option(..., help="Control's conversion rate, or its mean."),
    mde: float = typer.Option(..., help="Smallest lift worth detecting."),
    absolute: bool = typer.Option(False, "--absolute", help="The MDE is absolute."),
    sd: float | None = typer.Option(None, help="Standard deviation (mean metrics)."),
    alpha: float = typer.Option(0.05, help="Two-sided significance level."),
    power: float = typer.Option(0.8, help="Chance to detect the MDE."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Units needed per arm to detect ``mde`` with the given power (fixed-horizon test)."""
    from mlgate.experiments.stats import sample_size_mean, sample_size_proportion

    relative = not absolute
    if sd is None:
        n = sample_size_proportion(baseline, mde, relative=relative, alpha=alpha, power=power)
        metric = "proportion"
    else:
        n = sample_size_mean(baseline, sd, mde, relative=relative, alpha=alpha, power=power)
        metric = "mean"
    result = {
        "metric": metric,
        "baseline": baseline,
        "mde": mde,
        "relative": relative,
        "alpha": alpha,
        "power": power,
        "n_per_arm": n,
    }
    if as_json:
        print_json(result)
        return
    lift = f"{mde:.2%} relative" if relative else f"{mde:g} absolute"
    console.print(
        f"[bold]{n:,}[/] units per arm detect a {lift} change of a {metric} at {baseline:g} "
        f"with {power:.0%} power (alpha {alpha:g}, two-sided)"
    )


@app.command("replay")
def replay_command(
    log: Path = typer.Argument(..., help="Logged uniform traffic: JSONL, CSV or Parquet."),
    policy: str = typer.Option(..., help=f"One of {', '.join(_POLICIES)}."),
    features: str | None = typer.Option(
        None, help="Numeric context columns, comma-separated (contextual policies)."
    ),
    epsilon: float = typer.Option(0.1, help="Exploration rate of epsilon_greedy."),
    alpha: float = typer.Option(1.0, help="Exploration weight of ucb1, linucb, linear_thompson."),
    seed: int = typer.Option(0, help="Random seed of the policy."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimate a bandit policy's reward on logged traffic (Li et al. 2011 replay)."""
    from mlgate.experiments import bandits
    from mlgate.experiments.replay import load_log, replay

    if policy not in _POLICIES:
        raise ExperimentInputError(f"--policy must be one of {list(_POLICIES)}, got {policy!r}")
    columns = [c.strip() for c in features.split(",") if c.strip()] if features else None
    contextual = policy in ("linucb", "linear_thompson")
    if contextual and not columns:
        raise ExperimentInputError(f"{policy} routes by context: name the columns with --features")
    events = load_log(log, context_columns=columns)
    arms = sorted(set(events.arms), key=str)
    if len(arms) < 2:
        raise ExperimentInputError(f"{log} logs {len(arms)} arm(s); a replay needs at least 2")
    chosen: Any
    if policy == "epsilon_greedy":
        chosen = bandits.EpsilonGreedy(arms, epsilon, seed=seed)
    elif policy == "ucb1":
        chosen = bandits.UCB1(arms, alpha, seed=seed)
    elif policy == "thompson":
        chosen = bandits.ThompsonSampling(arms, seed=seed)
    elif policy == "linucb":
        chosen = bandits.LinUCB(arms, columns or [], alpha, seed=seed)
    else:
        chosen = bandits.LinearThompsonSampling(arms, columns or [], alpha, seed=seed)
    result = replay(chosen, events).to_dict()
    if as_json:
        print_json(result)
        return
    low, high = result["ci"]
    console.print(
        f"{policy}: mean reward [bold]{_number(result['mean_reward'])}[/] "
        f"(95% CI {_number(low)} to {_number(high)}) over {result['matched']:,} matched of "
        f"{result['total']:,} logged events"
    )


def _read_document(file: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ExperimentInputError(f"cannot read {file}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ExperimentInputError(f"{file} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise ExperimentInputError(f"{file} must hold a JSON object (the analysis document)")
    return document


def _print_analysis(result: dict[str, Any]) -> None:
    table = Table(title=f"{result['method']} analysis, {result['difference']} lift")
    for column in ("variant", "lift", "interval", "p-value", "SRM p", "verdict"):
        table.add_column(column)
    for name, row in result["results"].items():
        low, high = row["ci"]
        table.add_row(
            name,
            _number(row["lift"]),
            f"[{_number(low)}, {_number(high)}]",
            _number(row["p_value"]),
            _number(row["srm_p_value"]),
            str(row["verdict"]),
        )
    console.print(table)
    for note in result.get("notes", []):
        console.print(f"note: {note}")


def _number(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"
