"""The one place where mlgate errors become HTTP status codes, headers and bodies.

Keeping the table here, rather than on the exception classes, lets the CLI and
library raise the same errors without caring about HTTP, and lets one test walk
every class in :mod:`mlgate.errors` so a new class cannot ship unmapped.

Decisions worth knowing:

* ``DeadlineExceededError`` is 504, not 503. Load shedding (``OverloadedError``)
  is 503 with ``Retry-After`` because the server refused before doing any work; a
  deadline miss means a model was tried and was too slow, which is what 504
  says. Retry policies of common clients and proxies (urllib3 ``Retry``, Envoy's
  ``gateway-error``) treat 502/503/504 alike, so neither loses retries.
* Messages of client-facing errors (every ``ServingError`` and registry lookups)
  are returned as written. Errors that describe the server's own state
  (``ConfigError``, ``StoreError``, ledger integrity or keys, damaged artifacts,
  anything unknown) may carry database URLs or paths, so their body is a generic
  message with an id that is logged together with the traceback.
"""

from __future__ import annotations

import logging
import math
import uuid

from mlgate import errors
from mlgate.serving.protocol import encode_error

__all__ = ["error_body", "error_headers", "status_for"]

logger = logging.getLogger(__name__)

# Checked in order with isinstance, so subclasses must come before their bases.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (errors.InvalidRequestError, 400),
    (errors.PolicyError, 400),
    (errors.UnauthorizedError, 401),
    (errors.ForbiddenError, 403),
    (errors.EndpointNotFoundError, 404),
    (errors.PayloadTooLargeError, 413),
    (errors.RateLimitedError, 429),
    (errors.ModelFailedError, 500),
    (errors.OverloadedError, 503),
    (errors.DeadlineExceededError, 504),
    (errors.ServingError, 500),  # a bare ServingError: the server could not serve, say so
    (errors.ModelNotFoundError, 404),
    (errors.VersionNotFoundError, 404),
    (errors.AliasNotFoundError, 404),
    (errors.DuplicateVersionError, 409),
    (errors.ArtifactIntegrityError, 500),  # stored bytes changed: the server's fault
    (errors.RegistryError, 400),  # bad names, files, flavors, signatures, trusted types
    (errors.ProofError, 400),  # an index or tree size beyond the log
    (errors.LedgerError, 500),
    (errors.StoreError, 503),  # the database is unreachable or on another schema
    (errors.ConfigError, 500),
    (errors.DataError, 400),  # data a client sent for a drift or quality check
    (errors.QuarantinedBatchError, 422),  # well-formed, refused by the quality checks
    (errors.MonitoringError, 500),  # a profile on the server's disk is unusable
    (errors.ExperimentInputError, 400),  # summaries or rewards a client sent
    (errors.CanaryError, 409),  # a canary already running, none to abort, ...
    (errors.ExperimentError, 500),
    (errors.OptimizeError, 400),  # the model or sample a client named cannot be optimised
    (errors.LoopConfigError, 400),  # a loop file, gate or trainer spec a client sent
    (errors.LineageError, 404),  # no such request or version to trace
    (errors.GateError, 422),  # a gate that cannot be evaluated on the data given
    (errors.TrainingError, 422),  # the trainer failed on the data given
    (errors.LoopError, 409),  # a run not in the state the operation needs
)

# 5xx errors outside this tuple describe server internals and get a generic body.
_SAFE_SERVER_ERRORS: tuple[type[BaseException], ...] = (errors.ServingError,)


def status_for(error: BaseException) -> int:
    """Return the HTTP status for ``error``; anything unknown is a 500."""
    for cls, status in _STATUS:
        if isinstance(error, cls):
            return status
    return 500


def error_headers(error: BaseException) -> dict[str, str]:
    """Headers that tell clients what to do next: when to retry, how to authenticate."""
    if isinstance(error, errors.RateLimitedError | errors.OverloadedError):
        seconds = error.retry_after_s
        # Retry-After takes whole seconds; round up and never say 0 (a retry storm).
        whole = math.ceil(seconds) if math.isfinite(seconds) and seconds > 1 else 1
        return {"Retry-After": str(whole)}
    if isinstance(error, errors.UnauthorizedError):
        return {"WWW-Authenticate": "Bearer"}
    return {}


def error_body(error: BaseException) -> bytes:
    """The OIP ``{"error": message}`` body; internal faults never leak their text."""
    if isinstance(error, errors.MlgateError) and (
        status_for(error) < 500 or isinstance(error, _SAFE_SERVER_ERRORS)
    ):
        return encode_error(str(error) or type(error).__name__)
    error_id = uuid.uuid4().hex[:16]
    logger.error("internal error %s while serving a request", error_id, exc_info=error)
    return encode_error(
        f"internal error (logged with id {error_id}); retry later, or give the id "
        f"to the server's operator."
    )
