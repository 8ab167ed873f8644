"""Frames that keep their categorical codes, and compare()'s threads: same answers, always."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlgate.errors import DataError
from mlgate.monitoring._columns import category_counts
from mlgate.monitoring._encoded import CategoryCodes, EncodedFrame, codes_of
from mlgate.monitoring.drift import compare, compare_profile
from mlgate.monitoring.drift._pool import run_in_order
from mlgate.monitoring.profile import fit_profile
from mlgate.monitoring.tabular import _as_categorical, read_frame


def _table(rng: np.random.Generator, n: int) -> pa.Table:
    labels = np.array(["red", "green", "blue", "teal"], dtype=object)
    text = labels[rng.integers(0, 4, n)].tolist()
    text = [None if i % 11 == 0 else t for i, t in enumerate(text)]
    return pa.table(
        {
            "text": pa.array(text, type=pa.string()),
            "dict": pa.array(text).dictionary_encode(),
            "flag": pa.array([None if i % 7 == 0 else bool(i % 3) for i in range(n)]),
            "code": pa.array(rng.integers(0, 4, n)),
            "x": pa.array(rng.normal(size=n)),
        }
    )


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_codes_count_what_the_objects_hold(tmp_path: Path, fmt: str) -> None:
    table = _table(np.random.default_rng(1), 3_000)
    path = tmp_path / f"data.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path, row_group_size=700)  # several chunks, several dictionaries
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(table.drop_columns(["dict"]), path)
    frame = read_frame(path, {"code": "categorical"})
    assert isinstance(frame, EncodedFrame)
    for name, values in frame.items():
        codes = frame.codes_of(name)
        if values.dtype == object:
            assert codes is not None and codes.values is values
            assert codes.counts() == category_counts(name, values)
            assert all(v is None or isinstance(v, str) for v in set(values.tolist()))
        else:
            assert codes is None


def test_codes_are_trusted_only_for_the_unchanged_array(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    pq.write_table(_table(np.random.default_rng(2), 500), path)
    frame = read_frame(path)
    values = frame["text"]
    with pytest.raises(ValueError, match="read-only"):
        values[0] = "purple"
    assert codes_of(frame, "text") is not None
    assert codes_of(dict(frame), "text") is None  # a plain dict keeps no codes
    sliced = EncodedFrame({"text": values[:10]}, frame.codes)
    assert sliced.codes_of("text") is None
    frame["dict"] = frame["dict"].copy()
    assert frame.codes_of("dict") is None
    values.flags.writeable = True
    assert frame.codes_of("text") is None
    values[0] = "purple"
    counts, _ = category_counts("text", values)
    assert counts["purple"] == 1


def test_a_dictionary_with_a_null_an_unused_label_and_a_label_twice() -> None:
    # Files cannot hold such a dictionary, but an Arrow table handed over in memory can.
    odd = pa.DictionaryArray.from_arrays(
        pa.array([0, 1, 2, 4, 0, None, 4], type=pa.int32()), pa.array(["a", None, "b", "u", "a"])
    )
    codes = _as_categorical(pa.chunked_array([odd, odd]))
    assert codes.values.tolist() == odd.to_pylist() * 2
    assert codes.counts() == ({"a": 8, "b": 2}, 4)
    assert codes.counts() == category_counts("odd", codes.values)
    # int8 indices into 128 labels: the missing code, 128, does not fit an int8.
    labels = pa.array([f"l{i}" for i in range(128)])
    narrow = pa.DictionaryArray.from_arrays(pa.array([0, 127, None], type=pa.int8()), labels)
    assert _as_categorical(pa.chunked_array([narrow])).counts() == ({"l0": 1, "l127": 1}, 1)


def test_codes_build_spells_labels_and_missing() -> None:
    built = CategoryCodes.build(np.array([0, 2, 1, 3, 0]), ("x", None, "y"))
    assert built.values.tolist() == ["x", "y", None, None, "x"]
    assert built.counts() == ({"x": 2, "y": 1}, 2)
    assert not built.values.flags.writeable


def _frames(n: int, seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    ref: dict[str, np.ndarray] = {f"x{i}": rng.normal(size=n) for i in range(6)}
    cur: dict[str, np.ndarray] = {f"x{i}": rng.normal(0.02 * i, size=n) for i in range(6)}
    ref["ties"], cur["ties"] = rng.poisson(3, n).astype(float), rng.poisson(3.2, n).astype(float)
    labels = np.array(["a", "b", "c", None], dtype=object)
    ref["c"], cur["c"] = labels[rng.integers(0, 4, n)], labels[rng.integers(0, 3, n)]
    return ref, cur


def test_threads_give_the_report_one_thread_gives() -> None:
    ref, cur = _frames(60_000, 3)  # 120,000 values: compare starts its own threads
    own = compare(ref, cur).to_json()
    with ThreadPoolExecutor(max_workers=1) as one, ThreadPoolExecutor(max_workers=3) as three:
        assert compare(ref, cur, executor=one).to_json() == own
        assert compare(ref, cur, executor=three).to_json() == own
        profile = fit_profile(ref)
        assert (
            compare_profile(profile, cur, executor=three).to_json()
            == compare_profile(profile, cur).to_json()
        )
    assert list(own["features"]) == list(ref)


def test_the_first_failing_feature_raises_as_in_a_loop() -> None:
    ref, cur = _frames(60_000, 4)
    cur["x1"] = np.array(["oops"] * 60_000, dtype=object)
    cur["x4"] = np.array([b"bytes"] * 60_000, dtype=object)
    with pytest.raises(DataError, match="'x1'"):
        compare(ref, cur)


def test_run_in_order_keeps_order_and_the_earliest_error() -> None:
    def fail(label: str) -> int:
        raise KeyError(label)

    jobs = [lambda i=i: i * i for i in range(20)]
    assert run_in_order(jobs) == [i * i for i in range(20)]
    assert run_in_order(jobs, parallel=False) == [i * i for i in range(20)]
    broken = [*jobs[:5], lambda: fail("first"), *jobs[5:10], lambda: fail("second")]
    for parallel in (True, False):
        with pytest.raises(KeyError, match="first"):
            run_in_order(broken, parallel=parallel)
    assert math.isclose(run_in_order([lambda: 0.5])[0], 0.5)
