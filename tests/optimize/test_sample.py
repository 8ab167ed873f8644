"""load_sample: CSV and Parquet files to checked rows and labels, with clear refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.errors import OptimizeError
from mlgate.optimize import load_sample
from mlgate.registry.signature import Signature, TensorSpec

SIGNATURE = Signature(
    inputs=(TensorSpec("input", "FP64", (-1, 2)),),
    outputs=(TensorSpec("label", "INT64", (-1,)),),
)


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sample.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_with_label_column(tmp_path: Path) -> None:
    x, y = load_sample(_csv(tmp_path, "a,y,b\n1,0,2\n3,1,4\n"), SIGNATURE, "y")
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])
    assert y is not None and y.tolist() == [0, 1]


def test_parquet_with_feature_names_choosing_the_order(tmp_path: Path) -> None:
    path = tmp_path / "sample.parquet"
    pq.write_table(pa.table({"b": [2.0, 4.0], "a": [1.0, 3.0], "note": ["x", "y"]}), path)
    x, y = load_sample(path, SIGNATURE, feature_names=["a", "b"])
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])
    assert y is None


def test_text_labels_are_kept_as_text(tmp_path: Path) -> None:
    _, y = load_sample(_csv(tmp_path, "a,b,y\n1,2,no\n3,4,yes\n"), SIGNATURE, "y")
    assert y is not None and list(y) == ["no", "yes"]


@pytest.mark.parametrize(
    ("text", "label", "message"),
    [
        ("a,b,c\n1,2,3\n", None, r"shape \(1, 3\); expected \[rows, 2\]"),
        ("a,b\n1,2\n", "y", "no label column 'y'"),
        ("a,b\n1,\n", None, "NaN or infinite value"),
        ("a,b\n1,x\n", None, "cannot read the sample"),
        ("a,b,y\n1,2,\n", "y", "label column 'y' .* empty in 1 row"),
    ],
)
def test_bad_files_are_refused_with_the_reason(
    tmp_path: Path, text: str, label: str | None, message: str
) -> None:
    with pytest.raises(OptimizeError, match=message):
        load_sample(_csv(tmp_path, text), SIGNATURE, label)


def test_missing_feature_names_are_listed(tmp_path: Path) -> None:
    with pytest.raises(OptimizeError, match=r"lacks the model's feature column\(s\) \['c'\]"):
        load_sample(_csv(tmp_path, "a,b\n1,2\n"), SIGNATURE, feature_names=["a", "c"])


def test_missing_file_is_an_optimize_error(tmp_path: Path) -> None:
    with pytest.raises(OptimizeError, match="no data file"):
        load_sample(tmp_path / "absent.csv", SIGNATURE)
