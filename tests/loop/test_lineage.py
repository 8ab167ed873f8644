"""Lineage over a real chain: hand-made champion, a loop run that trained and promoted v2.

Everything is built with the real components (RunStore transitions with the fields the
run driver stores, the registry, the artifact store, endpoints, the canary controller,
the prediction log writer and the feedback store), then walked back and verified.
Tampering is done the way an intruder would: SQL updates and overwritten files.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sklearn
import skops.io
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from mlgate.config import Settings
from mlgate.errors import LineageError
from mlgate.experiments.canary import CanaryController
from mlgate.ledger.events import digest_json
from mlgate.loop.frame import TrainingFrame, frame_to_bytes
from mlgate.loop.lineage import lineage_of_request, lineage_of_version
from mlgate.loop.runs import LoopRun, RunState, RunStore
from mlgate.registry.records import Lineage, ModelVersion
from mlgate.serving.endpoints import EndpointStore
from mlgate.serving.feedback import FeedbackItem, record_feedback
from mlgate.serving.predlog import PredictionLogWriter, PredictionRecord
from mlgate.serving.spec import default_endpoint, endpoint_from_json
from mlgate.store.schema import loop_runs, model_versions
from mlgate.workspace import Workspace

MODEL = "churn"
LOOP = "churn-loop"
LOOP_ACTOR = "mlgate:loop"
OPS = "test:ops"
T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC).timestamp()
RUN_KINDS = [
    "loop.triggered",
    "loop.data_checked",
    "loop.trained",
    "loop.gated",
    "loop.registered",
    "loop.canary_started",
    "loop.promoted",
]


@dataclass(frozen=True)
class Chain:
    champion: ModelVersion  # v1, registered by hand
    candidate: ModelVersion  # v2, trained by the loop's run
    run: LoopRun
    frame: TrainingFrame
    frame_sha256: str
    canary_id: int


def training_frame(seed: int, n: int = 40) -> TrainingFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    return TrainingFrame(
        columns={"f0": x[:, 0], "f1": x[:, 1], "country": np.array(["nl", "de"] * (n // 2))},
        labels=(x[:, 0] + x[:, 1] > 0).astype(np.int64),
        features=("f0", "f1"),
        record_ids=tuple(f"rec-{seed}-{i}" for i in range(n)),
        seqs=np.arange(1, n + 1, dtype=np.int64),
        times=np.full(n, T0),
    )


def model_bytes(frame: TrainingFrame, c: float) -> bytes:
    return bytes(skops.io.dumps(LogisticRegression(C=c).fit(frame.matrix(), frame.labels)))


def environment() -> dict[str, Any]:
    described = {
        "python": platform.python_version(),
        "implementation": "cpython",
        "platform": "linux-x86_64",
        "packages": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
    }
    return {**described, "digest": digest_json(described)}


def gate_report() -> dict[str, Any]:
    """A passed report in the stored format (mlgate.gate_report/1): one metric check."""

    def node(path: str, kind: str, message: str, **more: Any) -> dict[str, Any]:
        base = {"path": path, "kind": kind, "passed": True, "skipped": False, "value": None}
        return base | {"threshold": None, "details": {}, "message": message, "children": []} | more

    accuracy = node("gate.all_of[0]", "metric", "accuracy 0.9 >= 0.8", value=0.9, threshold=0.8)
    return {
        "format": "mlgate.gate_report/1",
        "passed": True,
        "summary": "gate passed: 1 of 1 checks passed",
        "seed": 0,
        "gate": None,
        "tree": node("gate", "all_of", "all passed", children=[accuracy]),
    }


def build_chain(workspace: Workspace) -> Chain:
    """v1 by hand as champion; loop run 1 trains v2 on a stored frame and promotes it."""
    registry = workspace.registry
    champion = registry.register(
        MODEL, model_bytes(training_frame(0), 1.0), actor=OPS, flavor="sklearn"
    )
    registry.move_alias(MODEL, "champion", champion.version, actor=OPS)
    endpoints = EndpointStore(workspace.store, registry, workspace.log, workspace.clock)
    endpoints.deploy(default_endpoint(MODEL), actor=OPS)

    runs = RunStore(workspace.store, workspace.log, workspace.clock)
    trigger = {"kind": "drift", "reason": "feature f0 drifted (psi 0.31)", "details": {}}
    started = runs.start(
        LOOP, trigger, actor=LOOP_ACTOR, attributes={"signal": "drift"}, champion_version=1
    )
    assert started is not None
    frame = training_frame(1)
    frame_sha = workspace.artifacts.put(frame_to_bytes(frame))
    data = {
        "rows": len(frame),
        "fingerprint": frame.fingerprint(),
        "frame_sha256": frame_sha,
        "seq_min": 1,
        "seq_max": len(frame),
        "checked": True,
    }
    run = runs.advance(
        started,
        RunState.TRAINING,
        actor=LOOP_ACTOR,
        changes={"data": data},
        attributes={"rows": len(frame), "checked": True},
        digests={"dataset": frame.fingerprint(), "frame": "sha256:" + frame_sha},
    )
    artifact = model_bytes(frame, 0.5)
    artifact_sha = workspace.artifacts.put(artifact)
    env = environment()
    code = {
        "target": "builtin:sklearn",
        "module_file": None,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "dirty": True,
        "source_digest": "sha256:" + "ab" * 32,
        "version": "0.1.0",
    }
    run = runs.advance(
        run,
        RunState.GATING,
        actor=LOOP_ACTOR,
        changes={
            "artifact_sha256": artifact_sha,
            "params": {"C": 0.5},
            "environment": env,
            "code": code,
            "data": data | {"flavor": "sklearn", "trusted_types": [], "train_seconds": 0.1},
        },
        attributes={"flavor": "sklearn", "code_dirty": True},
        digests={"artifact": "sha256:" + artifact_sha, "environment": env["digest"]},
    )
    report = gate_report()
    run = runs.advance(
        run,
        RunState.REGISTERING,
        actor=LOOP_ACTOR,
        changes={
            "gate_report": report,
            "gate_digest": digest_json(report),
            "metrics": {"accuracy": 0.9},
        },
        attributes={"passed": True, "checks": 1},
        digests={"report": digest_json(report)},
    )
    candidate = registry.register(
        MODEL,
        artifact,
        actor=LOOP_ACTOR,
        flavor="sklearn",
        params={"C": 0.5},
        metrics={"accuracy": 0.9},
        tags={"loop": LOOP, "loop_run": str(run.id)},
        lineage=Lineage(
            dataset_fingerprint=frame.fingerprint(),
            code_commit=code["commit"],
            code_dirty=True,
            run_id=f"loop:{LOOP}:{run.id}",
            parent_version=champion.version,
        ),
    )
    run = runs.advance(
        run,
        RunState.REGISTERED,
        actor=LOOP_ACTOR,
        changes={"candidate_version": candidate.version},
        attributes={"model": MODEL, "version": candidate.version},
    )
    canary = CanaryController.from_workspace(workspace).start(
        MODEL, candidate.version, actor=LOOP_ACTOR
    )
    run = runs.advance(run, RunState.CANARY, actor=LOOP_ACTOR, changes={"canary_id": canary.id})
    registry.move_alias(MODEL, "champion", candidate.version, actor=LOOP_ACTOR)
    run = runs.advance(run, RunState.PROMOTED, actor=LOOP_ACTOR, attributes={"version": 2})
    return Chain(champion, candidate, run, frame, frame_sha, canary.id)


def log_predictions(store_workspace: Workspace, records: list[PredictionRecord]) -> None:
    """Through the server's own writer: queued, then written in one batch on close."""
    writer = PredictionLogWriter(store_workspace.store)
    for record in records:
        assert writer.record(record)
    asyncio.run(writer.close())
    assert writer.written == len(records)


def prediction(request_id: str, version: str, **more: Any) -> PredictionRecord:
    fields: dict[str, Any] = {
        "request_id": request_id,
        "endpoint": MODEL,
        "version": version,
        "route": "split:1",
        "status": "ok",
        "shadow": False,
        "inputs": {"input": np.array([[0.1, 0.2]])},
        "outputs": {"label": np.array([1])},
        "latency_ms": 2.5,
        "created_at": T0 + 3600,
    }
    return PredictionRecord(**(fields | more))


@pytest.fixture
def chain(workspace: Workspace) -> Chain:
    return build_chain(workspace)


def overwrite(path: Path, data: bytes) -> None:
    os.chmod(path, 0o644)  # the store writes blobs read-only: a reminder, not a defence
    path.write_bytes(data)


def checks_of(lineage_json: dict[str, Any]) -> dict[str, str]:
    return {c["check"]: c["result"] for c in lineage_json["verification"]}


# -- a version's chain --------------------------------------------------------------------


def test_a_loop_version_links_to_its_run_data_code_gate_and_deployments(
    workspace: Workspace, chain: Chain
) -> None:
    lineage = lineage_of_version(workspace, MODEL, "champion")
    assert lineage.version == workspace.registry.get(MODEL, 2)
    assert lineage.run is not None and lineage.run.id == chain.run.id
    assert lineage.checks is None and lineage.verified is None
    document = lineage.to_json()
    assert json.loads(json.dumps(document)) == document  # plain JSON
    assert document["model"] == MODEL and document["version"] == 2
    assert document["record"]["tags"] == {"loop": LOOP, "loop_run": str(chain.run.id)}
    assert document["record"]["lineage"]["parent_version"] == 1
    run = document["run"]
    assert run["state"] == "promoted" and run["loop"] == LOOP
    assert run["trigger"] == {"kind": "drift", "reason": "feature f0 drifted (psi 0.31)"}
    assert run["data"] == {
        "rows": 40,
        "fingerprint": chain.frame.fingerprint(),
        "seq_min": 1,
        "seq_max": 40,
        "frame_sha256": chain.frame_sha256,
    }
    assert run["code"]["commit"] == "0123456789abcdef0123456789abcdef01234567"
    assert run["code"]["dirty"] is True and run["code"]["target"] == "builtin:sklearn"
    assert run["environment"]["digest"] == environment()["digest"]
    assert run["environment"]["packages"]["scikit-learn"] == sklearn.__version__
    assert run["params"] == {"C": 0.5} and run["metrics"] == {"accuracy": 0.9}
    assert run["gate"]["passed"] is True
    assert run["gate"]["digest"] == digest_json(gate_report())
    assert [c["path"] for c in run["gate"]["checks"]] == ["gate.all_of[0]"]  # leaves only
    events = document["events"]
    assert [e["kind"] for e in events] == RUN_KINDS
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert {e["actor"] for e in events} == {LOOP_ACTOR}
    deployments = document["deployments"]
    assert [
        (m["alias"], m["from_version"], m["to_version"]) for m in deployments["alias_moves"]
    ] == [("champion", 1, 2)]
    [canary] = deployments["canaries"]
    assert (canary["id"], canary["baseline"], canary["candidate"]) == (chain.canary_id, "1", "2")
    assert [
        (r["endpoint"], r["revision"], r["via"]) for r in deployments["endpoint_revisions"]
    ] == [
        (MODEL, 2, ["2"])  # the canary's split; revision 1 routed champion to v1 then
    ]


def test_the_parent_is_the_champion_it_replaced_registered_by_hand(
    workspace: Workspace, chain: Chain
) -> None:
    lineage = lineage_of_version(workspace, MODEL, 2)
    parent = lineage.parent
    assert parent is not None and parent.version.version == 1
    assert parent.run is None and parent.events == () and parent.parent is None
    assert parent.notes == ("registered by hand (no training run recorded)",)
    document = parent.to_json()
    assert [
        (m["from_version"], m["to_version"]) for m in document["deployments"]["alias_moves"]
    ] == [
        (None, 1),
        (1, 2),
    ]
    revisions = document["deployments"]["endpoint_revisions"]
    assert [(r["revision"], r["via"]) for r in revisions] == [(1, ["champion"]), (2, ["1"])]
    assert lineage_of_version(workspace, MODEL, 2, depth=0).parent is None


def test_a_version_registered_by_hand_has_its_record_and_no_run(workspace: Workspace) -> None:
    version = workspace.registry.register(
        "iris", model_bytes(training_frame(3), 1.0), actor=OPS, flavor="sklearn"
    )
    lineage = lineage_of_version(workspace, "iris", "latest", verify=True)
    assert lineage.version == version and lineage.run is None and lineage.parent is None
    assert lineage.notes == ("registered by hand (no training run recorded)",)
    document = lineage.to_json()
    assert document["run"] is None and document["events"] == []
    assert document["deployments"] == {"alias_moves": [], "canaries": [], "endpoint_revisions": []}
    assert checks_of(document) == {"artifact": "ok", "registration record": "ok"}
    assert lineage.verified is True


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [
        (MODEL, 9, "no lineage for churn:9: churn has no version 9"),
        (MODEL, "staging", "churn has no alias 'staging'"),
        ("nobody", 1, "no model named 'nobody'"),
    ],
)
def test_an_unknown_version_is_a_lineage_error(
    workspace: Workspace, model: str, version: int | str, message: str
) -> None:
    workspace.registry.register(MODEL, model_bytes(training_frame(0), 1.0), actor=OPS)
    with pytest.raises(LineageError, match=message):
        lineage_of_version(workspace, model, version)


# -- a request's chain --------------------------------------------------------------------


def test_a_request_walks_back_to_the_versions_that_answered_it(
    workspace: Workspace, chain: Chain
) -> None:
    log_predictions(
        workspace,
        [
            prediction("req-1", "2"),
            prediction("req-1", "1", shadow=True, route="shadow:1"),
            prediction("req-2", "-", status="error", outputs=None, route="split:2"),
            prediction("req-3", "1+2", route="ensemble"),
        ],
    )
    record_feedback(workspace.store, MODEL, [FeedbackItem("req-1", label=1)], workspace.clock)

    lineage = lineage_of_request(workspace, MODEL, "req-1")
    assert lineage.model == MODEL and lineage.notes == ()
    assert [(p["version"], p["shadow"], p["status"]) for p in lineage.predictions] == [
        ("2", False, "ok"),
        ("1", True, "ok"),
    ]
    assert [f["label"] for f in lineage.feedback] == [1]
    assert [v.version.version for v in lineage.versions] == [1, 2]
    served = lineage.versions[1]
    assert served.run is not None and served.run.id == chain.run.id
    assert served.parent is not None and served.parent.version.version == 1
    document = lineage.to_json()
    assert json.loads(json.dumps(document)) == document
    assert document["versions"][1]["run"]["data"]["fingerprint"] == chain.frame.fingerprint()

    failed = lineage_of_request(workspace, MODEL, "req-2")
    assert failed.versions == ()
    assert failed.notes == ("request error: no model answered",)
    ensemble = lineage_of_request(workspace, MODEL, "req-3")
    assert [v.version.version for v in ensemble.versions] == [1, 2]


def test_an_unknown_request_is_a_lineage_error(workspace: Workspace, chain: Chain) -> None:
    log_predictions(workspace, [prediction("req-1", "2")])
    for endpoint, request_id in [(MODEL, "req-9"), ("elsewhere", "req-1")]:
        with pytest.raises(LineageError) as raised:
            lineage_of_request(workspace, endpoint, request_id)
        assert str(raised.value) == (
            f"no prediction with request id {request_id!r} on endpoint {endpoint!r}; is "
            "logging.sample_rate below 1, or was the request shed?"
        )


def test_a_request_answered_by_a_real_server(
    settings: Settings, workspace: Workspace, chain: Chain
) -> None:
    from mlgate.serving.app import ServeConfig
    from tests.serving.conftest import start_server

    spec = endpoint_from_json({"name": "churn-live", "model": MODEL, "route": {"target": 2}})
    EndpointStore(workspace.store, workspace.registry, workspace.log, workspace.clock).deploy(
        spec, actor=OPS
    )
    server = start_server(
        settings, workspace, ServeConfig(poll_interval_s=0.1, seed=1, target_latency_ms=0.0)
    )
    try:
        response = server.infer(
            "churn-live", [[0.1, 0.2]], input_name="input", datatype="FP64", request_id="live-1"
        )
        assert response.status_code == 200, response.text
        [row] = server.predictions("churn-live", 1)
    finally:
        server.stop()
    assert row["request_id"] == "live-1"
    lineage = lineage_of_request(workspace, "churn-live", "live-1", verify=True)
    assert lineage.model == MODEL
    [served] = lineage.versions
    assert served.version.version == 2 and served.run is not None
    assert served.verified is True
    revisions = served.to_json()["deployments"]["endpoint_revisions"]
    assert ("churn-live", ["2"]) in [(r["endpoint"], r["via"]) for r in revisions]


# -- verification ---------------------------------------------------------------------


def test_verify_passes_on_an_honest_store(workspace: Workspace, chain: Chain) -> None:
    lineage = lineage_of_version(workspace, MODEL, 2, verify=True)
    document = lineage.to_json()
    assert checks_of(document) == {
        "artifact": "ok",
        "registration record": "ok",
        "trained artifact": "ok",
        "dataset fingerprint": "ok",
        "gate report": "ok",
        "environment": "ok",
    }
    fingerprint = {c["check"]: c["values"] for c in document["verification"]}["dataset fingerprint"]
    assert set(fingerprint.values()) == {chain.frame.fingerprint()}
    assert checks_of(document["parent"]) == {"artifact": "ok", "registration record": "ok"}
    assert lineage.verified is True


def _update_run(workspace: Workspace, run_id: int, **values: Any) -> None:
    with workspace.store.write() as conn:
        conn.execute(loop_runs.update().where(loop_runs.c.id == run_id).values(**values))


def test_verify_reports_a_rewritten_run_without_raising(workspace: Workspace, chain: Chain) -> None:
    data = dict(chain.run.data or {}) | {"fingerprint": "sha256:" + "0" * 64}
    report = gate_report() | {"passed": False}
    _update_run(workspace, chain.run.id, data=data, gate_report=report)
    document = lineage_of_version(workspace, MODEL, 2, verify=True).to_json()
    assert checks_of(document) == {
        "artifact": "ok",
        "registration record": "ok",
        "trained artifact": "ok",
        "dataset fingerprint": "mismatch",
        "gate report": "mismatch",
        "environment": "ok",
    }
    values = {c["check"]: c["values"] for c in document["verification"]}
    fingerprint = values["dataset fingerprint"]
    assert fingerprint["run"] == "sha256:" + "0" * 64
    assert fingerprint["recomputed from the frame"] == chain.frame.fingerprint()
    assert fingerprint["ledger loop.data_checked"] == chain.frame.fingerprint()
    assert values["gate report"]["recomputed"] == digest_json(report)
    assert values["gate report"]["ledger loop.gated"] == digest_json(gate_report())


def test_verify_reports_overwritten_files_and_records(workspace: Workspace, chain: Chain) -> None:
    overwrite(workspace.artifacts.path_for(chain.frame_sha256), frame_to_bytes(training_frame(7)))
    overwrite(workspace.artifacts.path_for(chain.candidate.sha256), b"not the model")
    with workspace.store.write() as conn:
        conn.execute(
            model_versions.update()
            .where(model_versions.c.name == MODEL, model_versions.c.version == 1)
            .values(metrics={"accuracy": 0.99})
        )
    lineage = lineage_of_version(workspace, MODEL, 2, verify=True)
    assert lineage.verified is False
    document = lineage.to_json()
    assert checks_of(document)["artifact"] == "mismatch"
    assert checks_of(document)["dataset fingerprint"] == "mismatch"
    values = {c["check"]: c["values"] for c in document["verification"]}
    assert values["artifact"]["re-hashed file"].startswith("unavailable: artifact ")
    assert "was altered" in values["dataset fingerprint"]["recomputed from the frame"]
    assert checks_of(document["parent"]) == {"artifact": "ok", "registration record": "mismatch"}


def test_run_events_are_only_the_runs_own(workspace: Workspace, chain: Chain) -> None:
    """Another loop's run, ledgered after this one, adds nothing to this run's entries."""
    runs = RunStore(workspace.store, workspace.log, workspace.clock)
    other = runs.start(
        "other-loop", {"kind": "manual"}, actor=OPS, attributes={}, champion_version=None
    )
    assert other is not None
    runs.advance(other, RunState.FAILED, actor=OPS, changes={"error": "labels never came"})
    lineage = lineage_of_version(workspace, MODEL, 2)
    assert [event.kind for event in lineage.events] == RUN_KINDS
    with workspace.store.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(loop_runs)).scalar_one() == 2
