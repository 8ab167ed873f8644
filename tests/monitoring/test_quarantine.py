"""mlgate.monitoring.quality.quarantine: failed batches are set aside atomically, with reasons."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from mlgate.errors import DataError, QuarantinedBatchError
from mlgate.monitoring.quality import QualityProfile
from mlgate.monitoring.quality.quarantine import Quarantine

FIXED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def frame(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    city = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    city[0] = None
    x = rng.normal(0, 1, n)
    x[1] = np.nan
    return {"x": x, "city": city}


@pytest.fixture(scope="module")
def profile() -> QualityProfile:
    return QualityProfile.fit(frame(1000, seed=0))


@pytest.fixture
def quarantine(tmp_path: Path) -> Quarantine:
    return Quarantine(tmp_path / "q", clock=lambda: FIXED)


def poisoned(seed: int = 1) -> dict[str, np.ndarray]:
    batch = frame(200, seed)
    batch["x"][:20] = 1e9
    return batch


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_file())


def test_a_passing_batch_is_returned_untouched(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    batch = frame(200, seed=1)
    assert quarantine.accept_or_quarantine(profile, batch, "clean.csv") is batch
    assert quarantine.list() == ()
    assert files(quarantine.folder) == []


def test_a_failing_batch_is_written_with_reasons_and_raises(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    with pytest.raises(QuarantinedBatchError) as caught:
        quarantine.accept_or_quarantine(profile, poisoned(), "upload/day 1.csv")
    error = caught.value
    assert error.reasons and error.reasons[0].startswith("out_of_range[x]: 20 of 200")
    assert error.path is not None
    (batch,) = quarantine.list()
    assert Path(error.path) == batch.data_path
    assert batch.id.startswith("20260301T123000000000Z-upload-day-1.csv-")
    assert (batch.source, batch.n_rows, batch.reasons) == ("upload/day 1.csv", 200, error.reasons)
    assert batch.quarantined_at == FIXED.isoformat()
    # Both files complete, nothing temporary left behind.
    assert files(quarantine.folder) == sorted([f"{batch.id}.json", f"{batch.id}.parquet"])
    assert hashlib.sha256(batch.data_path.read_bytes()).hexdigest() == batch.sha256
    record = json.loads((quarantine.folder / f"{batch.id}.json").read_text())
    assert record["report"]["passed"] is False
    assert record["report"]["findings"][0]["check"] == "out_of_range"


def test_release_is_the_only_way_back_and_returns_the_same_batch(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    original = poisoned()
    with pytest.raises(QuarantinedBatchError):
        quarantine.accept_or_quarantine(profile, original, "s3://bucket/key")
    (batch,) = quarantine.list()
    restored = quarantine.release(batch.id)
    assert list(restored) == ["x", "city"]
    np.testing.assert_array_equal(restored["x"], original["x"])  # NaN included
    assert (
        restored["city"].dtype == object and restored["city"].tolist() == original["city"].tolist()
    )
    assert quarantine.list() == ()
    released = quarantine.folder / "released"
    assert files(released) == sorted([f"{batch.id}.json", f"{batch.id}.parquet"])
    assert "released_at" in json.loads((released / f"{batch.id}.json").read_text())
    with pytest.raises(DataError, match="no quarantined batch"):
        quarantine.release(batch.id)


def test_mixed_types_and_empty_batches_are_stored_and_come_back(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    mixed = frame(50, seed=2)
    x = mixed["x"].astype(object)
    x[[2, 3]] = ["oops", None]
    mixed["x"] = x
    mixed["when"] = np.array([1, "two", 3.5, True, None] * 10, dtype=object)
    with pytest.raises(QuarantinedBatchError) as caught:
        quarantine.accept_or_quarantine(profile, mixed, "mixed")
    assert any(r.startswith("wrong_type[x]") for r in caught.value.reasons)
    empty = {"x": np.zeros(0), "city": np.zeros(0, dtype=object)}
    with pytest.raises(QuarantinedBatchError, match="empty_batch"):
        quarantine.accept_or_quarantine(profile, empty, "empty")
    by_source = {b.source: b for b in quarantine.list()}
    restored = quarantine.release(by_source["mixed"].id)
    assert restored["x"][2:4].tolist() == ["oops", None]
    assert restored["when"].tolist() == mixed["when"].tolist()
    assert quarantine.release(by_source["empty"].id)["x"].shape == (0,)


def test_a_batch_altered_in_quarantine_is_not_released(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    with pytest.raises(QuarantinedBatchError):
        quarantine.accept_or_quarantine(profile, poisoned(), "src")
    (batch,) = quarantine.list()
    batch.data_path.write_bytes(batch.data_path.read_bytes() + b"x")
    with pytest.raises(DataError, match="sha256"):
        quarantine.release(batch.id)
    assert quarantine.list() == (batch,)


def test_a_failed_write_leaves_no_partial_files(
    profile: QualityProfile, quarantine: Quarantine, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_replace = os.replace
    calls: list[str] = []

    def failing_second_replace(src: str, dst: str) -> None:
        calls.append(dst)
        if len(calls) == 2:
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_second_replace)
    with pytest.raises(OSError, match="disk full"):
        quarantine.accept_or_quarantine(profile, poisoned(), "src")
    assert files(quarantine.folder) == []
    assert quarantine.list() == ()


def test_malformed_frames_and_ids_are_refused(
    profile: QualityProfile, quarantine: Quarantine
) -> None:
    with pytest.raises(DataError, match="same length"):
        quarantine.accept_or_quarantine(profile, {"x": np.zeros(2), "city": np.zeros(3)}, "s")
    assert files(quarantine.folder) == []
    with pytest.raises(DataError, match="not a quarantine id"):
        quarantine.release("../../etc/passwd")
    (quarantine.folder / "junk.json").write_text("{not json")
    assert quarantine.list() == ()
