"""Reading a canary's samples: which log rows count, for whom, and how (real stores)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from mlgate.experiments.canary.rollout import split_spec
from mlgate.experiments.canary.samples import read_samples, variant_of_route
from mlgate.serving.router import Router
from mlgate.serving.spec import endpoint_from_json
from mlgate.store.schema import feedback, prediction_log
from mlgate.workspace import Workspace

SINCE = "2024-05-01T12:00:00.000000Z"
AT = "2024-05-01T12:00:30.000000Z"
UNTIL = "2024-05-01T12:01:00.000000Z"


def _row(request_id: str, route: str, **fields: Any) -> dict[str, Any]:
    row = {
        "request_id": request_id,
        "endpoint": "m",
        "version": "2",
        "route": route,
        "status": "ok",
        "shadow": False,
        "inputs": None,
        "outputs": {"probabilities": [[0.25, 0.75]], "label": [1]},
        "latency_ms": 10.0,
        "created_at": AT,
    }
    row.update(fields)
    return row


def _insert(ws: Workspace, rows: list[dict[str, Any]], rewards: list[tuple[str, float]]) -> None:
    with ws.store.write() as conn:
        conn.execute(prediction_log.insert(), rows)
        if rewards:
            conn.execute(
                feedback.insert(),
                [
                    {"endpoint": "m", "request_id": r, "reward": v, "label": None, "created_at": AT}
                    for r, v in rewards
                ],
            )


@pytest.mark.parametrize("sticky", [None, "user"])
def test_the_variant_is_read_from_the_real_routers_reasons(sticky: str | None) -> None:
    spec = split_spec(endpoint_from_json({"name": "m"}), 1, 12, 50.0, sticky)
    router = Router(spec, rng=random.Random(0))
    seen = set()
    for user in range(200):
        plan = router.route({"user": str(user)}, str(user) if sticky else None)
        assert variant_of_route(plan.reason) == str(plan.targets[0])
        assert variant_of_route(plan.reason + ":fallback") == str(plan.targets[0])
        seen.add(plan.targets[0])
    assert seen == {1, 12}
    assert variant_of_route("pinned:12") is None and variant_of_route("target") is None


def test_only_split_routed_primary_rows_count_and_fallbacks_are_errors(
    workspace: Workspace,
) -> None:
    c = "split:weighted→2"
    rows = [
        _row("a", c),
        _row("b", c, status="error", version="-", outputs=None, latency_ms=900.0),
        # The candidate failed and version 1 answered in its place:
        _row("c", c + ":fallback", version="1", status="fallback"),
        _row("d", c, status="shed"),  # overload says nothing about the model
        _row("e", c, status="invalid"),
        _row("f", "shadow:2", shadow=True),
        _row("g", "pinned:2"),  # chosen by the client, not at random
        _row("h", c, created_at="2024-05-01T11:59:59.999999Z"),  # before the window
        _row("i", c, created_at=UNTIL),  # the window is half-open
        _row("j", "split:weighted→12"),  # another version whose number starts alike
        _row("k", "split:weighted→1", version="1", outputs={"label": [0]}, latency_ms=5.0),
    ]
    _insert(workspace, rows, [("a", 1.0), ("a", 0.0), ("b", 1.0), ("c", 1.0), ("k", 0.5)])
    window = read_samples(
        workspace.store, "m", baseline="1", candidate="2", since=SINCE, until=UNTIL, limit=100
    )
    canary = window.canary
    assert sorted(canary.errors.tolist()) == [0.0, 1.0, 1.0]  # a ok; b error; c fallback
    assert sorted(canary.latency_ms.tolist()) == [10.0, 10.0, 900.0]
    assert canary.predictions.tolist() == [0.25]  # the first number of the first output
    assert canary.rewards.tolist() == [0.5]  # a's two rewards, averaged; c's answer was v1's
    base = window.baseline
    assert (base.requests, base.predictions.tolist(), base.rewards.tolist()) == (1, [0.0], [0.5])


def test_a_named_output_and_the_row_cap(workspace: Workspace) -> None:
    rows = [
        _row(f"r{i}", "split:weighted→2", latency_ms=float(i), outputs={"p": [i], "label": [7]})
        for i in range(10)
    ]
    _insert(workspace, rows, [])
    window = read_samples(
        workspace.store,
        "m",
        baseline="1",
        candidate="2",
        since=SINCE,
        until=UNTIL,
        limit=4,
        output="label",
    )
    assert sorted(window.canary.latency_ms.tolist()) == [6.0, 7.0, 8.0, 9.0]  # the newest
    assert window.canary.predictions.tolist() == [7.0] * 4
    assert window.baseline.requests == 0
