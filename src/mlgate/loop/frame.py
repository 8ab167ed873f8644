"""The training frame: the labelled rows a run trains and validates on, with provenance.

A frame keeps the inbox sequence numbers and record ids of its rows so that a model's
lineage can name exactly the data it saw, and its fingerprint is a content hash that
does not depend on where the rows came from, only on what they say.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mlgate.errors import DataError

__all__ = ["TrainingFrame", "frame_from_bytes", "frame_to_bytes"]

_FORMAT = 1


@dataclass(frozen=True)
class TrainingFrame:
    """Labelled rows: ``columns`` holds every stored column, ``features`` the model's inputs.

    Columns that are not features (a segment such as ``country``) stay in ``columns`` so
    that gates can judge slices; :meth:`matrix` uses the features only, in their order.
    """

    columns: Mapping[str, NDArray[Any]]
    labels: NDArray[Any]
    features: tuple[str, ...]
    record_ids: tuple[str, ...]
    seqs: NDArray[np.int64]
    times: NDArray[np.float64]  # Unix seconds of each record's event time

    def __post_init__(self) -> None:
        n = len(self.labels)
        lengths = {name: len(column) for name, column in self.columns.items()}
        bad = {name: length for name, length in lengths.items() if length != n}
        if bad or len(self.record_ids) != n or len(self.seqs) != n or len(self.times) != n:
            raise DataError(
                f"a training frame of {n} labels has columns of other lengths {bad}; "
                "every column, id, sequence number and time needs one value per label"
            )
        missing = [name for name in self.features if name not in self.columns]
        if missing:
            raise DataError(
                f"the training frame has no column for features {missing}; the records "
                f"carry {sorted(self.columns)}. Fix the loop's `features` list or the source"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def matrix(self) -> NDArray[np.float64]:
        """The model input: the feature columns side by side as float64 ``[n, features]``."""
        if not self.features:
            return np.empty((len(self), 0), dtype=np.float64)
        try:
            return np.column_stack(
                [np.asarray(self.columns[name], dtype=np.float64) for name in self.features]
            )
        except (TypeError, ValueError) as exc:
            raise DataError(
                f"a feature column is not numeric ({exc}); the model input is one float "
                "tensor, so list only numeric columns under `features`"
            ) from None

    def take(self, index: Sequence[int] | NDArray[np.intp]) -> TrainingFrame:
        """The rows at ``index``, in that order."""
        rows = np.asarray(index, dtype=np.intp)
        return TrainingFrame(
            columns={name: np.asarray(column)[rows] for name, column in self.columns.items()},
            labels=np.asarray(self.labels)[rows],
            features=self.features,
            record_ids=tuple(self.record_ids[i] for i in rows.tolist()),
            seqs=np.asarray(self.seqs)[rows],
            times=np.asarray(self.times)[rows],
        )

    def split(self, holdout_fraction: float, seed: int) -> tuple[TrainingFrame, TrainingFrame]:
        """A seeded random split into (train, holdout); both keep at least one row."""
        n = len(self)
        if not 0 < holdout_fraction < 1:
            raise DataError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}")
        if n < 2:
            raise DataError(f"cannot split {n} labelled rows into training and holdout data")
        order = np.random.default_rng(seed).permutation(n)
        cut = min(max(1, round(n * holdout_fraction)), n - 1)
        return self.take(np.sort(order[cut:])), self.take(np.sort(order[:cut]))

    def fingerprint(self) -> str:
        """``sha256:`` of the rows' content (ids, features, labels) in row order."""
        digest = hashlib.sha256()
        digest.update(json.dumps(list(self.features)).encode())
        digest.update(json.dumps(list(self.record_ids)).encode())
        digest.update(np.ascontiguousarray(self.matrix()).tobytes())
        digest.update(json.dumps([_plain(v) for v in self.labels.tolist()]).encode())
        return "sha256:" + digest.hexdigest()

    def frame(self) -> dict[str, NDArray[Any]]:
        """Features and every other column plus the label, as monitoring's checks read them."""
        return {**{name: np.asarray(c) for name, c in self.columns.items()}, "label": self.labels}


def _plain(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) or value is None else str(value)


def frame_to_bytes(frame: TrainingFrame) -> bytes:
    """The frame as a numpy ``.npz`` without pickles, so a run can reload exactly its data.

    Text and mixed columns are stored as unicode arrays: ``np.load(allow_pickle=False)``
    reads them back, and nothing in the file can run code on load.
    """
    arrays: dict[str, NDArray[Any]] = {
        "_meta": np.array(
            json.dumps(
                {
                    "format": _FORMAT,
                    "features": list(frame.features),
                    "columns": list(frame.columns),
                }
            )
        ),
        "_labels": _storable(frame.labels),
        "_record_ids": np.array(frame.record_ids, dtype=np.str_),
        "_seqs": np.asarray(frame.seqs, dtype=np.int64),
        "_times": np.asarray(frame.times, dtype=np.float64),
    }
    for index, name in enumerate(frame.columns):
        arrays[f"c{index}"] = _storable(np.asarray(frame.columns[name]))
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def frame_from_bytes(data: bytes) -> TrainingFrame:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(str(archive["_meta"]))
            if meta.get("format") != _FORMAT:
                raise DataError(f"training frame format {meta.get('format')!r} is unknown")
            columns = {name: archive[f"c{i}"] for i, name in enumerate(meta["columns"])}
            return TrainingFrame(
                columns=columns,
                labels=archive["_labels"],
                features=tuple(meta["features"]),
                record_ids=tuple(str(r) for r in archive["_record_ids"].tolist()),
                seqs=archive["_seqs"],
                times=archive["_times"],
            )
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"a stored training frame cannot be read ({exc}); it is damaged") from None


def _storable(values: NDArray[Any]) -> NDArray[Any]:
    if values.dtype.kind in "biuf":
        return values
    return np.array([str(v) for v in values.tolist()], dtype=np.str_)
