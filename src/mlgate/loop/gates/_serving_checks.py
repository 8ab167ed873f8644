"""Checks on what serving the candidate would cost and break: latency, size, signature.

A missing measurement fails its check rather than passing it: a budget nobody measured
is not a budget met. Only comparisons with a champion that does not exist yet pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlgate.loop.gates._model_checks import NO_CHAMPION
from mlgate.loop.gates.inputs import GateInputs
from mlgate.loop.gates.report import CheckResult
from mlgate.loop.gates.spec import LatencyCheck, SignatureCheck, SizeCheck
from mlgate.registry.signature import Signature, TensorSpec

__all__ = ["check_latency", "check_signature", "check_size"]

_BYTES_PER_MB = 1_000_000


def check_latency(check: LatencyCheck, path: str, inputs: GateInputs) -> CheckResult:
    kind = check.KIND
    p99, why = _p99(inputs.candidate_latency_ms, "candidate")
    if p99 is None:
        return CheckResult(path, kind, False, why, None, check.p99_ms)
    details: dict[str, float | int | None] = {
        "p99_ms": p99,
        "p50_ms": float(np.percentile(np.asarray(inputs.candidate_latency_ms, float), 50)),
        "samples": len(inputs.candidate_latency_ms),
    }
    problems, notes = [], [f"the candidate's p99 latency is {p99:.4g} ms"]
    if check.p99_ms is not None:
        if p99 > check.p99_ms:
            problems.append(f"above the budget of {check.p99_ms:g} ms")
        else:
            notes.append(f"within the budget of {check.p99_ms:g} ms")
    threshold = check.p99_ms
    if check.max_increase_ms is not None:
        if inputs.champion is None:
            notes.append(NO_CHAMPION.replace(", so this passes", " for max_increase_ms"))
        else:
            base, why = _p99(inputs.champion_latency_ms, "champion")
            if base is None:
                problems.append(why)
            else:
                increase = p99 - base
                details.update(champion_p99_ms=base, increase_ms=increase)
                threshold = threshold if threshold is not None else base + check.max_increase_ms
                text = f"{increase:+.4g} ms against the champion's p99 of {base:.4g} ms"
                if increase > check.max_increase_ms:
                    problems.append(f"{text}, more than max_increase_ms {check.max_increase_ms:g}")
                else:
                    notes.append(f"{text}, within max_increase_ms {check.max_increase_ms:g}")
    if problems:
        message = "; ".join([notes[0], *problems]) + "; make the model smaller or faster"
        return CheckResult(path, kind, False, message, p99, threshold, details)
    return CheckResult(path, kind, True, "; ".join(notes), p99, threshold, details)


def _p99(samples: Sequence[float], role: str) -> tuple[float | None, str]:
    """p99 of single-row latencies (numpy's linear percentile), or why there is none."""
    try:
        values = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"the {role}'s latencies are not numbers; pass milliseconds per row"
    if values.ndim != 1 or len(values) == 0:
        return None, (
            f"the {role}'s latency was not measured; the loop must time single-row "
            "predictions before gating"
        )
    if not np.isfinite(values).all() or (values < 0).any():
        return None, f"the {role}'s latencies include NaN, infinite or negative values"
    return float(np.percentile(values, 99)), ""


def check_size(check: SizeCheck, path: str, inputs: GateInputs) -> CheckResult:
    size = inputs.candidate_size_bytes
    if size is None:
        message = "the candidate's artifact size was not given; the loop must pass its bytes"
        return CheckResult(path, check.KIND, False, message, None, check.max_mb)
    mb = size / _BYTES_PER_MB
    details = {"bytes": size}
    if mb > check.max_mb:
        message = (
            f"the candidate's artifact is {mb:.4g} MB, above the budget of {check.max_mb:g} MB; "
            "shrink or compress the model (mlgate optimize) or raise max_mb"
        )
        return CheckResult(path, check.KIND, False, message, mb, check.max_mb, details)
    message = f"the candidate's artifact is {mb:.4g} MB, within {check.max_mb:g} MB"
    return CheckResult(path, check.KIND, True, message, mb, check.max_mb, details)


def check_signature(check: SignatureCheck, path: str, inputs: GateInputs) -> CheckResult:
    endpoint, candidate = inputs.endpoint_signature, inputs.candidate_signature
    if endpoint is None:
        message = "no endpoint signature to compare with (first model), so this passes"
        return CheckResult(path, check.KIND, True, message, skipped=True)
    if candidate is None:
        message = "the candidate's signature was not given; the loop must pass the registered one"
        return CheckResult(path, check.KIND, False, message)
    problems = signature_problems(candidate, endpoint, check.outputs)
    details = {"problems": len(problems)}
    if problems:
        listed = "; ".join(problems)
        message = (
            f"the candidate would break the endpoint's clients: {listed}; keep the served "
            "inputs and outputs, or serve it on a new endpoint"
        )
        return CheckResult(path, check.KIND, False, message, float(len(problems)), 0.0, details)
    message = "the candidate takes the endpoint's inputs and returns the outputs clients read"
    return CheckResult(path, check.KIND, True, message, 0.0, 0.0, details)


def signature_problems(
    candidate: Signature, endpoint: Signature, outputs: tuple[str, ...] | None
) -> list[str]:
    """Why requests the endpoint serves today would fail or change with the candidate.

    Inputs must match by name and datatype, and the candidate must accept every shape the
    endpoint accepts: each of its dimensions is dynamic (-1) or equal to the endpoint's.
    Each output clients read must still exist with the same datatype.
    """
    problems: list[str] = []
    cand_in = {t.name: t for t in candidate.inputs}
    end_in = {t.name: t for t in endpoint.inputs}
    for name in sorted(end_in.keys() - cand_in.keys()):
        problems.append(f"input {name!r} is gone")
    for name in sorted(cand_in.keys() - end_in.keys()):
        problems.append(f"input {name!r} is new, and clients do not send it")
    for name in sorted(end_in.keys() & cand_in.keys()):
        problems.extend(_tensor_problems("input", cand_in[name], end_in[name], shapes=True))
    cand_out = {t.name: t for t in candidate.outputs}
    end_out = {t.name: t for t in endpoint.outputs}
    for name in outputs if outputs is not None else tuple(end_out):
        if name not in end_out:
            problems.append(f"output {name!r} is listed under outputs but the endpoint has none")
        elif name not in cand_out:
            problems.append(f"output {name!r} is gone")
        else:
            problems.extend(_tensor_problems("output", cand_out[name], end_out[name], shapes=False))
    return problems


def _tensor_problems(side: str, cand: TensorSpec, end: TensorSpec, *, shapes: bool) -> list[str]:
    found = []
    if cand.datatype != end.datatype:
        found.append(f"{side} {end.name!r} is {cand.datatype}, the endpoint's is {end.datatype}")
    if shapes:
        fits = len(cand.shape) == len(end.shape) and all(
            c == -1 or c == e for c, e in zip(cand.shape, end.shape, strict=True)
        )
        if not fits:
            found.append(
                f"{side} {end.name!r} has shape {list(cand.shape)}, which does not accept the "
                f"endpoint's {list(end.shape)}"
            )
    return found
