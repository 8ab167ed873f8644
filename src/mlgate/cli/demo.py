"""``mlgate demo``: the whole story on the embedded default, in about a minute.

A champion serves a synthetic stream over OIP v2 on 127.0.0.1; drift is injected at a
known request; the loop's monitors see it; the first retraining's data carries poisoned
labels and is quarantined; a clean retraining passes the gates, goes through canary steps
on live traffic and is promoted; the ledger is verified, exported and checked by the
stand-alone verifier; a tampered copy fails. It prints a timeline and writes an HTML
report. Everything real: SQLite, local files, a real server, real HTTP clients.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import typer

from mlgate.cli._common import console, state_of
from mlgate.config import Settings
from mlgate.errors import ConfigError
from mlgate.workspace import Workspace

_MARKER = ".mlgate-demo"
_ENDPOINT = "risk"
_TIME_LIMIT_S = 100.0

LOOP_YAML = f"""\
# The demo's loop; run it yourself with `mlgate --home HOME loop run loop.yaml`.
name: risk-loop
endpoint: {_ENDPOINT}
task: classification
features: [x0, x1, x2, x3, x4, x5]
source: {{kind: prediction_log, batch_size: 500}}   # what the endpoint served, and its labels
monitor: {{window: 200, detector: adwin}}
triggers: {{on: [drift, performance, manual], confirm: 2, confirm_window_s: 30, cooldown_s: 6}}
training:
  trainer: builtin:sklearn
  estimator: LogisticRegression
  params: {{C: 1.0}}
  window: {{recent: 600}}
  min_rows: 300
  holdout: 0.3
  time_budget_s: 60
gates:
  all_of:
    - metric: {{name: accuracy, min: 0.75}}
    - vs_champion: {{metric: accuracy, min_delta: 0.02}}
    - significance: {{metric: accuracy, test: mcnemar, alpha: 0.01}}
    - latency: {{p99_ms: 25}}
    - size: {{max_mb: 5}}
    - signature: {{}}
promotion:
  steps: [10, 50, 100]
  interval_s: 2
  min_samples: 30
  metrics:
    - {{name: error_rate, source: error_rate, harm: increase, tolerance: 0.1, critical: true}}
    - {{name: reward, source: reward, harm: decrease, tolerance: 0.05}}
"""


def _fresh_folder(folder: Path) -> None:
    if folder.exists():
        if not (folder / _MARKER).exists():
            raise ConfigError(
                f"{folder} exists and was not made by `mlgate demo`; pass --dir with a new folder"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / _MARKER).write_text("made by mlgate demo; safe to delete\n", encoding="utf-8")


def _step(number: int, text: str) -> None:
    console.rule(f"[bold]{number}. {text}", align="left")


def demo_command(
    ctx: typer.Context,
    directory: Path = typer.Option(
        Path("mlgate-demo"), "--dir", help="Demo folder (recreated on every run)."
    ),
) -> None:
    """Serve, drift, catch poisoned data, retrain, gate, canary, promote, prove."""
    from mlgate.cli._demo_story import Story

    folder = directory.absolute()
    _fresh_folder(folder)
    settings = Settings(
        home=folder / "home",
        store_url=f"sqlite:///{folder / 'home' / 'mlgate.db'}",
        actor=state_of(ctx).settings.actor,
    )
    started = time.monotonic()
    _step(1, "mlgate init: SQLite store, artifact folder, Ed25519 ledger key")
    report = Workspace.init(settings)
    console.print(f"home {report.home}\nledger {report.origin}\npublic key {report.verifier_key}")
    (folder / "loop.yaml").write_text(LOOP_YAML, encoding="utf-8")
    with Workspace.open(settings) as workspace:
        story = Story(workspace, settings, folder, endpoint=_ENDPOINT, started=started)
        _step(2, "a champion: trained on the world as it is, registered, deployed")
        story.deploy_champion()
        _step(3, "serve a live stream and run the loop (drift is injected at a known request)")
        story.run_loop(folder / "loop.yaml", time_limit_s=_TIME_LIMIT_S)
        _step(4, "what the clients saw: accuracy by phase and version (against the truth)")
        story.show_accuracy()
        _step(5, "lineage: from one served prediction back to its data and code")
        story.show_lineage()
        _step(6, "prove it: checkpoint, verify the ledger, export an audit bundle")
        bundle = story.prove()
        _run_bundle_verifier(bundle, report.verifier_key)
        _step(7, "timeline and report")
        story.timeline()
        story.write_report(folder / "report.html")
    _step(8, "tamper with a copy of the bundle: claim someone else promoted the model")
    tampered = folder / "tampered-bundle"
    shutil.copytree(bundle, tampered)
    story.tamper(tampered / "entries.jsonl")
    _run_bundle_verifier(tampered, report.verifier_key)
    console.rule()
    console.print(
        f"done in {time.monotonic() - started:.0f} s. Everything lives in {folder}: open "
        f"report.html; try `mlgate --home {settings.home} loop runs` or "
        f"`mlgate --home {settings.home} lineage {_ENDPOINT}:champion`"
    )


def _run_bundle_verifier(bundle: Path, verifier_key: str) -> None:
    command = [
        sys.executable,
        "-I",  # isolated: no user site, no PYTHONPATH, no cwd on the path
        str(bundle / "verifier" / "verify.py"),
        str(bundle),
        "--public-key",
        verifier_key,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    text = (result.stdout + result.stderr).strip()
    colour = "green" if result.returncode == 0 else "red"
    console.print(f"$ python -I {bundle.name}/verifier/verify.py ... → exit {result.returncode}")
    console.print(f"[{colour}]{text}[/]")
