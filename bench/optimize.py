"""Optimisation benchmark: what ``mlgate optimize`` buys for scikit-learn models.

    .venv/bin/python -m bench.optimize --write BENCHMARKS.md   # about a minute
    .venv/bin/python -m bench.optimize --quick                 # seconds, smaller models

It runs ``mlgate.optimize.optimize_version`` on a throw-away SQLite workspace for the
models the issue names, each parent and variant timed through the same predict path the
server uses (the registry's loaded model), in the same run:

* an MLP classifier (128, 64) on 20 features (the issue measured about 546 µs per row
  in scikit-learn against about 23 µs as ONNX, and about 20% more batch-256 rows/s with
  int8);
* a HistGradientBoosting classifier, 100 iterations (about 2.75 ms against 26 µs);
* a PyTorch MLP 50-256-256-2, the issue's shape, on 50 features of the same kind (ONNX
  export, int8 and float16 on top, and structured pruning of 30% of the hidden neurons).

The table gives size, single-row p50, batch-256 rows/s and the accuracy change on a
labelled holdout; ratios against the parent are what to read, since these machines are
shared. The GPU table is separate (see BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import publish, write_marked_section

MARK_START = "<!-- optimize:start -->"
MARK_END = "<!-- optimize:end -->"
ACTOR = "bench:optimize"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.optimize", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller models and fewer repeats")
    p.add_argument("--write", type=Path, help="update this file's optimize section")
    p.add_argument("--out", type=Path, help="write raw results as JSON here")
    return p


def write_section(path: Path, section: str) -> None:
    write_marked_section(path, section, MARK_START, MARK_END)


def _data(
    rows: int, seed: int, features: int = 20
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=10, random_state=seed
    )
    return x.astype(np.float64), y


def _models(quick: bool) -> list[tuple[str, Any]]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.neural_network import MLPClassifier

    return [
        ("MLP (128, 64)", MLPClassifier((128, 64), max_iter=20 if quick else 200, random_state=0)),
        (
            "HistGradientBoosting",
            HistGradientBoostingClassifier(max_iter=20 if quick else 100, random_state=0),
        ),
    ]


TORCH_LABEL = "PyTorch MLP 50-256-256-2"


def _torch_mlp(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any], quick: bool) -> bytes:
    """Train the issue's MLP shape briefly and return it as a TorchScript archive."""
    import torch

    from bench._optimize_torch import TorchMLP
    from mlgate.registry.flavors.torch import save_torchscript
    from mlgate.registry.signature import Signature, TensorSpec

    torch.manual_seed(0)
    model = TorchMLP(x.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    features, targets = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    for _ in range(5 if quick else 30):
        for start in range(0, len(x), 128):
            optimizer.zero_grad()
            logits = model.net(features[start : start + 128])
            torch.nn.functional.cross_entropy(logits, targets[start : start + 128]).backward()
            optimizer.step()
    signature = Signature(
        inputs=(TensorSpec("input", "FP32", (-1, x.shape[1])),),
        outputs=(
            TensorSpec("label", "INT64", (-1,)),
            TensorSpec("probabilities", "FP32", (-1, 2)),
        ),
    )
    return save_torchscript(model.eval(), signature)


def run(quick: bool) -> dict[str, Any]:
    import skops.io
    from sklearn.exceptions import ConvergenceWarning

    from mlgate.config import Settings
    from mlgate.optimize import MeasureConfig, PruneConfig, optimize_version
    from mlgate.workspace import Workspace

    measure = MeasureConfig(single_row_repeats=100, batch_repeats=5) if quick else MeasureConfig()
    x, y = _data(2_000 if quick else 6_000, seed=0)
    train, holdout = slice(0, len(x) - 1_000), slice(len(x) - 1_000, len(x))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mlgate-bench-optimize-") as tmp:
        home = Path(tmp) / "home"
        settings = Settings(home=home, store_url=f"sqlite:///{home / 'mlgate.db'}", actor=ACTOR)
        Workspace.init(settings)
        with Workspace.open(settings) as workspace:
            for index, (label, estimator) in enumerate(_models(quick)):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    estimator.fit(x[train], y[train])
                data = skops.io.dumps(estimator)
                trusted = sorted(skops.io.get_untrusted_types(data=data))
                name = f"model{index}"
                workspace.registry.register(name, data, actor=ACTOR, trusted_types=trusted)
                print(f"optimize: {label}", file=sys.stderr, flush=True)
                report = optimize_version(
                    workspace,
                    name,
                    1,
                    holdout=x[holdout],
                    labels=y[holdout],
                    actor=ACTOR,
                    measure=measure,
                    progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
                )
                results[label] = report.to_json()
            print(f"optimize: {TORCH_LABEL}", file=sys.stderr, flush=True)
            x50, y50 = _data(len(x), seed=0, features=50)
            data = _torch_mlp(x50[train], y50[train], quick)
            workspace.registry.register(
                "torch_mlp", data, actor=ACTOR, trusted_types=["torchscript"]
            )
            report = optimize_version(
                workspace,
                "torch_mlp",
                1,
                holdout=x50[holdout],
                labels=y50[holdout],
                actor=ACTOR,
                measure=measure,
                # Pruning a third of the neurons needs a little retraining to hold accuracy:
                # tuned on the holdout's first quarter, judged (like everything) on the rest.
                prune_config=PruneConfig(prune_ratio=0.3, fine_tune_epochs=5 if quick else 30),
                progress=lambda m: print(f"  {m}", file=sys.stderr, flush=True),
            )
            results[TORCH_LABEL] = report.to_json()
    return results


def render(results: dict[str, Any], command: str, elapsed: float) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        MARK_START,
        "## Inference optimisation (`mlgate optimize`, scikit-learn and PyTorch)",
        "",
        f"Produced by `{command}` on {stamp} ({platform.python_version()}, "
        f"{platform.machine()}, {elapsed:.0f} s). Parent and variants are timed in the same "
        "run through the server's predict path (CPU, onnxruntime's CPU provider); read the "
        "ratios against the parent. Holdout: 1,000 labelled rows of 20 features (of 50 for the "
        "PyTorch MLP, whose torch-pruned variant is fine-tuned for 30 epochs on the holdout's "
        "first quarter and judged with everything else on the rest).",
        "",
    ]
    for label, report in results.items():
        rows = report["variants"]
        parent = rows[0]
        lines += [
            f"**{label}**",
            "",
            "| kind | version | size | single-row p50 | vs parent | batch-256 rows/s "
            "| vs parent | accuracy Δ | agreement | status |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in rows:
            delta = row.get("accuracy_delta")
            agreement = row.get("label_agreement")
            lines.append(
                f"| {row['kind']} | {row['version'] or '–'} | {row['size_bytes'] / 1024:,.1f} KiB "
                f"| {row['p50_us']:,.1f} µs | {parent['p50_us'] / row['p50_us']:.1f}× faster "
                f"| {row['rows_per_s']:,.0f} | {row['rows_per_s'] / parent['rows_per_s']:.1f}× "
                f"| {'–' if delta is None else f'{delta:+.4f}'} "
                f"| {'–' if agreement is None else f'{agreement:.4f}'} | {row['status']} |"
            )
        for row in rows:
            if row["status"] == "rejected":  # say why, so a rejection reads as a decision
                lines.append(f"\n{row['kind']}: rejected ({'; '.join(row['reasons'])})")
        for skipped in report.get("skipped", []):
            lines.append(f"\n{skipped['kind']}: {skipped['status']} ({skipped['reason']})")
        lines.append("")
    lines += [MARK_END, ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    command = shlex.join([".venv/bin/python", "-m", "bench.optimize", *arguments])
    started = time.perf_counter()
    results = run(args.quick)
    section = render(results, command, time.perf_counter() - started)
    publish(
        "optimize", section, results, out=args.out, write=args.write, write_section=write_section
    )
    return results


if __name__ == "__main__":
    main()
