"""A CSV or Parquet file as a stream, read chunk by chunk so memory stays flat.

Parquet is read with ``pyarrow.parquet.ParquetFile.iter_batches`` and CSV with
``pyarrow.csv.open_csv``, ``chunk_rows`` rows (Parquet) or one CSV block at a time; a
batch is cut from the chunks held, so memory is a chunk or two whatever the file's size.

Column kinds. A streaming CSV reader infers types from its first block only, so a column
whose first block looks like integers would fail on a later ``1.5``. Columns are therefore
read with the kinds the monitor's profiles declare (``kinds``): numeric as float64,
categorical as text (integer codes declared categorical read as ``"0"``, ``"1"``..., as
:func:`~mlgate.monitoring.tabular.read_frame` reads them). Columns of unknown kind (the
prediction column of concept drift, or every column when ``kinds`` is None) are read as
text and turned into numbers batch by batch when every value of the batch is one. A value
that is not a number in a column declared numeric raises :class:`DataError`.

The reserved columns (:class:`~mlgate.monitoring.stream._decode.RecordKeys`) become request
ids, times (Unix seconds or RFC 3339 text), labels and versions; a file with ``request_id``
and ``label`` columns therefore brings its labels along (concept drift on a replayed log).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from mlgate.errors import DataError
from mlgate.monitoring._columns import FeatureKind
from mlgate.monitoring.stream._decode import RecordKeys, parse_time
from mlgate.monitoring.stream.sources import LabelBatch, StreamBatch
from mlgate.monitoring.tabular import read_column_names

__all__ = ["FileSource"]

Kinds = Mapping[str, FeatureKind | None]
DEFAULT_CHUNK_ROWS = 65_536


class FileSource:
    """A CSV or Parquet file fed in batches; see the module docstring."""

    def __init__(
        self,
        path: str,
        *,
        kinds: Kinds | None = None,
        keys: RecordKeys = RecordKeys(),
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        if chunk_rows < 1:
            raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
        self.path = Path(path)
        self._keys = keys
        names = read_column_names(self.path)  # DataError for a missing or unreadable file
        reserved = keys.reserved()
        if kinds is None:
            self._kinds: dict[str, FeatureKind | None] = {
                n: None for n in names if n not in reserved
            }
        else:
            self._kinds = {n: k for n, k in kinds.items() if n in names and n not in reserved}
        self._columns = [*self._kinds, *(n for n in names if n in reserved)]
        self._chunks = self._open(chunk_rows)
        self._held: pa.RecordBatch | None = None
        self._offset = 0
        self._row = 0  # rows read so far, for error messages

    # -- the reader -------------------------------------------------------------------------

    def _open(self, chunk_rows: int) -> Iterator[pa.RecordBatch]:
        try:
            if self.path.name.lower().endswith((".parquet", ".pq", ".parq")):
                batches: Iterator[pa.RecordBatch] = pq.ParquetFile(self.path).iter_batches(
                    batch_size=chunk_rows, columns=self._columns
                )
                return batches
            types = {
                name: pa.float64() if self._kinds.get(name) == "numeric" else pa.string()
                for name in self._columns
            }
            delimiter = "\t" if ".tsv" in self.path.name.lower() else ","
            reader = pacsv.open_csv(
                self.path,
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    include_columns=self._columns, column_types=types, strings_can_be_null=True
                ),
            )
            return iter(reader)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._error(exc) from exc

    def _error(self, exc: Exception) -> DataError:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return DataError(
            f"cannot read {self.path} after row {self._row}: {detail}; check that the file is "
            "complete and that columns declared numeric hold numbers only"
        )

    def _next_chunk(self) -> pa.RecordBatch | None:
        try:
            return next(self._chunks, None)
        except (pa.ArrowException, OSError, ValueError) as exc:
            raise self._error(exc) from exc

    def _take(self, n: int) -> pa.Table | None:
        """The next ``n`` rows (fewer at the end); None at the end of the file."""
        parts: list[pa.RecordBatch] = []
        while n > 0:
            if self._held is None or self._offset >= self._held.num_rows:
                self._held, self._offset = self._next_chunk(), 0
                if self._held is None:
                    break
                continue
            part = self._held.slice(self._offset, n)
            self._offset += part.num_rows
            n -= part.num_rows
            parts.append(part)
        if not parts:
            return None
        return pa.Table.from_batches(parts)

    # -- the port ---------------------------------------------------------------------------

    def read(self, max_records: int) -> StreamBatch | None:
        table = self._take(max(1, max_records))
        if table is None:
            return None
        start, n = self._row, table.num_rows
        self._row += n
        frame = {name: self._column(table, name) for name in self._kinds}
        keys = self._keys
        ids = _text(table, keys.request_id)
        times = self._times(table, start)
        labels = None
        if keys.label in table.column_names and ids is not None:
            values = _values(table.column(keys.label), None).tolist()
            labels = LabelBatch(ids, values, times)
        versions = _text(table, keys.version)
        return StreamBatch(
            frame=frame,
            n_records=n,
            request_ids=ids,
            times=times,
            versions=None if versions is None or "" in versions else versions,
            labels=labels,
            consumed=n,
        )

    def _column(self, table: pa.Table, name: str) -> NDArray[Any]:
        try:
            return _values(table.column(name), self._kinds[name])
        except (pa.ArrowException, ValueError) as exc:
            raise DataError(
                f"column {name!r} of {self.path} (rows {self._row - table.num_rows} to "
                f"{self._row}) cannot be read as {self._kinds[name]}: {exc}"
            ) from exc

    def _times(self, table: pa.Table, start: int) -> NDArray[np.float64] | None:
        name = self._keys.time
        if name not in table.column_names:
            return None
        stamps = [_time(v) for v in table.column(name).to_pylist()]
        bad = next((i for i, t in enumerate(stamps) if t is None), None)
        if bad is not None:
            raise DataError(
                f"column {name!r} of {self.path} must hold Unix seconds or RFC 3339 times in "
                f"every row; row {start + bad + 1} holds {table.column(name)[bad].as_py()!r}"
            )
        return np.array(stamps, dtype=np.float64)

    def commit(self) -> None:
        """Nothing to acknowledge."""

    def close(self) -> None:
        """The reader is released with the source."""
        self._chunks = iter(())
        self._held = None


def _values(column: pa.ChunkedArray, kind: FeatureKind | None) -> NDArray[Any]:
    """A column as the frame holds it: float64 (NaN missing) or objects (str / None)."""
    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    text = pa.types.is_string(array.type) or pa.types.is_large_string(array.type)
    if kind is None and text:
        try:  # every value of the batch a number: numbers (raw values, kind unknown)
            array = pc.cast(array, pa.float64())
        except pa.ArrowException:
            pass
    numeric = kind == "numeric" or (
        kind is None
        and (
            pa.types.is_integer(array.type)
            or pa.types.is_floating(array.type)
            or pa.types.is_null(array.type)
        )
    )
    if numeric:
        as_float = pc.cast(array, pa.float64())
        return np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):
        array = pc.cast(array, pa.string())  # bools as "true"/"false", integers as digits
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=object)


def _text(table: pa.Table, name: str) -> list[str] | None:
    if name not in table.column_names:
        return None
    return ["" if v is None else str(v) for v in table.column(name).to_pylist()]


def _time(value: Any) -> float | None:
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return parse_time(value)
        return number if math.isfinite(number) else None
    return parse_time(value)
