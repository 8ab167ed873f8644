"""``mlgate monitor``: streaming data, prediction and concept drift on an endpoint, until stopped.

Profiles live in the workspace: ``HOME/profiles/ENDPOINT.json`` (the inputs) and
``HOME/profiles/ENDPOINT.outputs.json`` (the model's outputs, for prediction drift), fitted
from reference files with ``--fit-profile`` / ``--fit-output-profile``. Alarms go to the
workspace's ledger (one ``monitor.alarm`` entry each), to stdout, and, with
``--metrics-port``, to a Prometheus endpoint. An alarm the ledger refused is retried; any
still unledgered at the end is reported in the summary and fails the run (exit 1).

Positions are not kept across restarts: a restarted monitor reads the prediction log from
its start again (unless ``--tail``) and ledgers the alarms of that replay again, as
duplicates of the first run's entries.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import typer
from prometheus_client import CollectorRegistry, start_http_server

from mlgate.cli._common import console, open_workspace, print_json, state_of
from mlgate.cli._monitor_view import print_alarm_json, run_with_display, summarise
from mlgate.errors import ConfigError, MonitoringError, ProfileError
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.detectors import ADWIN, HDDMA, BernoulliCusum, Detector, PageHinkley
from mlgate.monitoring.profile import ReferenceProfile, fit_profile, load_profile, save_profile
from mlgate.monitoring.stream import (
    Alarm,
    AlarmSink,
    ConceptMonitor,
    CountWindow,
    DriftKind,
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
from mlgate.monitoring.tabular import read_column_names, read_frame
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
_ERROR_RATE_DETECTORS = ("cusum", "hddm_a")  # values in [0, 1] only
_UNBOUNDED_LOSSES = ("absolute", "squared")  # may exceed 1


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


def _fit_all(
    files: list[tuple[Path, Path]], categorical: list[str]
) -> list[tuple[Path, ReferenceProfile]]:
    """Fit and save a profile per (reference file, target); --categorical may name a column
    of any of the files (an output such as ``label`` when fitting inputs and outputs)."""
    names = {path: read_column_names(path) for path, _ in files}
    unknown = sorted(set(categorical) - {n for columns in names.values() for n in columns})
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        raise ConfigError(
            f"--categorical names {shown}, which no reference file has (columns: "
            f"{sorted({n for columns in names.values() for n in columns})}); check the spelling"
        )
    fitted: list[tuple[Path, ReferenceProfile]] = []
    for path, target in files:
        # Declared before reading: integer codes become categories (not float64 numbers).
        kinds: dict[str, FeatureKind] = {
            name: "categorical" for name in categorical if name in names[path]
        }
        profile = fit_profile(read_frame(path, kinds), kinds)
        try:
            save_profile(profile, target)
        except OSError as exc:
            raise ProfileError(
                f"cannot save the profile to {target}: {exc.strerror or exc}; check that "
                f"{target.parent} is a folder you may write to"
            ) from exc
        fitted.append((target, profile))
    return fitted


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
        return FileSource(spec[len("file:") :], kinds=wanted)
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
    _log_to_stderr()
    if fit is not None or fit_outputs is not None:
        files = [
            (path, profile_path(settings.home, endpoint, outputs=of_outputs, version=version))
            for path, of_outputs in ((fit, False), (fit_outputs, True))
            if path is not None
        ]
        fitted: dict[str, object] = {
            str(target): fitted_profile.kinds
            for target, fitted_profile in _fit_all(files, categorical)
        }
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
    if labels and detector in _ERROR_RATE_DETECTORS and loss in _UNBOUNDED_LOSSES:
        raise ConfigError(
            f"--detector {detector} models an error rate and takes values in [0, 1] only, but "
            f"--loss {loss} can exceed 1; use --detector adwin or page_hinkley for regression "
            "losses (or --loss zero_one)"
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
            _serve_metrics(metrics_port, registry)
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
    unledgered = ledger.pending + ledger.lost
    summarise(status, loop, ledger.appended, json_output, unledgered=unledgered)
    if unledgered:
        raise MonitoringError(
            f"{unledgered} alarms could not be written to the ledger (it refused "
            f"{ledger.failures} writes; see the lines above); the alarms were printed above: "
            "record them by hand, or rerun once the store accepts writes"
        )


def _serve_metrics(port: int, registry: CollectorRegistry) -> None:
    try:
        start_http_server(port, registry=registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on port {port}: {exc.strerror or exc}; choose a free port "
            "with --metrics-port (or leave the option out)"
        ) from exc
    except (OverflowError, ValueError) as exc:
        raise ConfigError(
            f"cannot serve metrics on port {port}: {exc}; --metrics-port takes 1-65535"
        ) from exc


class _OneLine(logging.Formatter):
    """``mlgate monitor: LEVEL: message`` and the exception's one-line summary, never its
    traceback: a failing sink is expected (a database hiccup), not a crash to debug."""

    def format(self, record: logging.LogRecord) -> str:
        text = " ".join(part.strip() for part in record.getMessage().splitlines() if part.strip())
        return f"mlgate monitor: {record.levelname.lower()}: {text}"


def _log_to_stderr() -> None:
    """Warnings of the monitoring stack as one line each on stderr (idempotent).

    Without a handler, logging's last-resort handler would print tracebacks.
    """
    root = logging.getLogger("mlgate")
    if any(isinstance(h.formatter, _OneLine) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)


def _profiles(
    inputs: ReferenceProfile, outputs: ReferenceProfile | None
) -> list[tuple[ReferenceProfile, DriftKind]]:
    pairs: list[tuple[ReferenceProfile, DriftKind]] = [(inputs, "data_drift")]
    if outputs is not None:
        pairs.append((outputs, "prediction_drift"))
    return pairs
