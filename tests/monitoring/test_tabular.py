"""Reading CSV and Parquet into frames: kinds, overrides and every unreadable file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.errors import DataError
from mlgate.monitoring.drift import compare
from mlgate.monitoring.tabular import read_frame

CSV = "num,text,ints,flag,empty,special\n1.5,x,1,true,,inf\nnan,2,2,false,,-inf\n3,y,,true,,5\n"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_columns_get_their_kinds(tmp_path: Path) -> None:
    frame = read_frame(write(tmp_path, "data.csv", CSV))
    assert frame["num"].dtype == np.float64 and math.isnan(frame["num"][1])
    # A column mixing numbers and text is text: categorical, the numbers kept as strings.
    assert frame["text"].dtype == object and frame["text"].tolist() == ["x", "2", "y"]
    assert frame["ints"].dtype == np.float64 and math.isnan(frame["ints"][2])
    assert frame["flag"].tolist() == ["true", "false", "true"]
    assert frame["empty"].dtype == np.float64 and np.all(np.isnan(frame["empty"]))
    assert frame["special"].tolist() == [math.inf, -math.inf, 5.0]


def test_kind_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "data.csv", CSV)
    frame = read_frame(
        path,
        {"ints": "categorical", "flag": "numeric", "empty": "categorical", "num": "categorical"},
    )
    assert frame["ints"].tolist() == ["1", "2", None]
    assert frame["flag"].tolist() == [1.0, 0.0, 1.0]
    assert frame["empty"].tolist() == [None, None, None]
    assert frame["num"][0] == "1.5"
    with pytest.raises(DataError, match=r"declared numeric but 2 values are not numbers, e.g. 'x'"):
        read_frame(path, {"text": "numeric"})
    numbers = write(tmp_path, "numbers.csv", "v\n1\n 2.5\n\n")
    assert read_frame(numbers, {"v": "numeric"})["v"].tolist()[:2] == [1.0, 2.5]
    with pytest.raises(DataError, match="does not have"):
        read_frame(path, {"absent": "numeric"})


def test_low_cardinality_integers_become_categories_only_when_asked(tmp_path: Path) -> None:
    rows = "\n".join(f"{i % 3},{i}" for i in range(50))
    path = write(tmp_path, "codes.csv", "code,id\n" + rows + "\n")
    assert read_frame(path)["code"].dtype == np.float64
    frame = read_frame(path, categorical_ints=True)
    assert frame["code"].dtype == object and set(frame["code"].tolist()) == {"0", "1", "2"}
    assert frame["id"].dtype == np.float64  # 50 distinct values: still numeric


def test_parquet_with_dictionary_text_and_selected_columns(tmp_path: Path) -> None:
    table = pa.table(
        {
            "x": pa.array([1, None, 3], type=pa.int32()),
            "f": pa.array([0.5, 1.5, None]),
            "c": pa.array(["a", None, "a"]).dictionary_encode(),
            "b": pa.array([True, None, False]),
        }
    )
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    frame = read_frame(path)
    assert frame["x"].tolist()[0] == 1.0 and math.isnan(frame["x"][1])
    assert frame["c"].tolist() == ["a", None, "a"]
    assert frame["b"].tolist() == ["true", None, "false"]
    assert list(read_frame(path, columns=["f"])) == ["f"]
    with pytest.raises(DataError, match="cannot read"):
        read_frame(path, columns=["nope"])


def test_tsv_and_compressed_csv(tmp_path: Path) -> None:
    assert read_frame(write(tmp_path, "d.tsv", "a\tb\n1\tx\n"))["b"].tolist() == ["x"]
    import gzip

    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"a,b\n1,x\n2,y\n"))
    assert read_frame(path)["a"].tolist() == [1.0, 2.0]


def test_unreadable_files_raise_data_errors_naming_the_path(tmp_path: Path) -> None:
    cases = {
        "missing": (tmp_path / "absent.csv", "no data file"),
        "directory": (tmp_path, "not a file"),
        "suffix": (write(tmp_path, "data.txt", "a\n1\n"), "cannot tell the format"),
        "empty": (write(tmp_path, "empty.csv", ""), "is empty"),
        "header": (write(tmp_path, "header.csv", "a,b\n"), "no rows"),
        "ragged": (write(tmp_path, "ragged.csv", "a,b\n1,2\n3\n"), "cannot read"),
        "parquet": (write(tmp_path, "bad.parquet", "not parquet at all"), "cannot read"),
        "duplicate": (write(tmp_path, "dup.csv", "a,a\n1,2\n"), "duplicate column"),
    }
    for label, (path, message) in cases.items():
        with pytest.raises(DataError, match=message) as caught:
            read_frame(path)
        assert str(path) in str(caught.value), label


def test_unsupported_column_types_are_refused_with_advice(tmp_path: Path) -> None:
    table = pa.table({"when": pa.array([1, 2], type=pa.timestamp("s")), "v": [1.0, 2.0]})
    path = tmp_path / "times.parquet"
    pq.write_table(table, path)
    with pytest.raises(DataError, match="leave it out with columns="):
        read_frame(path)
    assert list(read_frame(path, columns=["v"])) == ["v"]
    assert read_frame(path, {"when": "categorical"})["when"][0].startswith("1970-01-01")


def test_files_feed_a_drift_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    header = "x,c\n"
    ref = header + "\n".join(f"{v},{'ab'[i % 2]}" for i, v in enumerate(rng.normal(size=200)))
    cur = header + "\n".join(f"{v},{'ab'[i % 2]}" for i, v in enumerate(rng.normal(2, size=200)))
    report = compare(
        read_frame(write(tmp_path, "ref.csv", ref)), read_frame(write(tmp_path, "cur.csv", cur))
    )
    assert report.features["x"].drifted and not report.features["c"].drifted
