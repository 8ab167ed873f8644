"""``mlgate monitor``: streaming data, prediction and concept drift on an endpoint, until stopped.

Profiles live in the workspace: ``HOME/profiles/ENDPOINT.json`` (the inputs) and
``HOME/profiles/ENDPOINT.outputs.json`` (the model's outputs, for prediction drift), fitted
from reference files with ``--fit-profile`` / ``--fit-output-profile``. Alarms go to the
workspace's ledger (one ``monitor.alarm`` entry each), to stdout, and, with
``--metrics-port``, to a Prometheus endpoint.

Positions are not kept across restarts: a restarted monitor replays the prediction log
from its start (unless ``--tail``), and alarms it raises again are ledgered again
(duplicates).
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["monitor_command"]


def monitor_command(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Endpoint (or model served zero-config) to watch."),
    profile: Path | None = typer.Option(
        None, "--profile", help="Input reference profile (default HOME/profiles/ENDPOINT.json)."
    ),
    output_profile: Path | None = typer.Option(
        None,
        "--output-profile",
        help="Profile of model outputs for prediction drift "
        "(default HOME/profiles/ENDPOINT.outputs.json, if it exists).",
    ),
    fit: Path | None = typer.Option(
        None, "--fit-profile", help="Fit the input profile from this CSV/Parquet file, save, exit."
    ),
    fit_outputs: Path | None = typer.Option(
        None, "--fit-output-profile", help="Fit the output profile from this file, save, exit."
    ),
    categorical: list[str] = typer.Option(
        [], "--categorical", help="Column to profile as categorical (repeatable)."
    ),
    window: int | None = typer.Option(None, "--window", min=1, help="Window of N records."),
    window_seconds: float | None = typer.Option(
        None, "--window-seconds", help="Window of S seconds (event time where records have it)."
    ),
    slide: float | None = typer.Option(None, "--slide", help="Slide (records or seconds)."),
    source: str = typer.Option(
        "predlog", "--source", help="predlog | file:PATH | redis://HOST:PORT/DB?stream=KEY"
    ),
    columns: list[str] = typer.Option(
        [],
        "--columns",
        help="TENSOR=a,b,c: names of a logged 2-D tensor's columns (default: the profile's "
        "names x[0], x[1], ... or, if the widths match, the profile's own column order).",
    ),
    labels: bool = typer.Option(False, "--labels", help="Concept drift from delayed labels."),
    prediction: str = typer.Option(
        "label", "--prediction", help="Output column with the prediction, for --labels."
    ),
    detector: str = typer.Option("adwin", "--detector", help="adwin|page_hinkley|hddm_a|cusum"),
    loss: str = typer.Option("zero_one", "--loss", help="zero_one|absolute|squared"),
    label_ttl: float = typer.Option(7 * 86400.0, "--label-ttl", help="Seconds to await a label."),
    version: str | None = typer.Option(
        None,
        "--version",
        help="Only this model version's rows; its own profile (ENDPOINT.vVERSION.json) if fitted.",
    ),
    tail: bool = typer.Option(
        False,
        "--tail",
        help="Start at the end of the prediction log (positions are not kept across restarts).",
    ),
    max_records: int | None = typer.Option(None, "--max-records", min=1, help="Stop after N."),
    once: bool = typer.Option(False, "--once", help="Process what is there now, then stop."),
    batch: int = typer.Option(1000, "--batch", min=1, help="Records per read."),
    poll: float = typer.Option(1.0, "--poll", min=0.0, help="Seconds between polls when idle."),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve the Prometheus gauges on this port."
    ),
    json_output: bool = typer.Option(False, "--json", help="Alarms and summary as JSON lines."),
) -> None:
    """Watch ENDPOINT's inputs, outputs and (with --labels) errors for drift until Ctrl-C.

    Positions are not kept across restarts: a restart replays the prediction log from
    the start unless --tail is given, and alarms ledgered again on that replay are
    duplicates of earlier entries.
    """
    # Imported here: the streaming stack pulls in scipy and pyarrow, which every other
    # command would otherwise pay for at start-up.
    from mlgate.cli._monitor_run import run_monitor

    run_monitor(
        ctx=ctx,
        endpoint=endpoint,
        profile=profile,
        output_profile=output_profile,
        fit=fit,
        fit_outputs=fit_outputs,
        categorical=categorical,
        window=window,
        window_seconds=window_seconds,
        slide=slide,
        source=source,
        columns=columns,
        labels=labels,
        prediction=prediction,
        detector=detector,
        loss=loss,
        label_ttl=label_ttl,
        version=version,
        tail=tail,
        max_records=max_records,
        once=once,
        batch=batch,
        poll=poll,
        metrics_port=metrics_port,
        json_output=json_output,
    )
