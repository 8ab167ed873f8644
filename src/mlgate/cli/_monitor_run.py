"""``mlgate monitor``: streaming data, prediction and concept drift on an endpoint, until stopped.

Profiles live in the workspace: ``HOME/profiles/ENDPOINT.json`` (the inputs) and
``HOME/profiles/ENDPOINT.outputs.json`` (the model's outputs, for prediction drift), fitted
from reference files with ``--fit-profile`` / ``--fit-output-profile``. Alarms go to the
workspace's ledger (one ``monitor.alarm`` entry each), to stdout, and, with
``--metrics-port``, to a Prometheus endpoint.
"""

from __future__ import annotations

import re
from pathlib import Path

import typer
from prometheus_client import CollectorRegistry, start_http_server

from mlgate.cli._common import console, open_workspace, print_json, state_of
from mlgate.cli._monitor_view import print_alarm_json, run_with_display, summarise
from mlgate.errors import ConfigError, ProfileError
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.detectors import ADWIN, HDDMA, BernoulliCusum, Detector, PageHinkley
from mlgate.monitoring.profile import ReferenceProfile, fit_profile, load_profile, save_profile
from mlgate.monitoring.stream import (
    Alarm,
    AlarmSink,
    ConceptMonitor,
    CountWindow,
    DriftMonitor,
    FileSource,
    LabelJoin,
    LedgerSink,
    MonitorLoop,
    PredictionLogSource,
    PrometheusSink,
    RedisStreamSource,
    StreamSource,
    TensorDecoder,
    TimeWindow,
    WindowSpec,
    absolute_error,
    squared_error,
    zero_one_loss,
)
from mlgate.monitoring.stream.concept import Loss
from mlgate.monitoring.stream.monitor import DriftKind
from mlgate.monitoring.tabular import read_frame
from mlgate.workspace import Workspace

__all__ = ["profile_path", "run_monitor"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_DETECTORS: dict[str, type[Detector]] = {
    "adwin": ADWIN,
    "page_hinkley": PageHinkley,
    "hddm_a": HDDMA,
    "cusum": BernoulliCusum,
}
_LOSSES: dict[str, Loss] = {
    "zero_one": zero_one_loss,
    "absolute": absolute_error,
    "squared": squared_error,
}


def profile_path(
    home: Path, endpoint: str, *, outputs: bool = False, version: str | None = None
) -> Path:
    """Where the workspace keeps an endpoint's input (or output) reference profile.

    ``HOME/profiles/ENDPOINT[.vVERSION][.outputs].json``: a profile per model version when
    ``--version`` is given, else one for the endpoint.
    """
    for name, value in (("endpoint", endpoint), ("version", version or "x")):
        if not _NAME.match(value):
            raise ConfigError(
                f"{name} {value!r} cannot name a profile file: use letters, digits, '.', '-' "
                "and '_'"
            )
    stem = endpoint + (f".v{version}" if version else "") + (".outputs" if outputs else "")
    return home / "profiles" / f"{stem}.json"


def _default_profile(home: Path, endpoint: str, version: str | None, *, outputs: bool) -> Path:
    """The version's own profile if there is one, else the endpoint's."""
    if version is not None:
        own = profile_path(home, endpoint, outputs=outputs, version=version)
        if own.exists():
            return own
    return profile_path(home, endpoint, outputs=outputs)


def _fit(path: Path, target: Path, categorical: list[str]) -> ReferenceProfile:
    kinds: dict[str, FeatureKind] = {name: "categorical" for name in categorical}
    frame = read_frame(path)
    unknown = sorted(set(kinds) - set(frame))
    if unknown:
        raise ConfigError(f"--categorical names columns {path} does not have: {unknown}")
    profile = fit_profile(frame, kinds)
    save_profile(profile, target)
    return profile


def _window(count: int | None, seconds: float | None, slide: float | None) -> WindowSpec:
    if count is not None and seconds is not None:
        raise typer.BadParameter("give --window (records) or --window-seconds, not both")
    try:
        if seconds is not None:
            return TimeWindow(seconds, slide)
        size = 1000 if count is None else count
        if slide is not None and not float(slide).is_integer():
            raise typer.BadParameter("--slide of a count window is a whole number of records")
        return CountWindow(size, None if slide is None else int(slide))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _names(options: list[str]) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for option in options:
        tensor, _, listed = option.partition("=")
        columns = [c.strip() for c in listed.split(",") if c.strip()]
        if not tensor or not columns:
            raise typer.BadParameter(f"--columns {option!r} must read TENSOR=a,b,c")
        names[tensor.strip()] = columns
    return names


def _load(path: Path, endpoint: str, flag: str) -> ReferenceProfile:
    if not path.exists():
        raise ProfileError(
            f"no reference profile at {path}; fit one with `mlgate monitor {endpoint} "
            f"{flag} REFERENCE.csv` (or pass --profile PATH)"
        )
    return load_profile(path)


def _source(
    spec: str,
    workspace: Workspace,
    endpoint: str,
    monitors: list[DriftMonitor],
    prediction: str | None,
    *,
    version: str | None,
    tail: bool,
    labels: bool,
    names: dict[str, list[str]],
) -> StreamSource:
    wanted: dict[str, FeatureKind | None] = {}
    for monitor in monitors:
        wanted.update(monitor.profile.kinds)
    if prediction is not None:
        wanted.setdefault(prediction, None)
    if spec == "predlog":
        inputs = monitors[0].profile
        in_wanted: dict[str, FeatureKind | None] = dict(inputs.kinds)
        out_wanted: dict[str, FeatureKind | None] = {}
        if len(monitors) > 1:
            out_wanted.update(monitors[1].profile.kinds)
        if prediction is not None:
            out_wanted.setdefault(prediction, None)
        since, labels_since = (
            PredictionLogSource.latest_ids(workspace.store, endpoint) if tail else (0, 0)
        )
        return PredictionLogSource(
            workspace.store,
            endpoint,
            inputs=TensorDecoder(in_wanted, positional=tuple(inputs.features), names=names),
            outputs=TensorDecoder(
                out_wanted,
                positional=tuple(monitors[1].profile.features) if len(monitors) > 1 else (),
                names=names,
            )
            if out_wanted
            else None,
            labels=labels,
            version=version,
            since_id=since,
            labels_since_id=labels_since,
        )
    if spec.startswith("file:"):
        return FileSource(spec[len("file:") :])
    if spec.startswith(("redis://", "rediss://", "unix://")):
        return RedisStreamSource.from_url(spec, wanted)
    raise typer.BadParameter(
        f"unknown --source {spec!r}: use predlog, file:PATH or redis://HOST:PORT/DB?stream=KEY"
    )


def run_monitor(
    ctx: typer.Context,
    *,
    endpoint: str,
    profile: Path | None,
    output_profile: Path | None,
    fit: Path | None,
    fit_outputs: Path | None,
    categorical: list[str],
    window: int | None,
    window_seconds: float | None,
    slide: float | None,
    source: str,
    columns: list[str],
    labels: bool,
    prediction: str,
    detector: str,
    loss: str,
    label_ttl: float,
    version: str | None,
    tail: bool,
    max_records: int | None,
    once: bool,
    batch: int,
    poll: float,
    metrics_port: int | None,
    json_output: bool,
) -> None:
    """The body of ``mlgate monitor`` (see :mod:`mlgate.cli.monitor`)."""
    settings = state_of(ctx).settings
    if fit is not None or fit_outputs is not None:
        fitted: dict[str, object] = {}
        for path, of_outputs in ((fit, False), (fit_outputs, True)):
            if path is not None:
                target = profile_path(settings.home, endpoint, outputs=of_outputs, version=version)
                fitted_profile = _fit(path, target, categorical)
                fitted[str(target)] = fitted_profile.kinds
        if json_output:
            print_json({"profiles": fitted})
        else:
            for target_path, kinds in fitted.items():
                console.print(f"saved profile {target_path}: {kinds}")
        return
    if detector not in _DETECTORS or loss not in _LOSSES:
        raise typer.BadParameter(
            f"--detector must be one of {sorted(_DETECTORS)} and --loss one of {sorted(_LOSSES)}"
        )
    spec = _window(window, window_seconds, slide)
    home = settings.home
    inputs_path = profile or _default_profile(home, endpoint, version, outputs=False)
    inputs = _load(inputs_path, endpoint, "--fit-profile")
    outputs_path = output_profile or _default_profile(home, endpoint, version, outputs=True)
    outputs = (
        _load(outputs_path, endpoint, "--fit-output-profile")
        if output_profile is not None or outputs_path.exists()
        else None
    )
    printer = print_alarm_json if json_output else None
    with open_workspace(ctx) as workspace:
        ledger = LedgerSink(workspace.store, workspace.log, settings.actor)
        registry = CollectorRegistry()
        sinks: list[AlarmSink] = [ledger, PrometheusSink(registry)]
        if metrics_port is not None:
            start_http_server(metrics_port, registry=registry)
        shown: list[Alarm] = []
        subscribers = [printer or shown.append]
        monitors = [
            DriftMonitor(
                reference, spec, sinks=sinks, subscribers=subscribers, kind=kind,
                endpoint=endpoint, version=version,
            )
            for reference, kind in _profiles(inputs, outputs)
        ]  # fmt: skip
        concept = None
        if labels:
            concept = ConceptMonitor(
                _DETECTORS[detector](),
                loss=_LOSSES[loss],
                join=LabelJoin(ttl_s=label_ttl),
                sinks=sinks,
                subscribers=subscribers,
                endpoint=endpoint,
                version=version,
                feature=prediction,
            )
        stream = _source(
            source, workspace, endpoint, monitors, prediction if labels else None,
            version=version, tail=tail, labels=labels, names=_names(columns),
        )  # fmt: skip
        loop = MonitorLoop(
            stream,
            monitors,
            concept,
            prediction_column=prediction if labels else None,
            batch_records=batch,
            poll_interval_s=poll,
        )
        try:
            status = run_with_display(loop, endpoint, source, shown, json_output, max_records, once)
        finally:
            stream.close()
    summarise(status, loop, ledger.appended, json_output)


def _profiles(
    inputs: ReferenceProfile, outputs: ReferenceProfile | None
) -> list[tuple[ReferenceProfile, DriftKind]]:
    pairs: list[tuple[ReferenceProfile, DriftKind]] = [(inputs, "data_drift")]
    if outputs is not None:
        pairs.append((outputs, "prediction_drift"))
    return pairs
