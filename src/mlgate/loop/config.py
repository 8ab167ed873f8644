"""A loop file (``loop.yaml``): what to watch, when to retrain, how to judge and roll out.

Every section has safe defaults except the ones only the operator can know (the endpoint,
the features, the trainer) and the gates: with no ``gates:`` nothing is ever promoted.
Each error names the YAML path and what would be accepted, and the whole file is checked
before the loop starts, so a typo fails at ``mlgate loop run``, not at the first trigger.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mlgate.errors import CanaryError, LoopConfigError
from mlgate.experiments.canary import DEFAULT_METRICS, CanaryConfig, JudgeConfig, MetricSpec
from mlgate.loop.gates import Gate, parse_gate
from mlgate.loop.trainer import TrainerSpec, parse_trainer
from mlgate.loop.triggers import TriggerConfig, parse_triggers
from mlgate.loop.window import WindowPolicy, parse_window
from mlgate.monitoring.quality import CHECKS, QualityOptions
from mlgate.registry.records import check_model_name

__all__ = [
    "LoopConfig",
    "MonitorConfig",
    "PromotionConfig",
    "SourceConfig",
    "TrainingConfig",
    "load_loop_config",
    "parse_loop_config",
]

SourceKind = Literal["memory", "prediction_log", "redis", "file", "http"]
_SOURCE_KINDS: tuple[SourceKind, ...] = ("memory", "prediction_log", "redis", "file", "http")
_DETECTORS = ("adwin", "page_hinkley", "hddm_a", "cusum")
# Before training, the checks that tell bad data from a changed world: after drift the
# ranges, categories, outlier and label rates are expected to move, so they warn only.
_LOOP_WARN_ONLY = frozenset({"out_of_range", "unseen_categories", "outlier_rate", "label_shift"})


@dataclass(frozen=True)
class SourceConfig:
    kind: SourceKind = "memory"
    url: str | None = None  # redis://HOST:PORT/DB?stream=KEY
    path: Path | None = None  # a CSV or Parquet file
    max_rate: float | None = None  # records per second (file replay)
    batch_size: int = 500


@dataclass(frozen=True)
class MonitorConfig:
    window: int = 500  # records per tumbling window of the input-drift monitor
    detector: str = "adwin"  # performance decay on the champion's error stream
    reference: Path | None = None  # data the drift monitor compares with (default: champion's)


@dataclass(frozen=True)
class TrainingConfig:
    trainer: TrainerSpec
    window: WindowPolicy
    min_rows: int = 200
    holdout: float = 0.3
    label_timeout_s: float = 3600.0  # a run whose labels never come fails after this
    seed: int = 0
    # A run started by drift or decay learns only from records stored after its trigger:
    # the window then holds the new world alone, not a mix that is neither (and that the
    # label-flip check rightly calls inconsistent).
    since_trigger: bool = True


@dataclass(frozen=True)
class PromotionConfig:
    canary: CanaryConfig = field(default_factory=CanaryConfig)
    approval: bool = False  # wait for `mlgate loop approve` before the canary


@dataclass(frozen=True)
class LoopConfig:
    name: str
    endpoint: str
    model: str
    task: Literal["classification", "regression"]
    features: tuple[str, ...]
    training: TrainingConfig
    columns: tuple[str, ...] = ()  # kept for gates' slices, not model inputs
    source: SourceConfig = field(default_factory=SourceConfig)
    monitor: MonitorConfig = field(default_factory=MonitorConfig)
    triggers: TriggerConfig = field(default_factory=TriggerConfig)
    quality: QualityOptions = field(default_factory=lambda: loop_quality_options())
    # The label-flip check's neighbourhood: a row is suspect when ``agreement`` of its
    # ``neighbours`` nearest rows carry another label. 0.6 (not monitoring's 0.8): measured
    # on the synthetic world, 0.8 caught 15-35 % flipped labels in 600-row batches in under
    # half of the batches, 0.6 in 9-10 of 10, with no clean batch failing either way.
    quality_neighbours: int = 10
    quality_agreement: float = 0.6
    gates: Gate | None = None
    promotion: PromotionConfig = field(default_factory=PromotionConfig)


def loop_quality_options() -> QualityOptions:
    """The data checks before training: label flips judged within the batch (after a concept
    change the old reference's neighbours would call every new label a flip)."""
    return QualityOptions(label_flip_index="batch", warn_only=_LOOP_WARN_ONLY)


def load_loop_config(path: Path) -> LoopConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LoopConfigError(f"cannot read the loop file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LoopConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_loop_config(data, base=path.parent)


def parse_loop_config(data: object, *, base: Path = Path(".")) -> LoopConfig:
    top = _mapping(data, "the loop file")
    _known(
        top,
        "the loop file",
        {"name", "endpoint", "model", "task", "features", "columns", "source", "monitor"}
        | {"triggers", "training", "quality", "gates", "promotion"},
    )
    name = _name(top.get("name"), "name")
    endpoint = _name(top.get("endpoint"), "endpoint")
    task = top.get("task", "classification")
    if task not in ("classification", "regression"):
        raise LoopConfigError(f"task must be classification or regression, got {task!r}")
    features = _names(top.get("features"), "features", required=True)
    quality = _mapping(top.get("quality") or {}, "quality")
    columns = _names(top.get("columns", []), "columns", required=False)
    return LoopConfig(
        name=name,
        endpoint=endpoint,
        model=_name(top.get("model", endpoint), "model"),
        task=task,
        features=features,
        columns=columns,
        source=_source(top.get("source"), base),
        monitor=_monitor(top.get("monitor"), base),
        triggers=parse_triggers(top.get("triggers")),
        training=_training(top.get("training")),
        quality=_quality(top.get("quality")),
        quality_neighbours=_count(quality.get("neighbours", 10), "quality.neighbours"),
        quality_agreement=_share(quality.get("agreement", 0.6), "quality.agreement"),
        gates=parse_gate(top.get("gates")),
        promotion=_promotion(top.get("promotion")),
    )


def _source(data: object, base: Path) -> SourceConfig:
    if data is None:
        return SourceConfig()
    section = _mapping(data, "source")
    _known(section, "source", {"kind", "url", "path", "max_rate", "batch_size"})
    kind = section.get("kind", "memory")
    if kind not in _SOURCE_KINDS:
        raise LoopConfigError(f"source.kind must be one of {list(_SOURCE_KINDS)}, got {kind!r}")
    url = section.get("url")
    if kind == "redis" and not (isinstance(url, str) and url.startswith(("redis", "unix"))):
        raise LoopConfigError("source.url must be redis://HOST:PORT/DB?stream=KEY for kind redis")
    raw_path = section.get("path")
    if kind == "file" and not isinstance(raw_path, str):
        raise LoopConfigError("source.path must name a CSV or Parquet file for kind file")
    rate = section.get("max_rate")
    return SourceConfig(
        kind=kind,
        url=url if isinstance(url, str) else None,
        path=None if not isinstance(raw_path, str) else base / raw_path,
        max_rate=None if rate is None else _positive(rate, "source.max_rate"),
        batch_size=_count(section.get("batch_size", 500), "source.batch_size"),
    )


def _monitor(data: object, base: Path) -> MonitorConfig:
    if data is None:
        return MonitorConfig()
    section = _mapping(data, "monitor")
    _known(section, "monitor", {"window", "detector", "reference"})
    detector = section.get("detector", "adwin")
    if detector not in _DETECTORS:
        raise LoopConfigError(f"monitor.detector must be one of {list(_DETECTORS)}")
    reference = section.get("reference")
    if reference is not None and not isinstance(reference, str):
        raise LoopConfigError("monitor.reference must be the path of a CSV or Parquet file")
    return MonitorConfig(
        window=_count(section.get("window", 500), "monitor.window"),
        detector=detector,
        reference=None if reference is None else base / reference,
    )


def _training(data: object) -> TrainingConfig:
    section = _mapping(data, "training")
    window = section.get("window", {"recent": 5000})
    loop_keys = {"window", "min_rows", "holdout", "label_timeout_s", "since_trigger"}
    rest = {k: v for k, v in section.items() if k not in loop_keys}  # the trainer's keys
    since_trigger = section.get("since_trigger", True)
    if not isinstance(since_trigger, bool):
        raise LoopConfigError(
            f"training.since_trigger must be true or false, got {since_trigger!r}"
        )
    trainer = parse_trainer(rest, where="training")
    holdout = section.get("holdout", 0.3)
    if not (isinstance(holdout, float) and 0.05 <= holdout <= 0.9):
        raise LoopConfigError(f"training.holdout must be a share in [0.05, 0.9], got {holdout!r}")
    return TrainingConfig(
        trainer=trainer,
        window=parse_window(window),
        min_rows=_count(section.get("min_rows", 200), "training.min_rows"),
        holdout=holdout,
        label_timeout_s=_positive(
            section.get("label_timeout_s", 3600.0), "training.label_timeout_s"
        ),
        seed=trainer.seed,
        since_trigger=since_trigger,
    )


def _quality(data: object) -> QualityOptions:
    if data is None:
        return loop_quality_options()
    section = {
        k: v for k, v in _mapping(data, "quality").items() if k not in ("neighbours", "agreement")
    }
    for key in ("disabled", "warn_only"):
        value = section.get(key, sorted(_LOOP_WARN_ONLY) if key == "warn_only" else [])
        if not isinstance(value, list) or not all(v in CHECKS for v in value):
            raise LoopConfigError(f"quality.{key} must be a list of checks from {list(CHECKS)}")
        section[key] = frozenset(value)
    section.setdefault("label_flip_index", "batch")
    try:
        return QualityOptions(**section)
    except (TypeError, ValueError) as exc:
        raise LoopConfigError(f"quality: {exc}") from None


def _promotion(data: object) -> PromotionConfig:
    if data is None:
        return PromotionConfig()
    section = _mapping(data, "promotion")
    known = {"steps", "interval_s", "failure_limit", "inconclusive_limit", "metrics"}
    known |= {"min_samples", "sticky_key", "approval"}
    _known(section, "promotion", known)
    approval = section.get("approval", False)
    if not isinstance(approval, bool):
        raise LoopConfigError(f"promotion.approval must be true or false, got {approval!r}")
    try:
        metrics = section.get("metrics")
        canary = CanaryConfig(
            steps=tuple(section.get("steps", (5, 25, 50, 100))),
            interval_s=section.get("interval_s", 300.0),
            failure_limit=section.get("failure_limit", 1),
            inconclusive_limit=section.get("inconclusive_limit", 3),
            metrics=DEFAULT_METRICS if metrics is None else _metrics(metrics),
            judge=JudgeConfig(min_samples=section.get("min_samples", 50)),
            sticky_key=section.get("sticky_key"),
            promote_alias="champion",
        )
    except (CanaryError, TypeError) as exc:
        raise LoopConfigError(f"promotion: {exc}") from None
    return PromotionConfig(canary=canary, approval=approval)


def _metrics(data: object) -> tuple[MetricSpec, ...]:
    if not isinstance(data, list) or not data:
        raise LoopConfigError("promotion.metrics must be a non-empty list of canary metrics")
    return tuple(MetricSpec.from_json(_mapping(m, "promotion.metrics[]")) for m in data)


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise LoopConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    return data


def _known(section: Mapping[str, Any], where: str, known: set[str]) -> None:
    unknown = sorted(set(map(str, section)) - known)
    if unknown:
        raise LoopConfigError(f"{where} has unknown keys {unknown}; known: {sorted(known)}")


def _name(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise LoopConfigError(f"{where} must be a name, got {value!r}")
    try:
        return check_model_name(value)
    except Exception as exc:  # InvalidNameError: reworded for the loop file
        raise LoopConfigError(f"{where}: {exc}") from None


def _names(value: object, where: str, *, required: bool) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise LoopConfigError(f"{where} must be a list of column names, got {value!r}")
    if required and not value:
        raise LoopConfigError(f"{where} must name at least one column")
    if len(set(value)) != len(value):
        raise LoopConfigError(f"{where} names a column twice: {value}")
    return tuple(value)


def _positive(value: object, where: str) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise LoopConfigError(f"{where} must be a number above 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _share(value: object, where: str) -> float:
    number = _positive(value, where)
    if number > 1:
        raise LoopConfigError(f"{where} must be a share in (0, 1], got {value!r}")
    return number


def _count(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LoopConfigError(f"{where} must be an integer of at least 1, got {value!r}")
    return value
