"""Optimised variants are versions like any other: a real server routes a split between a
PyTorch parent (TorchScript flavor) and its ONNX and pruned variants, and each answers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from mlgate.optimize import PruneConfig, optimize_version
from mlgate.workspace import Workspace
from tests.models import ACTOR
from tests.optimize.conftest import FAST, WIDTH
from tests.optimize.test_torch_optimize import _register
from tests.serving.conftest import Server, output, wait_until

pytestmark = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def test_a_split_over_a_torch_parent_and_its_variants_serves_them_all(
    serve: Callable[..., Server], workspace: Workspace
) -> None:
    import torch
    from torch import nn

    from tests.optimize.test_torch_optimize import MLPClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=600)
    x = rng.normal(size=(600, WIDTH)) + np.where(y[:, None] == 1, 1.5, -1.5) * (
        np.arange(WIDTH) < 3
    )
    torch.manual_seed(0)
    model = MLPClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    features, targets = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(60):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model.net(features), targets).backward()
        optimizer.step()
    _register(workspace, model.eval())
    report = optimize_version(
        workspace,
        "m",
        1,
        holdout=x[400:],
        labels=y[400:],
        kinds=("onnx", "torch-pruned"),
        prune_config=PruneConfig(prune_ratio=0.25, fine_tune_epochs=20),
        actor=ACTOR,
        measure=FAST,
    )
    served = {row.kind: row.version for row in report.registered}
    assert "onnx" in served, report.to_json()
    targets_ = [1, *served.values()]
    server = serve()
    server.deploy(
        {
            "name": "tmlp-ab",
            "model": "m",
            "route": {
                "split": {
                    "variants": [{"target": t, "weight": 100 / len(targets_)} for t in targets_]
                }
            },
        }
    )
    rows = x[:1].astype(np.float32).tolist()
    expected = model(torch.tensor(rows))[1].detach().numpy()

    def every_version_answers() -> Counter[str]:
        answers: Counter[str] = Counter()
        for _ in range(60):
            response = server.infer("tmlp-ab", rows, input_name="input")
            assert response.status_code == 200, response.text
            answers[response.headers["x-mlgate-version"]] += 1
            np.testing.assert_allclose(output(response, "probabilities"), expected, atol=0.15)
        return answers

    seen = wait_until(
        lambda: (c := every_version_answers()) and set(c) == {str(t) for t in targets_} and c,
        timeout=20,
        what="every version of the split to answer",
    )
    assert sum(seen.values()) == 60
