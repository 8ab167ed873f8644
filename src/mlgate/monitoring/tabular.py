"""Read CSV and Parquet files into frames, with pyarrow, deciding each column's kind.

A frame is ``dict[str, numpy.ndarray]``: numeric columns float64 with NaN for missing,
categorical columns ``dtype=object`` holding ``str`` or None. :func:`read_frame` returns an
:class:`~mlgate.monitoring._encoded.EncodedFrame`, a ``dict`` that also keeps the codes
pyarrow held each categorical column in, so that drift counts categories without a Python
string per row; its categorical arrays are read-only (copy one to change it). Column kinds:

- floats, decimals and integers are numeric; with ``categorical_ints=True`` an integer
  column with at most 20 distinct values is categorical instead (codes such as 1/2/3);
- text, dictionary-encoded text and bools (as ``"true"``/``"false"``) are categorical;
- a CSV column that mixes numbers and text is text to pyarrow, so it reads as categorical;
  declaring it numeric in ``kinds`` raises DataError quoting the values that are not numbers;
- a column with no value at all (pyarrow's null type) reads as an all-NaN numeric column;
- ``kinds`` overrides any of this per column: integers, floats and bools can be read as
  categories and text as numbers.

Empty CSV cells are missing, in text columns too. "inf", "-inf" and "nan" in a numeric CSV
column are read as floats; the drift code treats infinities as out-of-range values.
Dates, times, binary data and nested types are refused with a DataError that says how to
leave them out (``columns=``). Missing, unreadable, empty and malformed files raise
DataError with the path and what to do; pyarrow's own exceptions never escape.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlgate.errors import DataError
from mlgate.monitoring._columns import FeatureKind, Frame, check_kinds
from mlgate.monitoring._encoded import CategoryCodes, EncodedFrame

__all__ = [
    "CATEGORICAL_INT_MAX_DISTINCT",
    "FeatureKind",
    "Frame",
    "read_column_names",
    "read_frame",
]

CATEGORICAL_INT_MAX_DISTINCT = 20
_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".tsv", ".tsv.gz", ".tsv.bz2")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_SHOWN = 3


def _format_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_CSV_SUFFIXES):
        return "csv"
    if name.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    raise DataError(
        f"cannot tell the format of {path}: expected a name ending in .csv or .tsv "
        "(optionally .gz/.bz2) or .parquet; rename the file or convert it"
    )


def _read_table(path: Path, fmt: str, columns: Sequence[str] | None) -> pa.Table:
    try:
        if fmt == "parquet":
            # Text read as dictionary codes: no string per row (see _as_categorical). Mapped,
            # not read: pages are decompressed straight from the page cache instead of being
            # copied into fresh memory first, which cost more kernel time than the decoding.
            text = [f.name for f in pq.read_schema(path) if _is_text(f.type)]
            return pq.read_table(
                path,
                columns=list(columns) if columns is not None else None,
                read_dictionary=text,
                memory_map=True,
            )
        delimiter = "\t" if ".tsv" in path.name.lower() else ","
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=list(columns) if columns is not None else None,
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowException, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot read {path} as {fmt.upper()}: {detail}; check that the file is a "
            f"complete {fmt.upper()} file (and, with columns=, that those columns exist)"
        ) from exc


def _inferred_kind(column: pa.ChunkedArray, categorical_ints: bool) -> FeatureKind | None:
    t = column.type
    if pa.types.is_integer(t):
        if categorical_ints and _distinct(column) <= CATEGORICAL_INT_MAX_DISTINCT:
            return "categorical"
        return "numeric"
    if pa.types.is_floating(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        return "numeric"
    if pa.types.is_boolean(t) or pa.types.is_dictionary(t) or _is_text(t):
        return "categorical"
    return None


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _distinct(column: pa.ChunkedArray) -> int:
    return int(pc.count_distinct(column, mode="only_valid").as_py())


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _as_numeric(name: str, column: pa.ChunkedArray, path: Path) -> npt.NDArray[np.float64]:
    column = _plain(column)
    if _is_text(column.type):
        return _parse_numbers(name, column, path)
    try:
        as_float = column.cast(pa.float64())
    except pa.ArrowException as exc:
        raise DataError(
            f"column {name!r} of {path} has type {column.type}, which cannot be read as "
            f"numbers ({exc}); leave it out with columns= or declare it categorical"
        ) from exc
    return np.asarray(as_float.to_numpy(zero_copy_only=False), dtype=np.float64)


def _parse_numbers(name: str, column: pa.ChunkedArray, path: Path) -> npt.NDArray[np.float64]:
    texts = column.to_pylist()
    values = np.empty(len(texts), dtype=np.float64)
    bad: list[str] = []
    for i, text in enumerate(texts):
        if text is None:
            values[i] = np.nan
            continue
        try:
            values[i] = float(text)
        except ValueError:
            bad.append(text)
    if bad:
        shown = ", ".join(repr(b) for b in bad[:_SHOWN])
        raise DataError(
            f"column {name!r} of {path} was declared numeric but {len(bad)} values are not "
            f"numbers, e.g. {shown}; fix those values or declare the column categorical"
        )
    return values


def _as_categorical(column: pa.ChunkedArray) -> CategoryCodes:
    """The column as codes into one dictionary of labels, and the object array they spell.

    Text comes out of pyarrow as codes already (Parquet text is read dictionary-encoded, CSV
    text is encoded here), so the object array is one ``take`` from the labels rather than
    a Python string per row, and the drift code can count the codes.
    """
    if not pa.types.is_dictionary(column.type):
        if not _is_text(column.type):
            column = column.cast(pa.string())  # bools as "true"/"false", numbers as text
        column = pc.dictionary_encode(column)
    encoded = column.combine_chunks()  # one dictionary for every chunk
    dictionary = encoded.dictionary
    if not _is_text(dictionary.type):
        dictionary = dictionary.cast(pa.string())
    labels = tuple(dictionary.to_pylist())
    indices = encoded.indices
    if indices.type != pa.int32():  # an int8 or int16 code may not hold the missing code
        indices = indices.cast(pa.int64())
    codes = pc.fill_null(indices, len(labels)).to_numpy(zero_copy_only=False)
    return CategoryCodes.build(codes, labels)


def read_frame(
    path: str | os.PathLike[str],
    kinds: Mapping[str, FeatureKind] | None = None,
    *,
    columns: Sequence[str] | None = None,
    categorical_ints: bool = False,
) -> EncodedFrame:
    """Read a CSV (.csv, .tsv, optionally compressed) or Parquet file into a frame.

    ``columns`` limits the read to those columns; ``kinds`` overrides inferred kinds.
    """
    source = Path(path)
    if not source.exists():
        raise DataError(f"no data file at {source}; check the path")
    if not source.is_file():
        raise DataError(f"{source} is not a file; pass the path of a CSV or Parquet file")
    fmt = _format_of(source)
    if source.stat().st_size == 0:
        raise DataError(f"{source} is empty (0 bytes); expected a header and rows of data")
    overrides = check_kinds(kinds)
    table = _read_table(source, fmt, columns)
    names = table.column_names
    if len(set(names)) != len(names):
        duplicated = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{source} has duplicate column names {duplicated}; rename them")
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise DataError(f"kinds names columns that {source} does not have: {unknown}")
    if table.num_rows == 0:
        raise DataError(f"{source} has a header but no rows; expected at least one row")
    frame: dict[str, npt.NDArray[Any]] = {}
    codes: dict[str, CategoryCodes] = {}
    for name, column in zip(names, table.columns, strict=True):
        kind = overrides.get(name) or _inferred_kind(column, categorical_ints)
        if kind is None:
            raise DataError(
                f"column {name!r} of {source} has type {column.type}, which drift and "
                "quality checks cannot use; leave it out with columns= or convert it"
            )
        if kind == "numeric":
            frame[name] = _as_numeric(name, column, source)
        else:
            codes[name] = _as_categorical(column)
            frame[name] = codes[name].values
    return EncodedFrame(frame, codes)


def read_column_names(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a CSV or Parquet file, from its header or schema alone.

    Lets a caller check columns and choose ``columns=`` and ``kinds`` for :func:`read_frame`
    before paying for the whole read. Same errors as :func:`read_frame` for a missing,
    empty or unreadable file.
    """
    source = Path(path)
    if not source.exists():
        raise DataError(f"no data file at {source}; check the path")
    if not source.is_file():
        raise DataError(f"{source} is not a file; pass the path of a CSV or Parquet file")
    fmt = _format_of(source)
    if source.stat().st_size == 0:
        raise DataError(f"{source} is empty (0 bytes); expected a header and rows of data")
    try:
        if fmt == "parquet":
            return list(pq.read_schema(source).names)
        delimiter = "\t" if ".tsv" in source.name.lower() else ","
        options = pacsv.ParseOptions(delimiter=delimiter)
        with pacsv.open_csv(source, parse_options=options) as reader:
            return list(reader.schema.names)
    except (pa.ArrowException, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"cannot read the header of {source} as {fmt.upper()}: {detail}; check that the "
            f"file is a complete {fmt.upper()} file"
        ) from exc
