"""Quarantine: batches that fail their data-quality checks are set aside, never trained on.

:meth:`Quarantine.accept_or_quarantine` runs :func:`~mlgate.monitoring.quality.check_batch`
and either returns the batch untouched or writes it, with the reasons, into the
quarantine folder and raises :class:`~mlgate.errors.QuarantinedBatchError`. The only
way back is :meth:`Quarantine.release`, an explicit call that a person makes after
review; it moves the files to ``released/`` so that the decision stays on disk.

Layout: ``<folder>/<id>.parquet`` (the batch) and ``<folder>/<id>.json`` (source,
time, reasons, the full report, the data file's sha256). Each file is written to a
temporary name in the same folder, flushed and fsynced, then ``os.replace``\\ d into
place, so a crash leaves either the whole file or none. The record is written after
the data and is what :meth:`Quarantine.list` looks for, so a batch is listed only
once both files are complete.

Columns pyarrow cannot store as one type (mixed types, often the very reason for
quarantine) are stored as JSON text per value, marked in the Parquet field metadata,
and decoded on release; values that are not JSON scalars come back as their repr.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from mlgate.errors import DataError, QuarantinedBatchError
from mlgate.monitoring._columns import Frame, frame_columns
from mlgate.monitoring.quality.check import QualityOptions, QualityReport, check_batch
from mlgate.monitoring.quality.profile import QualityProfile

__all__ = ["QUARANTINE_RECORD_VERSION", "Quarantine", "QuarantinedBatch"]

logger = logging.getLogger(__name__)

QUARANTINE_RECORD_VERSION = 1
_ENCODING_KEY = b"mlgate.encoding"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class QuarantinedBatch:
    """A quarantined batch as :meth:`Quarantine.list` shows it."""

    id: str
    source: str
    quarantined_at: str
    n_rows: int
    reasons: tuple[str, ...]
    data_path: Path
    sha256: str


def _json_value(value: object) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return json.dumps(repr(value))


def _column(values: np.ndarray) -> tuple[pa.Array, bool]:
    """Arrow array for a column, and whether it had to be stored as JSON text."""
    try:
        return pa.array(values), False
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return pa.array([_json_value(v) for v in values], type=pa.string()), True


def _encode(columns: dict[str, np.ndarray]) -> bytes:
    arrays, fields = [], []
    for name, values in columns.items():
        array, as_json = _column(values)
        metadata = {_ENCODING_KEY: b"json"} if as_json else None
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=metadata))
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), sink)
    return bytes(sink.getvalue().to_pybytes())


def _decode(data: bytes) -> dict[str, np.ndarray]:
    table = pq.read_table(pa.BufferReader(data))
    out: dict[str, np.ndarray] = {}
    for field, column in zip(table.schema, table.columns, strict=True):
        values = column.to_numpy(zero_copy_only=False)
        if field.metadata and field.metadata.get(_ENCODING_KEY) == b"json":
            decoded = [json.loads(v) for v in values]
            values = np.empty(len(decoded), dtype=object)
            values[:] = decoded
        elif values.dtype.kind in "OUS":
            values = values.astype(object)
        out[field.name] = values
    return out


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable on POSIX; not possible (nor needed) everywhere.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


class Quarantine:
    """A folder of failed batches; see the module docstring.

    ``clock`` returns the current UTC time (injected so that tests can fix it).
    """

    def __init__(
        self, folder: str | os.PathLike[str], *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._clock = clock or (lambda: datetime.now(UTC))

    def accept_or_quarantine(
        self,
        profile: QualityProfile,
        batch: Frame,
        source_name: str,
        options: QualityOptions | None = None,
    ) -> Frame:
        """Return ``batch`` if it passes its checks, else quarantine it and raise.

        Raises :class:`QuarantinedBatchError` (``reasons``, ``path``) for a failed batch
        and :class:`DataError`, quarantining nothing, for a batch that is not a frame.
        """
        report = check_batch(profile, batch, options)
        if report.passed:
            for warning in report.warnings:
                logger.warning(
                    "batch from %r: %s: %s", source_name, warning.label(), warning.message
                )
            return batch
        record = self.quarantine(batch, report, source_name)
        raise QuarantinedBatchError(
            f"batch from {source_name!r} failed {len(report.errors)} data-quality checks and "
            f"was quarantined as {record.id} in {self.folder}: {'; '.join(report.reasons)} "
            f"Review it (Quarantine.list()) and release it only if it is sound.",
            reasons=report.reasons,
            path=str(record.data_path),
        )

    def quarantine(self, batch: Frame, report: QualityReport, source_name: str) -> QuarantinedBatch:
        """Write ``batch`` and its report into the folder (atomically) and return the record."""
        columns, n_rows = frame_columns(batch, "batch")
        now = self._clock().astimezone(UTC)
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", source_name).strip("-.")[:64] or "batch"
        batch_id = f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{slug}-{uuid.uuid4().hex[:8]}"
        data = _encode(columns)
        data_path = self.folder / f"{batch_id}.parquet"
        record = {
            "version": QUARANTINE_RECORD_VERSION,
            "id": batch_id,
            "source": source_name,
            "quarantined_at": now.isoformat(),
            "n_rows": n_rows,
            "reasons": list(report.reasons),
            "data_file": data_path.name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "report": report.to_json(),
        }
        _write_atomic(data_path, data)
        try:
            _write_atomic(self._record_path(batch_id), json.dumps(record, indent=2).encode())
        except BaseException:
            with contextlib.suppress(OSError):
                data_path.unlink()
            raise
        logger.warning("quarantined batch %s from %r: %s", batch_id, source_name, report.summary())
        return self._parse(record)

    def list(self) -> tuple[QuarantinedBatch, ...]:
        """Batches in quarantine, oldest first; released ones are not listed."""
        found = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                found.append(self._load(path.stem))
            except DataError as exc:
                logger.warning("skipping %s in quarantine: %s", path.name, exc)
        return tuple(sorted(found, key=lambda b: (b.quarantined_at, b.id)))

    def release(self, batch_id: str) -> dict[str, np.ndarray]:
        """Return a reviewed batch and move its files to ``released/``; checks its sha256."""
        batch = self._load(batch_id)
        data = batch.data_path.read_bytes()
        if hashlib.sha256(data).hexdigest() != batch.sha256:
            raise DataError(
                f"quarantined batch {batch_id} no longer matches its recorded sha256; it was "
                f"altered after quarantine. Do not release it; investigate the folder."
            )
        frame = _decode(data)
        released = self.folder / "released"
        released.mkdir(exist_ok=True)
        record = json.loads(self._record_path(batch_id).read_text())
        record["released_at"] = self._clock().astimezone(UTC).isoformat()
        _write_atomic(released / f"{batch_id}.json", json.dumps(record, indent=2).encode())
        # Removing the record first takes the batch off the list even if the move fails.
        self._record_path(batch_id).unlink()
        os.replace(batch.data_path, released / batch.data_path.name)
        _fsync_folder(self.folder)
        logger.warning("released quarantined batch %s from %r", batch_id, batch.source)
        return frame

    def _record_path(self, batch_id: str) -> Path:
        if not _ID.match(batch_id):
            raise DataError(f"{batch_id!r} is not a quarantine id; take one from list().")
        return self.folder / f"{batch_id}.json"

    def _load(self, batch_id: str) -> QuarantinedBatch:
        path = self._record_path(batch_id)
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError(
                f"no quarantined batch {batch_id!r} in {self.folder}; take an id from list()."
            ) from None
        except (OSError, ValueError) as exc:
            raise DataError(f"quarantine record {path} is unreadable: {exc}") from exc
        batch = self._parse(record)
        if not batch.data_path.is_file():
            raise DataError(f"quarantine record {path} has no data file {batch.data_path.name}.")
        return batch

    def _parse(self, record: object) -> QuarantinedBatch:
        if not isinstance(record, dict):
            raise DataError(f"quarantine record must be a JSON object, found {record!r}.")
        try:
            return QuarantinedBatch(
                id=str(record["id"]),
                source=str(record["source"]),
                quarantined_at=str(record["quarantined_at"]),
                n_rows=int(record["n_rows"]),
                reasons=tuple(str(r) for r in record["reasons"]),
                data_path=self.folder / Path(str(record["data_file"])).name,
                sha256=str(record["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"quarantine record is malformed ({exc!r}).") from exc
