"""The LightGBM flavor: native text models written by ``Booster.save_model``.

lightgbm is optional (``pip install 'mlgate[lightgbm]'``), so it is imported
only when a LightGBM file is inspected or loaded; sniffing needs no import.

LightGBM's C++ parser trusts its input: a truncated or spliced model text
makes it read past the buffer and abort or segfault the whole process (seen
with lightgbm 4.7). So :func:`_check_layout` re-checks, in Python and before
lightgbm sees the text, every length and index the parser relies on for memory
safety: tree block sizes, the blank line ending each tree, and child and
feature indices used at prediction time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from mlgate.errors import ArtifactError
from mlgate.registry.flavors.base import Inspection, check_flavor, prepare_inputs
from mlgate.registry.signature import Signature, TensorSpec

__all__ = ["LightgbmFlavor"]

_HEADER = re.compile(rb"tree\r?\nversion=v\d")
_PARAMETER = re.compile(rb"\[[^:\]]+: .*\]")
_REQUIRED = (
    "version",
    "num_class",
    "label_index",
    "max_feature_idx",
    "feature_names",
    "tree_sizes",
)


class LightgbmFlavor:
    """LightGBM boosters in their native text format."""

    name = "lightgbm"

    def sniff(self, data: bytes) -> bool:
        return _HEADER.match(data) is not None

    def inspect(self, data: bytes, *, trusted_types: Sequence[str] = ()) -> Inspection:
        """Validate the text layout, load it and read the signature.

        ``trusted_types`` is ignored: LightGBM text holds no code to trust.
        """
        booster, header = _load(data)
        n_class = int(header["num_class"])
        objective = header.get("objective", "")
        shape = (-1, n_class) if n_class > 1 else (-1,)
        signature = Signature(
            inputs=(TensorSpec("input", "FP64", (-1, booster.num_feature())),),
            outputs=(TensorSpec("prediction", "FP64", shape),),
        )
        metadata: dict[str, object] = {
            "objective": objective,
            "num_class": n_class,
            "num_trees": booster.num_trees(),
            "feature_names": [str(n) for n in booster.feature_name()],
            "format_version": header["version"],
        }
        return Inspection(flavor=self.name, signature=signature, metadata=metadata)

    def load(self, data: bytes, inspection: Inspection) -> LightgbmModel:
        check_flavor(inspection, self.name)
        booster, _ = _load(data)
        return LightgbmModel(signature=inspection.signature, booster=booster)


def _lightgbm() -> ModuleType:
    try:
        import lightgbm
    except ImportError as exc:
        raise ArtifactError(
            "this is a LightGBM model but lightgbm is not installed; expected the optional "
            "dependency. Install it with: pip install 'mlgate[lightgbm]'"
        ) from exc
    return lightgbm


def _load(data: bytes) -> tuple[Any, dict[str, str]]:
    if _HEADER.match(data) is None:
        raise ArtifactError(
            f"not a LightGBM text model: expected text starting with 'tree' and "
            f"'version=v...' as written by Booster.save_model, found {data[:16]!r}. "
            f"Pass the right --flavor, or save the booster with Booster.save_model."
        )
    lightgbm = _lightgbm()
    header = _check_layout(data)
    try:
        booster = lightgbm.Booster(model_str=data.decode("utf-8"))
    except Exception as exc:
        raise ArtifactError(
            f"lightgbm {lightgbm.__version__} rejected the model text ({exc}); expected a "
            f"model written by Booster.save_model. Save it again with a current lightgbm."
        ) from exc
    return booster, header


def _damaged(what: str) -> ArtifactError:
    return ArtifactError(
        f"the LightGBM model text is damaged: {what}. Expected the unmodified output of "
        f"Booster.save_model (the file may be truncated or edited); save the model again."
    )


def _check_layout(data: bytes) -> dict[str, str]:
    """Check the text the way LightGBM's loader walks it; return the header."""
    if b"\x00" in data:
        # lightgbm hands the text to C as a NUL-terminated string.
        raise _damaged("it contains NUL bytes")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _damaged(f"it is not UTF-8 text ({exc})") from exc
    header: dict[str, str] = {}
    pos = 0
    while not data.startswith(b"Tree=", pos):
        end = data.find(b"\n", pos)
        if end < 0:
            raise _damaged("no 'Tree=' section follows the header")
        key, _, value = data[pos:end].rstrip(b"\r").decode().partition("=")
        header[key] = value  # later lines win, as in LightGBM's own loader
        pos = end + 1
    missing = [key for key in _REQUIRED if key not in header]
    if missing:
        raise _damaged(f"the header lacks {missing}")
    try:
        sizes = [int(s) for s in header["tree_sizes"].split()]
        n_features = int(header["max_feature_idx"]) + 1
        if int(header["num_class"]) < 1 or n_features < 1 or not sizes or min(sizes) < 1:
            raise ValueError("out of range")
    except ValueError as exc:
        raise _damaged(f"bad num_class, max_feature_idx or tree_sizes ({exc})") from exc
    for index, size in enumerate(sizes):
        if pos + size > len(data):
            raise _damaged(f"tree {index} ends past the end of the file")
        _check_tree(data[pos : pos + size], index, n_features)
        pos += size
    if not data[pos:].lstrip(b"\r\n").startswith(b"end of trees"):
        raise _damaged("'end of trees' does not follow the last tree")
    _check_parameters(data[pos:].split(b"\n"))
    return header


def _check_parameters(lines: list[bytes]) -> None:
    """Require a complete ``parameters:`` section if there is one.

    LightGBM splits each line of it at ':' and indexes the second part without
    checking it exists, so one cut line is a segfault.
    """
    lines = [line.rstrip(b"\r") for line in lines]
    if b"parameters:" not in lines:
        return
    start = lines.index(b"parameters:") + 1
    if b"end of parameters" not in lines[start:]:
        raise _damaged("the parameters section has no 'end of parameters' line")
    for line in lines[start : lines.index(b"end of parameters", start)]:
        if line and _PARAMETER.fullmatch(line) is None:
            raise _damaged(f"parameter line {line[:40]!r} is not '[name: value]'")


def _check_tree(block: bytes, index: int, n_features: int) -> None:
    lines = block.replace(b"\r", b"").split(b"\n")
    if lines[0] != f"Tree={index}".encode():
        raise _damaged(f"tree {index} does not start with 'Tree={index}'")
    if b"" not in lines[1:-1]:
        raise _damaged(f"tree {index} has no blank line before the next tree")
    body = lines[1 : lines.index(b"", 1)]
    if any(b"=" not in line for line in body):
        raise _damaged(f"tree {index} has a line that is not key=value")
    fields: dict[str, str] = {}
    for line in body:
        key, _, value = line.decode().partition("=")
        fields[key] = value
    try:
        leaves = int(fields.get("num_leaves", ""))
        children = [
            int(v) for k in ("left_child", "right_child") for v in fields.get(k, "").split()
        ]
        features = [int(v) for v in fields.get("split_feature", "").split()]
    except ValueError as exc:
        raise _damaged(f"tree {index} has a non-integer structure field ({exc})") from exc
    if leaves < 1 or len(children) != 2 * (leaves - 1) or len(features) != leaves - 1:
        raise _damaged(f"tree {index} has arrays that do not match num_leaves={leaves}")
    if any(not -leaves <= c <= leaves - 2 for c in children):
        raise _damaged(f"tree {index} has a child index outside the tree")
    if any(not 0 <= f < n_features for f in features):
        raise _damaged(f"tree {index} splits on a feature the model does not have")


@dataclass(frozen=True)
class LightgbmModel:
    """A LightGBM booster behind the :class:`LoadedModel` protocol."""

    signature: Signature
    booster: Any

    def predict(
        self, inputs: Mapping[str, np.ndarray[Any, Any]]
    ) -> dict[str, np.ndarray[Any, Any]]:
        features = next(iter(prepare_inputs(self.signature, inputs).values()))
        prediction = np.asarray(self.booster.predict(features), dtype=np.float64)
        return {self.signature.outputs[0].name: prediction}
