"""Ledger entries are RFC 8785 canonical JSON of typed, digest-only events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from mlgate.errors import LedgerError
from mlgate.ledger.auditor import VerificationFailure, check_canonical
from mlgate.ledger.events import LedgerEvent, digest_json, format_time

NOW = datetime(2026, 11, 27, 3, 34, 21, 123456, tzinfo=UTC)
words = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
scalars = st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | words


@given(
    actor=words.filter(bool),
    subject=st.dictionaries(words, scalars, max_size=4),
    attributes=st.dictionaries(words, scalars, max_size=4),
)
def test_entries_round_trip_and_are_canonical(
    actor: str, subject: dict[str, object], attributes: dict[str, object]
) -> None:
    event = LedgerEvent(
        kind="model.registered",
        actor=actor,
        subject=subject,  # type: ignore[arg-type]
        attributes=attributes,  # type: ignore[arg-type]
        digests={"artifact": "sha256:" + "0" * 64},
    )
    data = event.to_entry(NOW)
    document = json.loads(data)
    assert document == {
        "v": 1,
        "kind": "model.registered",
        "time": "2026-11-27T03:34:21.123456Z",
        "actor": actor,
        "subject": subject,
        "digests": {"artifact": "sha256:" + "0" * 64},
        "attributes": attributes,
    }
    assert rfc8785.dumps(document) == data
    check_canonical(0, data)  # the offline verifier's stdlib check agrees with rfc8785


def test_keys_sort_by_utf16_code_units_as_rfc8785_requires() -> None:
    """U+E000 sorts after U+10000 by code point but before it in UTF-16: RFC 8785 wins."""
    data = LedgerEvent(kind="a.b", actor="x", attributes={"\ue000": 1, "\U00010000": 2}).to_entry(
        NOW
    )
    assert data.index("\U00010000".encode()) < data.index("\ue000".encode())
    check_canonical(0, data)
    swapped = data.replace("\U00010000".encode(), b"@").replace(
        "\ue000".encode(), "\U00010000".encode()
    )
    with pytest.raises(VerificationFailure, match="canonical"):
        check_canonical(0, swapped.replace(b"@", "\ue000".encode()))


def test_floats_are_not_canonical_ledger_content() -> None:
    with pytest.raises(VerificationFailure, match="floating-point"):
        check_canonical(0, b'{"actor":"x","kind":"a.b","time":"t","v":1.5}')


def test_non_canonical_bytes_are_caught_by_the_offline_check() -> None:
    good = LedgerEvent(kind="a.b", actor="x").to_entry(NOW)
    spaced = json.dumps(json.loads(good), indent=1).encode()
    with pytest.raises(VerificationFailure, match="canonical"):
        check_canonical(4, spaced)
    with pytest.raises(VerificationFailure, match="lacks one of the fields"):
        check_canonical(4, b'{"v":1}')
    with pytest.raises(VerificationFailure, match="not valid JSON"):
        check_canonical(4, b"{")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "Registered"}, "malformed"),
        ({"kind": "model"}, "malformed"),
        ({"actor": ""}, "actor"),
        ({"digests": {"artifact": "abc"}}, "sha256:<64 hex>"),
        ({"digests": {"artifact": "sha256:" + "A" * 64}}, "sha256:<64 hex>"),
        ({"attributes": {"auc": 0.9}}, "float"),
        ({"subject": {"auc": 0.9}}, "float"),
        ({"subject": {"big": 2**53}}, "exact integer range"),
    ],
)
def test_malformed_events_are_refused(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"kind": "model.registered", "actor": "a", **kwargs}
    with pytest.raises(LedgerError, match=message):
        LedgerEvent(**arguments)  # type: ignore[arg-type]


def test_times_are_utc_and_fixed_width() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 2, 5, 0, tzinfo=plus_two)) == (
        "2026-01-02T03:00:00.000000Z"
    )
    with pytest.raises(LedgerError, match="timezone-aware"):
        format_time(datetime(2026, 1, 2))


def test_digests_do_not_depend_on_key_order() -> None:
    assert digest_json({"a": 1, "b": [1, 2]}) == digest_json({"b": [1, 2], "a": 1})
    assert digest_json({"a": 1}) != digest_json({"a": 2})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | words,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(words, children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_the_fast_encoder_writes_what_rfc8785_writes(value: object) -> None:
    from mlgate.ledger.events import canonical_json

    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.IntegerDomainError, rfc8785.FloatDomainError, UnicodeEncodeError):
        return  # outside JSON's exact domain: refused upstream, not a fast-path question
    assert canonical_json(value) == expected
