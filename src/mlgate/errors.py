"""The mlgate exception tree.

Every error a user can meet derives from :class:`MlgateError`, and each message
says what was expected, what was found and what to do next. HTTP status codes do
not live here: the serving layer maps these classes to responses in one place.

::

    MlgateError
    ├── ConfigError            bad or missing settings, home not initialised
    ├── StoreError             the database cannot be reached or is on a newer schema
    ├── RegistryError
    │   ├── ModelNotFoundError
    │   ├── VersionNotFoundError
    │   ├── AliasNotFoundError
    │   ├── DuplicateVersionError
    │   ├── InvalidNameError
    │   ├── UnknownFlavorError   the file is no format mlgate can read
    │   ├── ArtifactError        corrupt or unloadable model file
    │   │   └── UntrustedArtifactError  skops file asks for types nobody trusted
    │   ├── ArtifactIntegrityError      stored bytes no longer match their sha256
    │   └── SignatureError       a signature override that does not fit
    ├── LedgerError
    │   ├── LedgerIntegrityError  the log, tree or a checkpoint fails verification
    │   ├── ProofError            a proof was asked for an index or size that does not exist
    │   └── LedgerKeyError        signing key missing, unreadable or of the wrong kind
    ├── ServingError
    │   ├── InvalidRequestError   malformed body, wrong datatype or shape, NaN where forbidden
    │   ├── EndpointNotFoundError no such endpoint, model or version
    │   ├── PayloadTooLargeError  body over the size limit
    │   ├── RateLimitedError      a client over its request rate
    │   ├── OverloadedError       queue full or deadline unreachable: shed, retry later
    │   ├── DeadlineExceededError a model did not answer in time and no fallback did
    │   ├── ModelFailedError      the model raised while predicting
    │   ├── PolicyError           an endpoint's traffic policy is invalid
    │   ├── UnauthorizedError     no or unknown token
    │   └── ForbiddenError        a token whose role may not do this
    └── MonitoringError
        ├── DataError             unreadable, empty or ill-typed data, or a missing column
        ├── ProfileError          a reference profile that is corrupt or does not fit the data
        └── QuarantinedBatchError a batch failed its data-quality checks and was set aside
    ├── ExperimentError
    │   ├── ExperimentInputError  summaries, weights, rewards or contexts that cannot be analysed
    │   └── CanaryError           a canary that cannot start, move or stop as asked
    ├── OptimizeError            a model that cannot be optimised as asked (or a missing extra)
    │   └── ConversionError      a converter failed or changed the model's answers
    └── LoopError                the retraining loop cannot go on as configured
        ├── LoopConfigError      a loop file, gate or trainer spec that cannot be used
        ├── TrainingError        the trainer raised, returned garbage or ran past its budget
        ├── GateError            a gate that cannot be evaluated on the data given
        └── LineageError         a request or version whose lineage cannot be found

The HTTP mapping of the serving family lives in ``mlgate.serving.http``.
"""

from __future__ import annotations

__all__ = [
    "AliasNotFoundError",
    "ArtifactError",
    "ArtifactIntegrityError",
    "CanaryError",
    "ConfigError",
    "ConversionError",
    "DataError",
    "DeadlineExceededError",
    "DuplicateVersionError",
    "EndpointNotFoundError",
    "ExperimentError",
    "ExperimentInputError",
    "ForbiddenError",
    "GateError",
    "InvalidNameError",
    "InvalidRequestError",
    "LedgerError",
    "LedgerIntegrityError",
    "LedgerKeyError",
    "LineageError",
    "LoopConfigError",
    "LoopError",
    "MlgateError",
    "ModelFailedError",
    "ModelNotFoundError",
    "MonitoringError",
    "OptimizeError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PolicyError",
    "ProfileError",
    "ProofError",
    "QuarantinedBatchError",
    "RateLimitedError",
    "RegistryError",
    "ServingError",
    "SignatureError",
    "StoreError",
    "TrainingError",
    "UnauthorizedError",
    "UnknownFlavorError",
    "UntrustedArtifactError",
    "VersionNotFoundError",
]


class MlgateError(Exception):
    """Root of every error mlgate raises on purpose."""


class ConfigError(MlgateError):
    """Settings are missing or contradict each other."""


class StoreError(MlgateError):
    """The state database cannot be used as asked."""


class RegistryError(MlgateError):
    """A model registry operation was refused."""


class ModelNotFoundError(RegistryError):
    pass


class VersionNotFoundError(RegistryError):
    pass


class AliasNotFoundError(RegistryError):
    pass


class DuplicateVersionError(RegistryError):
    pass


class InvalidNameError(RegistryError):
    pass


class UnknownFlavorError(RegistryError):
    pass


class ArtifactError(RegistryError):
    """A model file cannot be read as the flavor it claims to be."""


class UntrustedArtifactError(ArtifactError):
    """A skops file references types that were not declared trusted."""


class ArtifactIntegrityError(RegistryError):
    """Stored artifact bytes do not hash to the digest recorded at registration."""


class SignatureError(RegistryError):
    """An input/output signature is malformed or contradicts the model."""


class LedgerError(MlgateError):
    """A ledger operation was refused."""


class LedgerIntegrityError(LedgerError):
    """Verification found the log, its tree or a checkpoint altered.

    ``index`` names the first bad entry when the fault can be pinned to one.
    """

    def __init__(self, message: str, *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class ProofError(LedgerError):
    """A proof was requested for an index or tree size that does not exist."""


class LedgerKeyError(LedgerError):
    """The checkpoint signing key is missing, unreadable or does not match."""


class ServingError(MlgateError):
    """A request could not be served as asked."""


class InvalidRequestError(ServingError):
    """The request body or its tensors do not fit the protocol or the model's signature."""


class EndpointNotFoundError(ServingError):
    pass


class PayloadTooLargeError(ServingError):
    pass


class RateLimitedError(ServingError):
    def __init__(self, message: str, *, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class OverloadedError(ServingError):
    """Shed before compute: the queue is full, the deadline cannot be met, or a circuit is open.

    ``reason`` is a short label for metrics: ``queue``, ``deadline``, ``circuit_open``,
    ``overload`` (refused at the door), ``loading`` or ``shutdown``.
    """

    def __init__(self, message: str, *, retry_after_s: float = 1.0, reason: str = "queue") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.reason = reason


class DeadlineExceededError(ServingError):
    """No answer by the deadline.

    ``model_ran_s`` and ``model_had_s`` are set when the request's own model call had
    begun: how long it ran, and how much of the deadline was left when it began. The
    circuit breaker needs them to tell a slow model from a busy server. ``model_call``
    numbers that call (per batcher): every request of one slow batch misses together,
    and the breaker must count the call once, not once per request.
    """

    def __init__(
        self,
        message: str,
        *,
        model_ran_s: float | None = None,
        model_had_s: float | None = None,
        model_call: int | None = None,
    ) -> None:
        super().__init__(message)
        self.model_ran_s = model_ran_s
        self.model_had_s = model_had_s
        self.model_call = model_call


class ModelFailedError(ServingError):
    pass


class PolicyError(ServingError):
    pass


class UnauthorizedError(ServingError):
    pass


class ForbiddenError(ServingError):
    pass


class MonitoringError(MlgateError):
    """A drift, data-quality or monitoring operation could not be carried out."""


class DataError(MonitoringError):
    """Input data is unreadable, empty, ill-typed or lacks a column the check needs."""


class ProfileError(MonitoringError):
    """A reference profile is corrupt, of an unknown format, or does not fit the data."""


class QuarantinedBatchError(MonitoringError):
    """A batch failed its data-quality checks; it was set aside, not used.

    ``reasons`` lists the failed checks; ``path`` is where the batch was quarantined.
    """

    def __init__(
        self, message: str, *, reasons: tuple[str, ...] = (), path: str | None = None
    ) -> None:
        super().__init__(message)
        self.reasons = reasons
        self.path = path


class ExperimentError(MlgateError):
    """An experiment, bandit or canary operation could not be carried out."""


class ExperimentInputError(ExperimentError):
    """Summaries, weights, rewards or contexts that cannot be analysed as given."""


class CanaryError(ExperimentError):
    """A canary that cannot start, advance or stop as asked (say which and why)."""


class OptimizeError(MlgateError):
    """A model cannot be optimised as asked: unsupported kind, bad sample, missing extra."""


class ConversionError(OptimizeError):
    """A converter failed, or its output no longer gives the parent's answers."""


class LoopError(MlgateError):
    """The retraining loop cannot go on as configured (say which step and why)."""


class LoopConfigError(LoopError):
    """A loop file, gate or trainer specification that cannot be used as written."""


class TrainingError(LoopError):
    """The trainer raised, returned something that cannot be registered, or ran too long."""


class GateError(LoopError):
    """A validation gate that cannot be evaluated on the data given (not a failed gate)."""


class LineageError(LoopError):
    """A request or model version whose lineage cannot be found."""
