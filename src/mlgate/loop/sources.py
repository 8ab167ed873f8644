"""The loop's configured source, opened from its ``source:`` section.

``memory`` and ``http`` open nothing here: an in-process source is handed to the runner by
its caller (the demo, tests, a notebook), and HTTP records are written into the inbox by
the server's ``POST /v2/loops/{loop}/records`` route, which the runner then watches.
"""

from __future__ import annotations

from mlgate.errors import LoopConfigError
from mlgate.loop.config import LoopConfig
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stream import (
    FileSource,
    PredictionLogSource,
    RedisStreamSource,
    StreamSource,
    TensorDecoder,
)
from mlgate.workspace import Workspace

__all__ = ["open_source", "wanted_columns"]


def wanted_columns(config: LoopConfig) -> dict[str, FeatureKind | None]:
    """Features are numbers (one float tensor feeds the model); other columns categories."""
    wanted: dict[str, FeatureKind | None] = {name: "numeric" for name in config.features}
    wanted.update({name: "categorical" for name in config.columns})
    return wanted


def open_source(workspace: Workspace, config: LoopConfig) -> StreamSource | None:
    source = config.source
    wanted = wanted_columns(config)
    if source.kind in ("memory", "http"):
        return None
    if source.kind == "prediction_log":
        decoder = TensorDecoder(
            {name: "numeric" for name in config.features}, names={"input": config.features}
        )
        return PredictionLogSource(workspace.store, config.endpoint, inputs=decoder, labels=True)
    if source.kind == "redis":
        assert source.url is not None  # checked when the file was parsed
        return RedisStreamSource.from_url(
            source.url, wanted, group=f"mlgate-loop-{config.name}", consumer="loop-1"
        )
    if source.kind == "file":
        assert source.path is not None
        return FileSource(str(source.path), kinds=wanted)
    raise LoopConfigError(f"source kind {source.kind!r} is not supported")
