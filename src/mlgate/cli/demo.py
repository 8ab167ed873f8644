"""``mlgate demo``: an honest end-to-end tour of what mlgate does today.

Everything runs on the embedded default (one SQLite file and a local artifact
folder in a demo folder), with real models trained on scikit-learn's bundled
breast-cancer data: no network, no servers. The demo grows as mlgate does.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from mlgate.cli._common import console, state_of
from mlgate.config import Settings
from mlgate.errors import ConfigError
from mlgate.ledger import merkle
from mlgate.registry.records import Lineage
from mlgate.workspace import Workspace

_MARKER = ".mlgate-demo"


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
    """Register, promote and serve two model versions, check drift, then prove and audit."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from skops.io import dumps

    folder = directory.absolute()
    _fresh_folder(folder)
    settings = Settings(
        home=folder / "home",
        store_url=f"sqlite:///{folder / 'home' / 'mlgate.db'}",
        actor=state_of(ctx).settings.actor,
    )

    _step(1, "mlgate init: SQLite store, artifact folder, Ed25519 ledger key")
    report = Workspace.init(settings)
    console.print(f"home {report.home}\nledger {report.origin}\npublic key {report.verifier_key}")

    with Workspace.open(settings) as ws:
        _step(2, "train two candidate models on scikit-learn's breast-cancer data")
        features, labels = load_breast_cancer(return_X_y=True)
        x_train, x_test, y_train, y_test = train_test_split(
            features, labels, test_size=0.3, random_state=7, stratify=labels
        )
        fingerprint = (
            "sha256:"
            + hashlib.sha256(
                np.ascontiguousarray(x_train).tobytes() + np.ascontiguousarray(y_train).tobytes()
            ).hexdigest()
        )
        # skops refuses types outside its safe list unless trusted by name: we trained
        # these models ourselves a second ago, so trusting sklearn's tree type is honest.
        candidates = [
            ("logistic", make_pipeline(StandardScaler(), LogisticRegression(C=0.05)), ()),
            (
                "boosting",
                GradientBoostingClassifier(n_estimators=60, random_state=7),
                ("sklearn.tree._tree.Tree",),
            ),
        ]
        versions = []
        for run_id, estimator, trusted in candidates:
            estimator.fit(x_train, y_train)
            accuracy = accuracy_score(y_test, estimator.predict(x_test))
            auc = roc_auc_score(y_test, estimator.predict_proba(x_test)[:, 1])
            artifact = dumps(estimator)
            (folder / "models").mkdir(exist_ok=True)
            (folder / "models" / f"{run_id}.skops").write_bytes(artifact)  # for the README tour
            version = ws.registry.register(
                "breast-cancer",
                artifact,
                actor=settings.actor,
                params={"estimator": type(estimator).__name__},
                metrics={"accuracy": accuracy, "roc_auc": auc},
                tags={"demo": "true"},
                lineage=Lineage(dataset_fingerprint=fingerprint, run_id=run_id),
                trusted_types=trusted,
            )
            versions.append(version)
            console.print(
                f"registered version {version.version} ({run_id}): accuracy {accuracy:.3f}, "
                f"AUC {auc:.3f}, sha256 {version.sha256[:12]}..., ledger entry {version.ledger_seq}"
            )

        _step(3, "aliases: champion on v1, challenger on v2, then promote v2")
        ws.registry.move_alias("breast-cancer", "champion", 1, actor=settings.actor)
        ws.registry.move_alias("breast-cancer", "challenger", 2, actor=settings.actor)
        first = ws.checkpoint()
        console.print(f"signed checkpoint at size {first.size}")
        promotion = ws.registry.move_alias("breast-cancer", "champion", 2, actor=settings.actor)
        console.print(
            f"champion: {promotion.from_version} → {promotion.to_version} "
            f"(ledger entry {promotion.ledger_seq})"
        )

        _step(4, "load the champion: bytes re-hashed on every load, skops, never pickle")
        champion, model = ws.registry.load("breast-cancer", "champion")
        output = model.predict({"input": x_test[:5]})
        console.print(f"v{champion.version} labels for 5 holdout rows: {output['label'].tolist()}")
        console.print(f"true labels:                     {y_test[:5].tolist()}")

        _step(5, "serve: a sticky 80/20 canary over OIP v2 on 127.0.0.1, with feedback")
        _serve_canary(ws, settings, x_test)

        _step(6, "watch: drift of incoming rows against the training data")
        _show_drift(x_train, x_test)

        _step(7, "checkpoint and prove")
        latest = ws.checkpoint()
        console.print(latest.note.rstrip())
        with ws.store.read() as conn:
            size, root, path = ws.log.inclusion_proof(conn, promotion.ledger_seq)
            entry = ws.log.entry(conn, promotion.ledger_seq)
            _, old_root, new_root, consistency = ws.log.consistency_proof(conn, first.size)
        included = merkle.verify_inclusion(
            merkle.leaf_hash(entry.data), promotion.ledger_seq, size, path, root
        )
        consistent = merkle.verify_consistency(first.size, size, old_root, new_root, consistency)
        console.print(
            f"inclusion of the promotion (entry {promotion.ledger_seq}) in tree {size}: "
            f"{len(path)} hashes, verifies: {included}"
        )
        console.print(
            f"tree {first.size} is a prefix of tree {size}: {len(consistency)} hashes, "
            f"verifies: {consistent}"
        )

        _step(8, "verify the whole ledger")
        verified = ws.verify()
        console.print(
            f"OK: {verified.size} entries, {verified.nodes} nodes, "
            f"{verified.checkpoints} checkpoints"
        )

        _step(9, "export an audit bundle and verify it without mlgate")
        bundle = folder / "audit-bundle"
        ws.export(bundle)
        _run_bundle_verifier(bundle, report.verifier_key)

    _step(10, "tamper with a copy: claim the champion moved to v1, not v2")
    tampered = folder / "tampered-bundle"
    shutil.copytree(bundle, tampered)
    entries = tampered / "entries.jsonl"
    lines = entries.read_bytes().split(b"\n")
    lines[promotion.ledger_seq] = lines[promotion.ledger_seq].replace(
        b'"version":2', b'"version":1'
    )
    entries.write_bytes(b"\n".join(lines))
    _run_bundle_verifier(tampered, report.verifier_key)
    console.rule()
    console.print(
        f"done. Everything lives in {folder}; try `mlgate --home {settings.home} models list`"
    )


def _show_drift(x_train: Any, x_test: Any) -> None:
    """The drift verdict on the holdout (no drift) and on a recalibrated copy (drift)."""
    from mlgate.monitoring.drift import compare

    names = [f"x{i}" for i in range(x_train.shape[1])]
    reference = {name: x_train[:, i] for i, name in enumerate(names)}
    shifted = x_test.copy()
    shifted[:, 0] *= 1.3  # a new scanner reads mean radius 30 % larger
    for label, rows in (("holdout rows", x_test), ("rows from a recalibrated scanner", shifted)):
        report = compare(reference, {name: rows[:, i] for i, name in enumerate(names)})
        moved = [name for name, feature in report.features.items() if feature.drifted]
        console.print(
            f"{label}: drifted={report.drifted}, {report.n_drifted} of {len(names)} features"
            + (f" ({', '.join(moved)}: {report.features[moved[0]].reason})" if moved else "")
        )
    console.print("(`mlgate drift REFERENCE CURRENT --html report.html` does this for files)")


def _serve_canary(ws: Workspace, settings: Settings, rows: Any) -> None:
    """Deploy a canary, serve it for real on a free loopback port, send traffic, show it."""
    import threading
    import time
    from collections import Counter

    import httpx
    import uvicorn

    from mlgate.serving.app import ServeConfig, create_app
    from mlgate.serving.endpoints import EndpointStore
    from mlgate.serving.feedback import read_predictions
    from mlgate.serving.spec import parse_endpoint_yaml

    spec = parse_endpoint_yaml(
        "name: breast-cancer\n"
        "route:\n"
        "  split:\n"
        "    sticky_key: user_id\n"
        "    variants: [{target: champion, weight: 80}, {target: 1, weight: 20}]\n"
    )
    deployed = EndpointStore(ws.store, ws.registry, ws.log, ws.clock).deploy(
        spec, actor=settings.actor
    )
    console.print(
        f"deployed endpoint revision {deployed.revision} (ledger entry {deployed.ledger_seq})"
    )
    app = create_app(settings, ServeConfig(poll_interval_s=0.2, seed=7))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not (server.started and server.servers) and time.monotonic() < deadline:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            served: Counter[str] = Counter()
            first: dict[str, str] = {}
            for i in range(60):
                user = f"user-{i % 20}"
                body = {
                    "id": f"demo-{i}",
                    "parameters": {"user_id": user},
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP64",
                            "shape": [1, 30],
                            "data": [float(v) for v in rows[i % len(rows)]],
                        }
                    ],
                }
                reply = client.post("/v2/models/breast-cancer/infer", json=body)
                reply.raise_for_status()
                version = reply.json()["model_version"]
                served[version] += 1
                if first.setdefault(user, version) != version:
                    raise RuntimeError(f"sticky routing moved {user}")
            console.print(
                f"60 requests from 20 users: version 2 answered {served['2']}, version 1 "
                f"answered {served['1']}; every user kept their version"
            )
            feedback = [{"request_id": f"demo-{i}", "label": 1} for i in range(10)]
            client.post("/v2/models/breast-cancer/feedback", json={"feedback": feedback})
            bad = client.post("/v2/models/breast-cancer/infer", json={"inputs": []})
            console.print(f"a malformed request gets {bad.status_code}: {bad.json()['error']}")
    finally:
        server.should_exit = True
        thread.join(30)
    logged = read_predictions(ws.store, "breast-cancer")
    console.print(f"prediction log: {len(logged)} requests recorded with version and route")


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
