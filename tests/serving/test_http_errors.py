"""Every mlgate error class has a deliberate HTTP status, headers and body."""

from __future__ import annotations

import logging

import orjson
import pytest

from mlgate import errors
from mlgate.serving.http import error_body, error_headers, status_for

# One row per class in mlgate.errors: adding a class without deciding its status fails
# test_every_error_class_is_in_the_table.
STATUS = {
    "MlgateError": 500,
    "ConfigError": 500,
    "StoreError": 503,
    "RegistryError": 400,
    "ModelNotFoundError": 404,
    "VersionNotFoundError": 404,
    "AliasNotFoundError": 404,
    "DuplicateVersionError": 409,
    "InvalidNameError": 400,
    "UnknownFlavorError": 400,
    "ArtifactError": 400,
    "UntrustedArtifactError": 400,
    "ArtifactIntegrityError": 500,
    "SignatureError": 400,
    "LedgerError": 500,
    "LedgerIntegrityError": 500,
    "ProofError": 400,
    "LedgerKeyError": 500,
    "ServingError": 500,
    "InvalidRequestError": 400,
    "EndpointNotFoundError": 404,
    "PayloadTooLargeError": 413,
    "RateLimitedError": 429,
    "OverloadedError": 503,
    "DeadlineExceededError": 504,
    "ModelFailedError": 500,
    "PolicyError": 400,
    "UnauthorizedError": 401,
    "ForbiddenError": 403,
    "MonitoringError": 500,
    "DataError": 400,
    "ProfileError": 500,
    "QuarantinedBatchError": 422,
    "ExperimentError": 500,
    "ExperimentInputError": 400,
    "CanaryError": 409,
    "OptimizeError": 400,
    "LoopConfigError": 400,
    "LineageError": 404,
    "GateError": 422,
    "TrainingError": 422,
    "LoopError": 409,
    "ConversionError": 400,
}

# Server-side faults whose text may hold URLs or paths: the client sees a generic body.
HIDDEN = {
    "MlgateError",
    "ConfigError",
    "StoreError",
    "ArtifactIntegrityError",
    "LedgerError",
    "LedgerIntegrityError",
    "LedgerKeyError",
    "MonitoringError",
    "ProfileError",
    "ExperimentError",
}

SECRET = "postgresql://admin:hunter2@db.internal/prod"


def make(name: str) -> BaseException:
    cls = getattr(errors, name)
    assert isinstance(cls, type) and issubclass(cls, BaseException)
    return cls(f"{name} says {SECRET}")


def test_every_error_class_is_in_the_table() -> None:
    assert set(STATUS) == {*errors.__all__}


@pytest.mark.parametrize("name", sorted(STATUS))
def test_status_headers_and_body(name: str) -> None:
    error = make(name)
    assert status_for(error) == STATUS[name]
    message = orjson.loads(error_body(error))["error"]
    if name in HIDDEN:
        assert SECRET not in message
        assert message.startswith("internal error (logged with id ")
    else:
        assert message == str(error)
    expected_headers = {
        "RateLimitedError": {"Retry-After": "1"},
        "OverloadedError": {"Retry-After": "1"},
        "UnauthorizedError": {"WWW-Authenticate": "Bearer"},
    }.get(name, {})
    assert error_headers(error) == expected_headers


@pytest.mark.parametrize(
    ("seconds", "header"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (2.5, "3"), (30.0, "30"), (-4.0, "1")]
    + [(float("nan"), "1"), (float("inf"), "1")],
)
def test_retry_after_is_whole_seconds_and_at_least_one(seconds: float, header: str) -> None:
    for error in (
        errors.RateLimitedError("slow down", retry_after_s=seconds),
        errors.OverloadedError("queue full", retry_after_s=seconds),
    ):
        assert error_headers(error) == {"Retry-After": header}


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(f"boom {SECRET}"),
        KeyError(SECRET),
        ValueError(f"{SECRET}\nTraceback (most recent call last)"),
        MemoryError(),
    ],
)
def test_unknown_exceptions_are_a_generic_500_logged_with_an_id(
    error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    try:
        raise error
    except BaseException as raised:  # a real traceback, as the server would have
        with caplog.at_level(logging.ERROR, logger="mlgate.serving.http"):
            raw = error_body(raised)
    assert status_for(error) == 500
    assert error_headers(error) == {}
    message = orjson.loads(raw)["error"]
    assert SECRET not in message and "Traceback" not in message and "boom" not in message
    assert message.startswith("internal error (logged with id ")
    error_id = message.split("logged with id ")[1].split(")")[0]
    (record,) = caplog.records
    assert error_id in record.getMessage()
    assert record.exc_info is not None and record.exc_info[1] is error


def test_each_generic_body_has_its_own_id() -> None:
    first = orjson.loads(error_body(RuntimeError("a")))["error"]
    second = orjson.loads(error_body(RuntimeError("a")))["error"]
    assert first != second


def test_an_empty_message_still_says_what_happened() -> None:
    assert orjson.loads(error_body(errors.EndpointNotFoundError()))["error"] == (
        "EndpointNotFoundError"
    )
