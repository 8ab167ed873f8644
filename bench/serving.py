"""Serving benchmark: mlgate beside Seldon MLServer, router cost, adaptive batching, overload.

Run from the repository root::

    .venv/bin/python -m bench.serving --write BENCHMARKS.md     # the full run, under 20 minutes
    .venv/bin/python -m bench.serving --quick                   # a smoke run of about a minute
    .venv/bin/python -m bench.serving --skip-mlserver           # mlgate alone

Every server is its own process (``mlgate serve``, the real CLI, and ``mlserver start``);
all run side by side and are loaded one at a time, in rotating order, by ``wrk`` on the
same machine. The machine is shared and the client needs CPU too, so compare the ratios
of one run, not absolute rates. See ``bench/README.md`` for what each row measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._report import publish, write_marked_section

__all__ = ["main", "render_markdown", "rows", "run", "write_section"]

MARK_START = "<!-- serving:start -->"
MARK_END = "<!-- serving:end -->"
ACTOR = "user:bench@mlgate"
SEED = 20_251_127
N_FEATURES = 20
MLP_DIMS = (64, 128, 64, 2)
# A model whose own compute, not HTTP, bounds the server: ~19 M multiply-adds a row.
HEAVY_DIMS = (512, 4096, 4096, 2)
BODIES = 64  # distinct request bodies (feature rows and sticky users) per target
P99_LIMIT_S = 0.050
HERE = Path(__file__).resolve().parent
LUA_SCRIPT = HERE / "serving_wrk.lua"
DEFAULT_MLSERVER_VENV = HERE / "out" / "mlserver-venv"
MLSERVER_PACKAGES = ("mlserver", "mlserver-sklearn", "uvloop<0.22")  # 1.7.1 crashes on 0.23
MLSERVER_BATCH = {"max_batch_size": 32, "max_batch_time": 0.005}
# _refusals' keys for mlgate's own count of answered requests, and of those within 50 ms
OWN_OK, OWN_OK_50MS = "answered ok", "answered ok within 50 ms"
SAMPLES = "_samples"  # a paced run's (status, latency) pairs, kept only to be pooled
FIXED_ROUNDS = 2
PACED_START_S = 0.2  # serving_wrk.lua starts every schedule 200 ms after wrk starts
STARTUP_TIMEOUT_S = 180.0

LR_ENDPOINTS = {
    "lr-direct": """\
name: lr-direct
model: lr
route: champion
logging: {sample_rate: 0.0}
""",
    "lr-router": """\
name: lr-router
model: lr
route:
  split:
    sticky_key: user
    variants:
      - {target: champion, weight: 90}
      - {target: 2, weight: 10}
shadow:
  - {target: 3, fraction: 1.0}
logging: {sample_rate: 1.0}
""",
    "lr-guard": """\
name: lr-guard
model: lr
route: champion
timeout_ms: 50
logging: {sample_rate: 0.0}
""",
}
HEAVY_ENDPOINTS = {
    "heavy-direct": """\
name: heavy-direct
model: heavy
route: 1
logging: {sample_rate: 0.0}
""",
    "heavy-unbatched": """\
name: heavy-unbatched
model: heavy
route: 1
batching: {max_batch_size: 1, inline_budget_ms: 0}
logging: {sample_rate: 0.0}
""",
    "heavy-guard": """\
name: heavy-guard
model: heavy
route: 1
timeout_ms: 50
logging: {sample_rate: 0.0}
""",
}
MLP_ENDPOINTS = {
    "mlp-batched": """\
name: mlp-batched
model: mlp
route: 1
batching: {max_batch_size: 64, max_wait_ms: 0, inline_budget_ms: 0}
logging: {sample_rate: 0.0}
""",
    "mlp-unbatched": """\
name: mlp-unbatched
model: mlp
route: 1
batching: {max_batch_size: 1, inline_budget_ms: 0}
logging: {sample_rate: 0.0}
""",
}


def _c32(row: dict[str, Any]) -> str:
    """The 32-connection point; refusals (503s from the concurrency limit) said, not hidden."""
    if not row["c32_rps"]:
        return "—"
    text = f"{_rate(row['c32_rps'])}, {_ms(row['c32_p99_s'])}"
    refused = row.get("c32_non_2xx") or 0
    return text + (f" ({refused:,} non-2xx)" if refused else "")


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _rotate(items: Sequence[Any], turn: int) -> list[Any]:
    k = turn % len(items) if items else 0
    return [*items[k:], *items[:k]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# -- tools: wrk, the MLServer venv, py-spy -------------------------------------------------


def ensure_wrk() -> str:
    """The wrk executable, installed with apt-get when missing and running as root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SystemExit(
            "error: wrk is not installed and cannot be installed here (needs root and apt-get); "
            "install it (Debian/Ubuntu: apt-get install wrk) or run with --client python"
        )
    say("installing wrk with apt-get (apt-get update, then apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "wrk"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(
                f"error: `{' '.join(argv)}` failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-500:]}; install wrk by hand or run "
                "with --client python"
            )
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("error: apt-get installed wrk but it is not on PATH")
    return found


def _wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=30)
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else "?"
    )


def ensure_mlserver(venv: Path) -> dict[str, str]:
    """MLServer and its scikit-learn runtime in their own venv; versions of what matters."""
    python, mlserver = venv / "bin" / "python", venv / "bin" / "mlserver"
    sklearn_pin = f"scikit-learn=={importlib.metadata.version('scikit-learn')}"
    if not mlserver.exists():
        say(f"creating the MLServer venv at {venv} (first run only, about a minute)")
        try:
            subprocess.run(
                [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True
            )
            packages = [*MLSERVER_PACKAGES, sklearn_pin]  # same pickles as the estimator's
            say(f"  pip install {' '.join(shlex.quote(p) for p in packages)}")
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
                + packages,
                capture_output=True,
                text=True,
                timeout=1200,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise SystemExit(f"error: cannot create the MLServer venv at {venv}: {exc}") from exc
        if done.returncode != 0 or not mlserver.exists():
            shutil.rmtree(venv, ignore_errors=True)
            raise SystemExit(
                f"error: pip could not install MLServer into {venv}: "
                f"{(done.stderr or done.stdout).strip()[-800:]}\n"
                "run with --skip-mlserver to measure mlgate alone"
            )
    probe = (
        "import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
        "('mlserver', 'mlserver-sklearn', 'scikit-learn', 'numpy', 'uvloop', 'uvicorn', "
        "'fastapi')}))"
    )
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(
            f"error: the MLServer venv at {venv} is broken ({done.stderr.strip()[-300:]}); "
            "delete it to have it rebuilt, or run with --skip-mlserver"
        )
    versions: dict[str, str] = json.loads(done.stdout)
    ours = importlib.metadata.version("scikit-learn")
    if versions["scikit-learn"] != ours:
        say(
            f"  warning: the MLServer venv has scikit-learn {versions['scikit-learn']}, mlgate's "
            f"has {ours}; the joblib file may load differently (delete {venv} to rebuild it)"
        )
    return versions


def ensure_py_spy(venv: Path) -> Path:
    exe = venv / "bin" / "py-spy"
    if exe.exists():
        return exe
    say(f"installing py-spy into {venv} (for --profile)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "py-spy"],
            check=True,
            capture_output=True,
            timeout=600,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise SystemExit(f"error: cannot install py-spy into {venv}: {exc}") from exc
    return exe


# -- the models ------------------------------------------------------------------------------


@dataclass
class Models:
    lr: list[Any]  # fitted LogisticRegression v1 (champion), v2 (canary), v3 (shadow)
    lr_rows: np.ndarray[Any, Any]  # feature rows the requests carry
    mlp: bytes
    mlp_rows: np.ndarray[Any, Any]
    heavy: bytes
    heavy_rows: np.ndarray[Any, Any]


def build_models(seed: int, heavy_dims: Sequence[int] = HEAVY_DIMS) -> Models:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    x, y = make_classification(
        n_samples=4000, n_features=N_FEATURES, n_informative=10, random_state=seed
    )
    lr = [
        LogisticRegression(C=c, max_iter=2000).fit(x, y)  # same features, different weights
        for c in (1.0, 0.1, 10.0)
    ]
    rng = np.random.default_rng(seed)
    # Six decimals, as a client would send them; the reference answers use the same values.
    lr_rows = np.round(rng.standard_normal((BODIES, N_FEATURES)), 6)
    mlp_rows = np.round(rng.standard_normal((BODIES, MLP_DIMS[0])), 6).astype(np.float32)
    heavy_rows = np.round(rng.standard_normal((BODIES, heavy_dims[0])), 4).astype(np.float32)
    return Models(
        lr=lr,
        lr_rows=lr_rows,
        mlp=build_mlp(seed),
        mlp_rows=mlp_rows,
        heavy=build_mlp(seed + 2, heavy_dims),
        heavy_rows=heavy_rows,
    )


def build_mlp(seed: int, dims: Sequence[int] = MLP_DIMS) -> bytes:
    """An MLP (64 -> 128 -> 64 -> 2 by default) with Relu and a final Softmax, dynamic
    batch, float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed + 1)
    nodes, weights = [], []
    current = "input"
    layers = list(zip(dims, dims[1:], strict=False))
    for i, (fan_in, fan_out) in enumerate(layers):
        w = (rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in)).astype(np.float32)
        b = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes.append(helper.make_node("MatMul", [current, f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]))
        current = f"a{i}"
        if i < len(layers) - 1:
            nodes.append(helper.make_node("Relu", [current], [f"r{i}"]))
            current = f"r{i}"
    nodes.append(helper.make_node("Softmax", [current], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", dims[0]])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 2])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # opset 17's IR version: every onnxruntime since 1.13 reads it
    onnx.checker.check_model(model)
    data: bytes = model.SerializeToString()
    return data


def _lr_body(row: np.ndarray[Any, Any], user: str, output: str) -> dict[str, Any]:
    return {
        "parameters": {"user": user},
        "inputs": [
            {
                "name": "input",
                "datatype": "FP64",
                "shape": [1, N_FEATURES],
                "data": [float(v) for v in row],
            }
        ],
        "outputs": [{"name": output}],
    }


def _mlp_body(row: np.ndarray[Any, Any]) -> dict[str, Any]:
    return {
        "inputs": [
            {
                "name": "input",
                "datatype": "FP32",
                "shape": [1, int(row.size)],
                "data": [round(float(v), 6) for v in row],
            }
        ]
    }


def write_bodies(models: Models, directory: Path) -> dict[str, Path]:
    """One body per line; mlgate and MLServer get the same rows, users and JSON layout."""
    files = {
        "lr-mlgate": [
            _lr_body(r, f"user-{i}", "probabilities") for i, r in enumerate(models.lr_rows)
        ],
        "lr-mlserver": [
            _lr_body(r, f"user-{i}", "predict_proba") for i, r in enumerate(models.lr_rows)
        ],
        "mlp": [_mlp_body(r) for r in models.mlp_rows],
        "heavy": [_mlp_body(r) for r in models.heavy_rows],
    }
    paths = {}
    for name, bodies in files.items():
        path = directory / f"bodies-{name}.jsonl"
        path.write_text(
            "".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies), encoding="utf-8"
        )
        paths[name] = path
    return paths


# -- the workspace ---------------------------------------------------------------------------


def prepare_workspace(home: Path, models: Models) -> dict[str, Any]:
    """A fresh MLGATE_HOME on SQLite: lr v1..v3 (v1 champion), mlp v1, heavy v1, endpoints."""
    import skops.io

    from mlgate.config import Settings
    from mlgate.serving.endpoints import EndpointStore
    from mlgate.serving.spec import parse_endpoint_yaml
    from mlgate.workspace import Workspace

    settings = Settings.resolve(home=home, actor=ACTOR)
    Workspace.init(settings)
    ws = Workspace.open(settings)
    try:
        for estimator, c in zip(models.lr, (1.0, 0.1, 10.0), strict=True):
            ws.registry.register("lr", skops.io.dumps(estimator), actor=ACTOR, params={"C": c})
        ws.registry.move_alias("lr", "champion", 1, actor=ACTOR)
        ws.registry.register("mlp", models.mlp, actor=ACTOR)
        ws.registry.register("heavy", models.heavy, actor=ACTOR)
        store = EndpointStore(ws.store, ws.registry, ws.log, ws.clock)
        for text in (*LR_ENDPOINTS.values(), *MLP_ENDPOINTS.values(), *HEAVY_ENDPOINTS.values()):
            store.deploy(parse_endpoint_yaml(text), actor=ACTOR)
    finally:
        ws.close()
    return {"home": str(settings.home), "store": settings.store_url}


# -- server processes ------------------------------------------------------------------------


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def process_tree(root: int) -> list[int]:
    children = _proc_children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of the process and its descendants (threads included), from /proc."""
    ticks = 0
    for pid in process_tree(root):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        ticks += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_bytes(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total


class Server:
    """One server process (and its children), started in its own session."""

    def __init__(
        self,
        key: str,
        label: str,
        argv: list[str],
        *,
        port: int,
        env: dict[str, str],
        cwd: Path,
        log: Path,
        ready_paths: Sequence[str],
    ) -> None:
        self.key, self.label, self.argv, self.port = key, label, argv, port
        self.env, self.cwd, self.log, self.ready_paths = env, cwd, log, list(ready_paths)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout_s: float) -> float:
        started = time.monotonic()
        pending = list(self.ready_paths)
        while pending:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(
                    f"error: {self.label} exited with {self.proc.returncode} while starting:\n"
                    f"{self.log_tail()}"
                )
            if time.monotonic() - started > timeout_s:
                raise SystemExit(
                    f"error: {self.label} was not ready after {timeout_s:.0f} s "
                    f"({self.base}{pending[0]}):\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(self.base + pending[0], timeout=2) as reply:
                    if reply.status == 200:
                        pending.pop(0)
                        continue
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return time.monotonic() - started

    def cpu_seconds(self) -> float:
        return tree_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        return tree_rss_bytes(self.pid)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)  # the session this script created
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)


def mlgate_server(
    workers: int, workdir: Path, workspace: dict[str, Any], endpoints: Sequence[str]
) -> Server:
    exe = Path(sys.executable).with_name("mlgate")
    argv = [str(exe) if exe.exists() else shutil.which("mlgate") or "mlgate"]
    port = _free_port()
    env = {
        **os.environ,
        "MLGATE_HOME": workspace["home"],
        "MLGATE_STORE": workspace["store"],
        "MLGATE_ACTOR": ACTOR,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if workers > 1:  # `mlgate serve` would make one in /tmp; keep it in the workdir
        metrics = workdir / f"metrics-w{workers}"
        metrics.mkdir()
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
    argv += ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    ready = ["/v2/health/ready", *(f"/v2/models/{name}/ready" for name in endpoints)]
    return Server(
        f"mlgate-w{workers}",
        f"mlgate serve --workers {workers}",
        argv,
        port=port,
        env=env,
        cwd=workdir,
        log=workdir / f"mlgate-w{workers}.log",
        ready_paths=ready,
    )


@dataclass(frozen=True)
class MlserverConfig:
    key: str
    label: str
    parallel_workers: int
    batching: bool


def mlserver_configs(quick: bool) -> list[MlserverConfig]:
    configs = [
        MlserverConfig("mlserver.pw1", "MLServer (defaults: 1 inference worker process)", 1, False),
        MlserverConfig("mlserver.pw1.batch", "MLServer, adaptive batching", 1, True),
        MlserverConfig("mlserver.pw0", "MLServer, parallel_workers 0 (in-process)", 0, False),
        MlserverConfig("mlserver.pw0.batch", "MLServer, parallel_workers 0 + batching", 0, True),
    ]
    return configs[:2] if quick else configs


def mlserver_server(config: MlserverConfig, venv: Path, workdir: Path, model_file: Path) -> Server:
    root = workdir / config.key
    (root / "lr").mkdir(parents=True)
    shutil.copy(model_file, root / "lr" / "model.joblib")
    http, grpc, metrics = _free_port(), _free_port(), _free_port()
    settings = {
        "host": "127.0.0.1",
        "http_port": http,
        "grpc_port": grpc,
        "metrics_port": metrics,
        "parallel_workers": config.parallel_workers,
        "debug": False,  # its default (True) writes an access-log line per request
        "gzip_enabled": False,  # responses are ~200 bytes; mlgate does not compress either
    }
    model: dict[str, Any] = {
        "name": "lr",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib"},
    }
    if config.batching:
        model |= MLSERVER_BATCH
    (root / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    (root / "lr" / "model-settings.json").write_text(json.dumps(model, indent=2), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLSERVER_", "PROMETHEUS_"))}
    return Server(
        config.key,
        config.label,
        [str(venv / "bin" / "mlserver"), "start", str(root)],
        port=http,
        env=env,
        cwd=root,
        log=workdir / f"{config.key}.log",
        ready_paths=["/v2/health/ready", "/v2/models/lr/ready"],
    )


# -- load generators ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    url: str
    bodies: Path
    connections: int
    duration_s: float
    rate: float | None = None  # total requests per second; None: closed loop
    keep_samples: bool = False  # paced runs: keep (status, latency) pairs for pooling


def _summarise(
    samples: list[tuple[int, float]],
    duration_s: float,
    extra: dict[str, Any],
    *,
    keep: bool = False,
) -> dict[str, Any]:
    statuses = Counter(status for status, _ in samples)
    latencies = [lat for _, lat in samples]
    ok = [lat for status, lat in samples if 200 <= status < 300]
    out: dict[str, Any] = {
        "requests": len(samples),
        "duration_s": duration_s,
        "rps": len(samples) / duration_s if duration_s > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": sum(v for k, v in statuses.items() if not 200 <= k < 300),
        "ok": len(ok),
        "ok_rps": len(ok) / duration_s if duration_s > 0 else 0.0,
    }
    if latencies:
        out |= {f"p{q}_s": percentile(latencies, q) for q in (50, 90, 99)}
        out["max_s"] = max(latencies)
    if ok:
        out |= {"ok_p50_s": percentile(ok, 50), "ok_p99_s": percentile(ok, 99)}
    if keep:
        out[SAMPLES] = samples
    return out | extra


def pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One fixed-rate result from rounds run at different times, their samples pooled.

    A p99 of one 12 s window on a shared machine moved by a millisecond from run to run
    (one busy second elsewhere is enough); rounds in rotated order spread that over
    every target alike, and pooling doubles the samples behind each percentile.
    """
    failed = next((run for run in runs if SAMPLES not in run), None)
    if failed is not None:
        return failed
    samples = [sample for run in runs for sample in run.pop(SAMPLES)]
    last = runs[-1]
    extra = {k: last[k] for k in ("latency_from", "connections", "offered_rps", "rss_bytes")}
    for key in ("socket_errors", "bad_bodies"):
        if key in last:
            extra[key] = sum(run[key] for run in runs)
    out = _summarise(samples, sum(run["duration_s"] for run in runs), extra)
    cpu = sum(run["server_cpu_s"] for run in runs)
    out |= {"server_cpu_s": cpu, "rounds": len(runs)}
    if out["requests"]:
        out["cpu_per_request_s"] = cpu / out["requests"]
    return out


class WrkClient:
    """wrk with bench/serving_wrk.lua: closed loop on one thread, or paced (wrk2's model)."""

    name = "wrk"

    def __init__(self, exe: str) -> None:
        self.exe = exe
        self.version = _wrk_version(exe)

    def run(self, load: Load, scratch: Path) -> dict[str, Any]:
        out = scratch / "wrk-out.txt"
        out.unlink(missing_ok=True)
        threads = load.connections if load.rate else 1
        env = {**os.environ, "BENCH_BODIES": str(load.bodies), "BENCH_OUT": str(out)}
        if load.rate:
            env |= {"BENCH_RATE": repr(float(load.rate)), "BENCH_THREADS": str(threads)}
        duration = max(1, round(load.duration_s))
        argv = [
            self.exe,
            f"-t{threads}",
            f"-c{load.connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(LUA_SCRIPT),
            load.url,
        ]
        try:
            done = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=duration + 60
            )
        except subprocess.TimeoutExpired:
            return {"error": f"wrk did not finish within {duration + 60} s"}
        if done.returncode != 0 or not out.exists():
            return {
                "error": f"wrk failed ({done.returncode}): {(done.stderr or done.stdout)[-300:]}"
            }
        lines = out.read_text().splitlines()
        summary = json.loads(lines[0])
        socket_errors = sum(
            summary[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
        )
        wrk_duration = summary["duration_us"] / 1e6
        if not load.rate:
            requests = summary["requests"]
            return {
                "requests": requests,
                "duration_s": wrk_duration,
                "rps": requests / wrk_duration,
                "p50_s": summary["p50_us"] / 1e6,
                "p90_s": summary["p90_us"] / 1e6,
                "p99_s": summary["p99_us"] / 1e6,
                "max_s": summary["max_us"] / 1e6,
                "non_2xx": summary["status_errors"],  # wrk counts statuses above 399
                "socket_errors": socket_errors,
                "latency_from": "write (closed loop)",
            }
        samples = []
        for line in lines[1:]:
            status, micros = line.split()
            samples.append((int(status), int(micros) / 1e6))
        return _summarise(
            samples,
            wrk_duration - PACED_START_S,
            {"socket_errors": socket_errors, "latency_from": "intended send time"},
            keep=load.keep_samples,
        )


class PythonClient:
    """A small asyncio + httpx load generator for machines without wrk (and for tests).

    Same two modes as the wrk script; much slower than wrk, so it takes CPU from the
    server. Every 200 response body is checked to hold outputs.
    """

    name = "python (httpx)"
    version = ""

    def __init__(self, max_requests: int) -> None:
        try:
            import httpx
        except ImportError as exc:  # a dev dependency
            raise SystemExit(
                "error: --client python needs httpx: .venv/bin/pip install httpx"
            ) from exc
        self.version = f"httpx {httpx.__version__}"
        self.max_requests = max_requests

    def run(self, load: Load, scratch: Path) -> dict[str, Any]:
        return asyncio.run(self._run(load))

    async def _run(self, load: Load) -> dict[str, Any]:
        import httpx

        bodies = [b for b in load.bodies.read_bytes().splitlines() if b]
        loop = asyncio.get_running_loop()
        samples: list[tuple[int, float]] = []
        counts = {"issued": 0, "bad_bodies": 0, "socket_errors": 0}
        t0 = loop.time() + 0.05
        end = t0 + load.duration_s
        limits = httpx.Limits(
            max_connections=load.connections, max_keepalive_connections=load.connections
        )
        headers = {"content-type": "application/json"}

        async def worker(index: int, client: httpx.AsyncClient) -> None:
            k = 0
            while counts["issued"] < self.max_requests:
                if load.rate:
                    slot = t0 + (index + k * load.connections) / load.rate
                    k += 1
                    if slot >= end:
                        return
                    wait = slot - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    begin = loop.time() if wait > 0 else slot
                else:
                    begin = loop.time()
                    if begin >= end:
                        return
                counts["issued"] += 1
                body = bodies[(index + counts["issued"]) % len(bodies)]
                try:
                    reply = await client.post(load.url, content=body, headers=headers)
                except httpx.HTTPError:
                    counts["socket_errors"] += 1
                    continue
                samples.append((reply.status_code, loop.time() - begin))
                if reply.status_code == 200 and not _is_answer(reply.content):
                    counts["bad_bodies"] += 1

        async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
            await asyncio.sleep(max(0.0, t0 - loop.time()))
            await asyncio.gather(*(worker(i, client) for i in range(load.connections)))
        duration = max(loop.time() - t0, 1e-9)
        source = "intended send time" if load.rate else "write (closed loop)"
        return _summarise(
            samples,
            duration,
            {
                "socket_errors": counts["socket_errors"],
                "bad_bodies": counts["bad_bodies"],
                "latency_from": source,
            },
            keep=load.keep_samples,
        )


def _is_answer(body: bytes) -> bool:
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    outputs = doc.get("outputs") if isinstance(doc, dict) else None
    return bool(outputs) and all(isinstance(o.get("data"), list) for o in outputs)


# -- targets and measurements -------------------------------------------------------------------


@dataclass
class Target:
    key: str
    family: str  # "lr" | "mlp"
    label: str
    server: Server
    path: str
    bodies: Path
    system: str  # "mlgate" | "mlserver"
    results: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.base + self.path


def measure(client: Any, target: Target, load: Load, scratch: Path) -> dict[str, Any]:
    """One load run; the server tree's CPU time is read from /proc before and after."""
    cpu_before = target.server.cpu_seconds()
    result: dict[str, Any] = client.run(load, scratch)
    cpu = target.server.cpu_seconds() - cpu_before
    result |= {"connections": load.connections, "server_cpu_s": cpu}
    if load.rate:
        result["offered_rps"] = load.rate
    if result.get("requests"):
        result["cpu_per_request_s"] = cpu / result["requests"]
    result["rss_bytes"] = target.server.rss_bytes()
    return result


def _passes(result: dict[str, Any]) -> bool:
    return (
        "error" not in result
        and result.get("requests", 0) > 0
        and result["p99_s"] <= P99_LIMIT_S
        and result.get("non_2xx", 0) == 0
        and result.get("socket_errors", 0) == 0
    )


def best_point(sweep: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The highest-throughput sweep point with p99 <= 50 ms and no errors."""
    passing = [r for r in sweep.values() if _passes(r)]
    return max(passing, key=lambda r: r["rps"]) if passing else None


def peak_point(sweep: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    points = [r for r in sweep.values() if "error" not in r and r.get("requests")]
    return max(points, key=lambda r: r["rps"]) if points else None


def _fmt_point(r: dict[str, Any]) -> str:
    if "error" in r:
        return "error"
    return f"{r['rps']:,.0f}/s p99 {r['p99_s'] * 1e3:.0f} ms"


def sample_rss(server: Server, every_s: float, stop: threading.Event, out: list[Any]) -> None:
    start = time.monotonic()
    while not stop.is_set():
        out.append((time.monotonic() - start, server.rss_bytes()))
        stop.wait(every_s)


# -- correctness --------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.loads(reply.read()), dict(reply.headers.items())


def _output(doc: dict[str, Any], name: str) -> np.ndarray[Any, Any]:
    for out in doc["outputs"]:
        if out["name"] == name:
            return np.asarray(out["data"], dtype=np.float64).reshape(out["shape"])
    raise KeyError(f"no output {name!r} in {sorted(o['name'] for o in doc['outputs'])}")


def check_answers(models: Models, targets: Sequence[Target]) -> dict[str, Any]:
    """The same request to every server: probabilities must agree within 1e-6 (FP64)."""
    import onnxruntime

    rows = models.lr_rows[:3]
    reference = models.lr[0].predict_proba(rows)
    body = _lr_body(rows[0], "user-check", "probabilities")
    body["inputs"][0] |= {"shape": [3, N_FEATURES], "data": [float(v) for v in rows.ravel()]}
    answers: dict[str, float] = {}
    for target in targets:
        if target.family != "lr" or target.key.endswith(".router"):
            continue
        request = json.loads(json.dumps(body))
        name = "predict_proba" if target.system == "mlserver" else "probabilities"
        request["outputs"] = [{"name": name}]
        doc, _ = _post(target.url, request)
        answers[target.key] = float(np.abs(_output(doc, name) - reference).max())
    # The router answers from the version its sticky split picked; it must say which.
    routed: dict[str, Any] = {}
    for target in targets:
        if target.key.endswith(".router"):
            doc, headers = _post(target.url, body)
            version = int(headers.get("x-mlgate-version", "0"))
            expected = models.lr[version - 1].predict_proba(rows) if version in (1, 2) else None
            routed[target.key] = {
                "version": version,
                "max_abs_diff": None
                if expected is None
                else float(np.abs(_output(doc, "probabilities") - expected).max()),
            }
    mlp: dict[str, float] = {}
    for family, model, family_rows in (
        ("mlp", models.mlp, models.mlp_rows),
        ("heavy", models.heavy, models.heavy_rows),
    ):
        session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
        three = family_rows[:3]
        (reference_out,) = session.run(None, {"input": three})
        three_body = _mlp_body(three[0])
        three_body["inputs"][0] |= {
            "shape": [3, int(three.shape[1])],
            "data": [round(float(v), 6) for v in three.ravel()],
        }
        for target in targets:
            if target.family == family:
                doc, _ = _post(target.url, three_body)
                out = _output(doc, "probabilities")
                mlp[target.key] = float(np.abs(out - reference_out).max())
    return {
        "lr_max_abs_diff": answers,
        "router": routed,
        "mlp_max_abs_diff": mlp,
        "lr_same_probabilities": bool(answers) and all(d <= 1e-6 for d in answers.values()),
        "router_answers_match_their_version": all(
            r["max_abs_diff"] is not None and r["max_abs_diff"] <= 1e-6 for r in routed.values()
        ),
        "mlp_same_outputs": bool(mlp) and all(d <= 1e-5 for d in mlp.values()),
    }


# -- the run ----------------------------------------------------------------------------------


@dataclass
class Plan:
    connections: list[int]
    duration_s: float
    fixed_s: float
    warmup_s: float
    overload_s: float
    rate: float
    rate_connections: int
    overload_connections: int
    workers: list[int]
    mlserver: bool
    profile_s: float


def plan_from(args: argparse.Namespace) -> Plan:
    quick = args.quick
    duration = args.duration or (2.0 if quick else 6.0)
    connections = args.connections or ([8, 32] if quick else [1, 4, 8, 16, 32, 64])
    return Plan(
        connections=connections,
        duration_s=duration,
        fixed_s=args.fixed_duration or (3.0 if quick else 2 * duration),
        warmup_s=1.0 if quick else 3.0,
        overload_s=args.overload_duration or (6.0 if quick else 30.0),
        rate=args.rate,
        rate_connections=args.rate_connections,
        overload_connections=args.overload_connections,
        workers=args.workers or ([1] if quick else [1, 2]),
        mlserver=not args.skip_mlserver,
        profile_s=args.profile,
    )


def _meta(command: str, client: Any, mlserver_versions: dict[str, str] | None) -> dict[str, Any]:
    packages = ("fastapi", "uvicorn", "uvloop", "httptools", "scikit-learn", "onnxruntime", "numpy")
    return {
        "command": command,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "mlgate": importlib.metadata.version("mlgate"),
        "packages": {p: importlib.metadata.version(p) for p in packages},
        "client": client.name,
        "client_version": client.version,
        "mlserver": mlserver_versions,
    }


def run(args: argparse.Namespace, command: str) -> dict[str, Any]:
    plan = plan_from(args)
    client: Any
    if args.client == "wrk":
        client = WrkClient(ensure_wrk())
    else:
        client = PythonClient(args.max_requests)
    mlserver_versions = ensure_mlserver(args.mlserver_venv) if plan.mlserver else None
    py_spy = ensure_py_spy(args.tools_venv) if plan.profile_s else None
    results: dict[str, Any] = {"meta": _meta(command, client, mlserver_versions)}
    results["plan"] = plan.__dict__
    base = args.workdir or Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="mlgate-serving-", dir=base))
    try:
        with contextlib.ExitStack() as stack:
            _run_in(workdir, plan, client, results, stack, args, py_spy)
    finally:
        if args.keep:
            say(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results["meta"]["loadavg_end"] = os.getloadavg()
    results["rows"] = rows(results)
    return results


def _run_in(
    workdir: Path,
    plan: Plan,
    client: Any,
    results: dict[str, Any],
    stack: contextlib.ExitStack,
    args: argparse.Namespace,
    py_spy: Path | None,
) -> None:
    import joblib

    t_start = time.monotonic()
    say(f"[setup] models and a fresh MLGATE_HOME (SQLite) in {workdir}")
    models = build_models(args.seed, args.heavy_dims)
    heavy_name = "MLP " + " → ".join(str(d) for d in args.heavy_dims)
    bodies = write_bodies(models, workdir)
    workspace = prepare_workspace(workdir / "home", models)
    model_file = workdir / "lr.joblib"
    joblib.dump(models.lr[0], model_file)  # MLServer's sklearn runtime format

    servers: list[Server] = []
    targets: list[Target] = []
    endpoints = ["lr", *LR_ENDPOINTS, *MLP_ENDPOINTS, *HEAVY_ENDPOINTS]
    for workers in plan.workers:
        server = mlgate_server(workers, workdir, workspace, endpoints)
        servers.append(server)
        w = f"w{workers}"
        for endpoint, suffix, label in (
            ("lr", "zero", "zero-config champion (logs every request, the default)"),
            ("lr-direct", "direct", "one version, logging off"),
            ("lr-router", "router", "90/10 sticky canary + 100 % shadow + logging"),
        ):
            targets.append(
                Target(
                    f"mlgate.{w}.{suffix}",
                    "lr",
                    f"mlgate --workers {workers}, {label}",
                    server,
                    f"/v2/models/{endpoint}/infer",
                    bodies["lr-mlgate"],
                    "mlgate",
                )
            )
        if workers == plan.workers[0]:
            for family, endpoint, suffix, label in (
                ("mlp", "mlp-batched", "batched", "adaptive batching (max_batch_size 64)"),
                ("mlp", "mlp-unbatched", "unbatched", "batching off (max_batch_size 1)"),
                ("heavy", "heavy-direct", "direct", "default batching (max_batch_size 64)"),
                ("heavy", "heavy-unbatched", "unbatched", "batching off (max_batch_size 1)"),
            ):
                model = f"{heavy_name}, " if family == "heavy" else ""
                targets.append(
                    Target(
                        f"{family}.{w}.{suffix}",
                        family,
                        f"mlgate --workers {workers}, {model}{label}",
                        server,
                        f"/v2/models/{endpoint}/infer",
                        bodies[family],
                        "mlgate",
                    )
                )
    if plan.mlserver:
        for config in mlserver_configs(args.quick):
            server = mlserver_server(config, args.mlserver_venv, workdir, model_file)
            servers.append(server)
            targets.insert(
                len([t for t in targets if t.system == "mlserver"]),
                Target(
                    config.key,
                    "lr",
                    config.label,
                    server,
                    "/v2/models/lr/infer",
                    bodies["lr-mlserver"],
                    "mlserver",
                ),
            )
    guard = Target(
        f"mlgate.w{plan.workers[0]}.guard",
        "lr",
        f"mlgate --workers {plan.workers[0]}, one version, timeout_ms 50, logging off",
        servers[0],
        "/v2/models/lr-guard/infer",
        bodies["lr-mlgate"],
        "mlgate",
    )

    say(f"[setup] starting {len(servers)} servers: " + ", ".join(s.label for s in servers))
    for server in servers:
        stack.callback(server.stop)
        server.start()
    startup = {s.key: round(s.wait_ready(STARTUP_TIMEOUT_S), 2) for s in servers}
    results["startup_s"] = startup
    results["servers"] = {
        s.key: {"label": s.label, "argv": s.argv[1:], "rss_idle_bytes": s.rss_bytes()}
        for s in servers
    }
    say("[setup] ready after " + ", ".join(f"{k} {v:.1f} s" for k, v in startup.items()))

    heavy_guard = Target(
        f"heavy.w{plan.workers[0]}.guard",
        "heavy",
        f"mlgate --workers {plan.workers[0]}, {heavy_name}, timeout_ms 50",
        servers[0],
        "/v2/models/heavy-guard/infer",
        bodies["heavy"],
        "mlgate",
    )
    guards = [guard, heavy_guard]

    say("[check] one 3-row request to every server, compared with the local models")
    results["answers"] = check_answers(models, [*targets, *guards])
    results["checks"] = {k: v for k, v in results["answers"].items() if isinstance(v, bool)}
    say(f"[check] {results['checks']}")

    scratch = workdir
    for target in [*targets, *guards]:
        measure(client, target, Load(target.url, target.bodies, 32, plan.warmup_s), scratch)
    say(
        f"[warm-up] {plan.warmup_s:.0f} s at 32 connections on each of "
        f"{len(targets) + len(guards)} targets"
    )

    total = len(plan.connections) * len(targets)
    done_runs = 0
    for turn, connections in enumerate(plan.connections):
        for target in _rotate(targets, turn):
            load = Load(target.url, target.bodies, connections, plan.duration_s)
            result = measure(client, target, load, scratch)
            target.results.setdefault("sweep", {})[str(connections)] = result
            done_runs += 1
            say(
                f"[sweep {done_runs}/{total}] {target.key:<20} c={connections:<3} "
                f"{_fmt_point(result)}"
                + (
                    f", {result['cpu_per_request_s'] * 1e3:.2f} ms CPU/req"
                    if "cpu_per_request_s" in result
                    else ""
                )
            )

    rounds: dict[str, list[dict[str, Any]]] = {}
    for round_ in range(FIXED_ROUNDS):
        for target in _rotate(targets, len(plan.connections) + round_):
            load = Load(
                target.url,
                target.bodies,
                plan.rate_connections,
                plan.fixed_s,
                plan.rate,
                keep_samples=True,
            )
            result = measure(client, target, load, scratch)
            rounds.setdefault(target.key, []).append(result)
            say(
                f"[fixed {plan.rate:.0f}/s, round {round_ + 1}/{FIXED_ROUNDS}] {target.key:<20} "
                + (
                    f"p50 {result['p50_s'] * 1e3:.1f} ms p99 {result['p99_s'] * 1e3:.1f} ms, "
                    f"{result['requests']} requests, non-2xx {result['non_2xx']}"
                    if "p99_s" in result
                    else str(result.get("error"))
                )
            )
    for target in targets:
        target.results["fixed"] = pooled(rounds[target.key])

    results["targets"] = {
        t.key: {"label": t.label, "family": t.family, "system": t.system, **t.results}
        for t in targets
    }
    if py_spy is not None:  # before the overload run, which may open circuit breakers
        router = next(t for t in targets if t.key.endswith(".router"))
        results["profile"] = _profile(py_spy, client, plan, router, scratch)
    results["overload"] = {}
    for prefix, g in (("", guard), ("heavy_", heavy_guard)):
        direct = next(t for t in targets if t.key == g.key.replace(".guard", ".direct"))
        # The default deadline first: the 50 ms one may open the version's circuit breaker.
        for name, target in (("default_deadline", direct), ("deadline_50ms", g)):
            results["overload"][prefix + name] = _overload(client, plan, direct, target, scratch)
    results["elapsed_s"] = time.monotonic() - t_start


def _overload(
    client: Any, plan: Plan, direct: Target, target: Target, scratch: Path
) -> dict[str, Any]:
    """Twice the measured capacity of the same server and model, paced; RSS sampled."""
    peak = peak_point(direct.results.get("sweep", {}))
    if peak is None:
        return {"skipped": f"{direct.key} has no successful sweep point to call capacity"}
    capacity = peak["rps"]
    offered = 2 * capacity
    say(
        f"[overload] {target.key}: {offered:,.0f} req/s offered (2 x {capacity:,.0f}) for "
        f"{plan.overload_s:.0f} s over {plan.overload_connections} connections"
    )
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    sampler = threading.Thread(
        target=sample_rss, args=(target.server, 0.25, stop, samples), daemon=True
    )
    sampler.start()
    before = _refusals(target)
    try:
        load = Load(target.url, target.bodies, plan.overload_connections, plan.overload_s, offered)
        result = measure(client, target, load, scratch)
    finally:
        stop.set()
        sampler.join()
    after = _refusals(target)
    result["refusals"] = {
        k: after[k] - before.get(k, 0.0) for k in after if after[k] != before.get(k)
    }
    result |= {"capacity_rps": capacity, "capacity_from": direct.key, "label": target.label}
    rss = [b for _, b in samples]
    if rss:
        quarter = max(1, len(rss) // 4)
        result["rss"] = {
            "samples": len(rss),
            "start_bytes": rss[0],
            "peak_bytes": max(rss),
            "end_bytes": rss[-1],
            "first_quarter_max_bytes": max(rss[:quarter]),
            "last_quarter_max_bytes": max(rss[-quarter:]),
        }
    say(
        "[overload] "
        + (
            f"{result.get('statuses')}, admitted p99 "
            f"{result.get('ok_p99_s', float('nan')) * 1e3:.1f} ms"
            if "statuses" in result
            else str(result.get("error"))
        )
    )
    return result


def _own_clock(counts: dict[str, float]) -> str:
    answered = counts.get(OWN_OK, 0.0)
    if not answered:
        return ""
    share = 100 * counts.get(OWN_OK_50MS, 0.0) / answered
    return (
        f". By mlgate's own clock (from reading a request to its answer) {share:.1f} % of "
        f"the {answered:,.0f} admitted requests were answered within 50 ms"
    )


def _refusals(target: Target) -> dict[str, float]:
    """mlgate's shed and timeout counters for the target's endpoint, from its /metrics.

    Also its own count of answered (ok) requests and of those it answered within 50 ms
    of reading them (the latency histogram's 0.05 s bucket): the server's side of the
    overload run, where the load generator's latency also holds the time a request
    waited before the server could read it.
    """
    endpoint = target.path.split("/")[3]
    try:
        with urllib.request.urlopen(target.server.base + "/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if f'endpoint="{endpoint}"' not in line:
            continue
        labels, _, value = line.rpartition(" ")
        for metric, key in (("mlgate_shed_total{", "shed"), ("mlgate_timeouts_total{", "timeout")):
            if line.startswith(metric):
                reason = labels.partition('reason="')[2].partition('"')[0]
                name = f"{key}:{reason}" if reason else key
                counts[name] = counts.get(name, 0.0) + float(value)
        if 'status="ok"' in line and (
            line.startswith("mlgate_request_latency_seconds_count{")
            or (line.startswith("mlgate_request_latency_seconds_bucket{") and 'le="0.05"' in line)
        ):
            name = OWN_OK if "_count{" in line else OWN_OK_50MS
            counts[name] = counts.get(name, 0.0) + float(value)
    return counts


def _profile(
    py_spy: Path, client: Any, plan: Plan, target: Target, scratch: Path
) -> dict[str, Any]:
    """py-spy on the first mlgate server while the router endpoint runs at 32 connections."""
    seconds = plan.profile_s
    raw = scratch / "profile.txt"
    say(f"[profile] py-spy record of {target.server.label} for {seconds:.0f} s ({target.key})")
    spy = subprocess.Popen(
        [
            str(py_spy),
            "record",
            "-p",
            str(target.server.pid),
            "-d",
            str(int(seconds)),
            "-r",
            "250",
            "-f",
            "raw",
            "-o",
            str(raw),
            "--threads",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    load = Load(target.url, target.bodies, 32, seconds + 2)
    result = measure(client, target, load, scratch)
    try:
        spy.wait(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()
    if not raw.exists():
        return {"error": "py-spy wrote no profile (needs ptrace permission)"}
    return {"run": result, **summarise_profile(raw.read_text())}


def summarise_profile(text: str, top: int = 25) -> dict[str, Any]:
    """Sample counts per frame from py-spy's raw (collapsed) output, event loop first.

    Samples of thread-pool workers waiting for work are dropped (py-spy cannot tell that
    wait from work). The event-loop thread (MainThread) is split into the HTTP stack
    (uvicorn, Starlette, FastAPI), mlgate's inference handler, and the rest (uvloop's C
    loop, other callbacks, background tasks).
    """
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    elsewhere: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    total = main_samples = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[-1].startswith("_worker (concurrent/futures/thread.py"):
            continue  # an idle pool thread blocked on its work queue
        total += n
        threads[frames[0]] += n
        if "MainThread" not in frames[0]:
            for frame in set(frames[1:]):
                if _is_mlgate_frame(frame):
                    elsewhere[frame] += n
            continue
        main_samples += n
        own[frames[-1]] += n
        for frame in set(frames[1:]):
            inclusive[frame] += n
        if any(f.startswith("create_app.<locals>.infer (") for f in frames):
            layers["mlgate_infer_handler"] += n
        elif any(f.startswith("RequestResponseCycle.run_asgi") for f in frames):
            layers["http_stack"] += n
        else:
            layers["loop_and_other"] += n
    mlgate = Counter({f: n for f, n in inclusive.items() if _is_mlgate_frame(f)})
    return {
        "samples": total,
        "main_thread_samples": main_samples,
        "threads": dict(threads.most_common()),
        "main_thread_layers": dict(layers),
        "own": own.most_common(top),
        "inclusive_mlgate": mlgate.most_common(top),
        "inclusive_mlgate_other_threads": elsewhere.most_common(top),
    }


def _is_mlgate_frame(frame: str) -> bool:
    return "mlgate/" in frame and "mlgate/cli/" not in frame


# -- the table --------------------------------------------------------------------------------


def _ms(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "—"
    return f"{seconds * 1e3:.1f} ms" if seconds >= 0.01 else f"{seconds * 1e3:.2f} ms"


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}/s"


def _elapsed(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _goal(met: bool) -> str:
    return "✅" if met else "❌ missed"


def _summary_of(entry: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    sweep = entry.get("sweep", {})
    best = best_point(sweep)
    peak = peak_point(sweep)
    at32 = sweep.get("32")
    fixed = entry.get("fixed", {})
    return {
        "best_rps": best["rps"] if best else None,
        "best_connections": best["connections"] if best else None,
        "best_p99_s": best["p99_s"] if best else None,
        "best_cpu_per_request_s": best.get("cpu_per_request_s") if best else None,
        "peak_rps": peak["rps"] if peak else None,
        "peak_connections": peak["connections"] if peak else None,
        "peak_p99_s": peak["p99_s"] if peak else None,
        "peak_cpu_per_request_s": peak.get("cpu_per_request_s") if peak else None,
        "c32_rps": at32.get("rps") if at32 else None,
        "c32_p99_s": at32.get("p99_s") if at32 else None,
        "c32_non_2xx": (at32.get("non_2xx") or 0) if at32 else 0,
        "c32_cpu_per_request_s": at32.get("cpu_per_request_s") if at32 else None,
        "fixed_p50_s": fixed.get("p50_s"),
        "fixed_p99_s": fixed.get("p99_s"),
        "fixed_non_2xx": fixed.get("non_2xx"),
        "fixed_cpu_per_request_s": fixed.get("cpu_per_request_s"),
    }


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Every table row as a dict; ``id`` is stable for tests and scripts."""
    out: list[dict[str, Any]] = []
    targets = results.get("targets", {})
    plan = results["plan"]
    summaries = {key: _summary_of(entry, plan) for key, entry in targets.items()}
    mlserver = {k: s for k, s in summaries.items() if targets[k]["system"] == "mlserver"}
    ms_best_key = max(
        (k for k in mlserver if mlserver[k]["best_rps"]),
        key=lambda k: mlserver[k]["best_rps"],
        default=None,
    )
    ms_best = mlserver[ms_best_key]["best_rps"] if ms_best_key else None
    ms_peak = max((s["peak_rps"] or 0 for s in mlserver.values()), default=0.0)
    for key, entry in targets.items():
        s = summaries[key]
        row: dict[str, Any] = {"id": f"target.{key}", "label": entry["label"], **s}
        if entry["family"] == "lr" and ms_best and s["best_rps"]:
            row["vs_mlserver_best"] = s["best_rps"] / ms_best
        out.append(row)
    if ms_best_key:
        out.append(
            {
                "id": "goal.mlserver_best",
                "target": ms_best_key,
                "best_rps": ms_best,
                "cpu_per_request_s": mlserver[ms_best_key]["best_cpu_per_request_s"],
                "c32_cpu_per_request_s": mlserver[ms_best_key]["c32_cpu_per_request_s"],
            }
        )
    for workers in plan["workers"]:
        w = f"w{workers}"
        router = summaries.get(f"mlgate.{w}.router")
        for base in ("zero", "direct"):
            baseline = summaries.get(f"mlgate.{w}.{base}")
            if not router or not baseline:
                continue
            added = (
                router["fixed_p99_s"] - baseline["fixed_p99_s"]
                if router["fixed_p99_s"] is not None and baseline["fixed_p99_s"] is not None
                else None
            )
            ratio = (
                router["best_rps"] / baseline["best_rps"]
                if router["best_rps"] and baseline["best_rps"]
                else None
            )
            out.append(
                {
                    "id": f"router_cost.{w}.vs_{base}",
                    "baseline": f"mlgate.{w}.{base}",
                    "router": f"mlgate.{w}.router",
                    "added_p99_s": added,
                    "throughput_ratio": ratio,
                    "met": (added is not None and added <= 1e-3)
                    or (ratio is not None and ratio >= 0.9),
                }
            )
    for row_id, family, on, off in (
        ("batching", "mlp.", ".batched", ".unbatched"),
        ("batching.heavy", "heavy.", ".direct", ".unbatched"),
    ):
        batched = next(
            (s for k, s in summaries.items() if k.startswith(family) and k.endswith(on)), None
        )
        unbatched = next(
            (s for k, s in summaries.items() if k.startswith(family) and k.endswith(off)), None
        )
        if not (batched and unbatched):
            continue
        ratio = (
            batched["best_rps"] / unbatched["best_rps"]
            if batched["best_rps"] and unbatched["best_rps"]
            else None
        )
        out.append(
            {
                "id": row_id,
                "batched_best_rps": batched["best_rps"],
                "unbatched_best_rps": unbatched["best_rps"],
                "ratio": ratio,
                "met": ratio is not None and ratio >= 3.0,
            }
        )
    for name, overload in results.get("overload", {}).items():
        if "skipped" in overload or "error" in overload:
            continue
        statuses = overload.get("statuses", {})
        rss = overload.get("rss", {})
        growth = rss["last_quarter_max_bytes"] - rss["first_quarter_max_bytes"] if rss else None
        others = {k: v for k, v in statuses.items() if k not in ("200", "503")}
        out.append(
            {
                "id": f"overload.{name}",
                "label": overload["label"],
                "offered_rps": overload["offered_rps"],
                "capacity_rps": overload["capacity_rps"],
                "answered_rps": overload["rps"],
                "ok_rps": overload.get("ok_rps", 0.0),
                "ok": overload.get("ok", 0),
                "shed_503": statuses.get("503", 0),
                "other_statuses": others,
                "socket_errors": overload.get("socket_errors", 0),
                "ok_p50_s": overload.get("ok_p50_s"),
                "ok_p99_s": overload.get("ok_p99_s"),
                "rss_growth_bytes": growth,
                "met_p99": overload.get("ok_p99_s") is not None
                and overload["ok_p99_s"] <= P99_LIMIT_S,
                "met_only_503": not others and overload.get("socket_errors", 0) == 0,
                "met_rss_flat": growth is not None and growth <= 16 * 2**20,
                "refusals": overload.get("refusals", {}),
            }
        )
    routers = [
        (k, s) for k, s in summaries.items() if k.endswith(".router") and k.startswith("mlgate.")
    ]
    if routers and ms_best:
        key, best = max(routers, key=lambda item: item[1]["best_rps"] or 0)
        # The issue measures CPU per request at 32 connections; the best point is the fallback.
        cpu = best["c32_cpu_per_request_s"] or best["best_cpu_per_request_s"]
        out.append(
            {
                "id": "goal.mlgate_router",
                "target": key,
                "vs_mlserver_best": (best["best_rps"] or 0) / ms_best,
                "cpu_per_request_s": cpu,
                "met_throughput": (best["best_rps"] or 0) >= 3 * ms_best,
                "peak_vs_mlserver_peak": (best["peak_rps"] or 0) / ms_peak if ms_peak else None,
                "met_cpu": cpu is not None and cpu < 0.5e-3,
            }
        )
    return out


def _heavy_batching_lines(all_rows: list[dict[str, Any]], targets: dict[str, Any]) -> list[str]:
    heavy = _row(all_rows, "batching.heavy")
    if heavy is None:
        return []
    lines = [
        "",
        "The small MLP's answers cost little more than reading and writing the HTTP request, "
        "which batching cannot share, so batching there is capped by the HTTP stack (the "
        "batched endpoint reaches the LR endpoints' ceiling). Where the model's compute "
        "dominates (the larger MLP, whose layers its rows name, also the overload model "
        "below), one call on 64 rows costs far less than 64 calls:",
        "",
        "| Configuration | Best throughput, p99 ≤ 50 ms (connections, p99) | Server CPU per "
        "request at best |",
        "|---|---|---|",
    ]
    for key, entry in targets.items():
        if entry["family"] != "heavy":
            continue
        row = _row(all_rows, f"target.{key}")
        if row is None:
            continue
        best = (
            f"{_rate(row['best_rps'])} ({row['best_connections']}, {_ms(row['best_p99_s'])})"
            if row["best_rps"]
            else f"none passed (peak {_rate(row['peak_rps'])})"
        )
        lines.append(f"| {entry['label']} | {best} | {_ms(row['best_cpu_per_request_s'])} |")
    ratio = heavy["ratio"]
    lines += [
        "",
        "- Batching on ÷ off for this model, p99 ≤ 50 ms: "
        + (f"{ratio:.2f}× " if ratio is not None else "— ")
        + _goal(heavy["met"]),
    ]
    return lines


def _row(rows_: list[dict[str, Any]], row_id: str) -> dict[str, Any] | None:
    return next((r for r in rows_ if r["id"] == row_id), None)


def render_markdown(results: dict[str, Any]) -> str:
    meta, plan, all_rows = results["meta"], results["plan"], results["rows"]
    targets = results["targets"]
    packages = meta["packages"]
    ms = meta.get("mlserver")
    rate = plan["rate"]
    client = meta["client"] + (f" ({meta['client_version']})" if meta["client_version"] else "")
    lines = [
        MARK_START,
        "## Serving",
        "",
        f"Produced by `{meta['command']}` on {meta['started']} in "
        f"{_elapsed(results.get('elapsed_s', 0))}: {meta['cpus']} CPU cores shared by the "
        f"load generator and every server, on a shared, noisy machine (load average "
        f"{meta['loadavg_start'][0]:.1f} at the start, {meta['loadavg_end'][0]:.1f} at the end). "
        f"Python {meta['python']}, mlgate {meta['mlgate']}, FastAPI {packages['fastapi']}, "
        f"uvicorn {packages['uvicorn']}, uvloop {packages['uvloop']}, scikit-learn "
        f"{packages['scikit-learn']}, onnxruntime {packages['onnxruntime']}"
        + (
            f"; MLServer {ms['mlserver']} with mlserver-sklearn {ms['mlserver-sklearn']}, "
            f"uvloop {ms['uvloop']}, scikit-learn {ms['scikit-learn']} in its own venv"
            if ms
            else "; MLServer skipped"
        )
        + f". Load generator: {client}.",
        "",
        "Read the ratios, not the absolute numbers: all servers run at once as separate "
        "processes and are loaded one at a time in rotating order, so drifts in the machine's "
        "load hit them alike; the load generator takes CPU from the server it measures. "
        "Server CPU per request (utime + stime of the server's whole process tree from /proc, "
        "divided by the requests answered) is the steadiest figure.",
    ]
    lr = [(k, e) for k, e in targets.items() if e["family"] == "lr"]
    lines += [
        "",
        f"### LogisticRegression, {N_FEATURES} features, OIP v2 REST",
        "",
        "Best throughput is the highest of the closed-loop sweep "
        f"({', '.join(str(c) for c in plan['connections'])} connections, "
        f"{plan['duration_s']:.0f} s each) whose p99 is at most 50 ms with no errors. "
        f"Fixed rate: {rate:,.0f} requests/s paced over {plan['rate_connections']} connections "
        f"for {plan['fixed_s']:.0f} s, in {FIXED_ROUNDS} rounds at different times (targets in "
        "rotated order) whose samples are pooled, latency from each request's intended send "
        "time.",
        "",
        "| Server, configuration | Best throughput, p99 ≤ 50 ms (connections, p99) "
        "| 32 connections: throughput, p99 "
        f"| p50 / p99 at {rate:,.0f}/s | Server CPU per request: at 32 connections / at best "
        f"/ at {rate:,.0f}/s "
        "| ÷ MLServer's best |",
        "|---|---|---|---|---|---|",
    ]
    for key, entry in lr:
        row = _row(all_rows, f"target.{key}")
        assert row is not None
        best = (
            f"{_rate(row['best_rps'])} ({row['best_connections']}, {_ms(row['best_p99_s'])})"
            if row["best_rps"]
            else f"none passed (peak {_rate(row['peak_rps'])} at p99 {_ms(row['peak_p99_s'])})"
        )
        c32 = _c32(row)
        fixed = f"{_ms(row['fixed_p50_s'])} / {_ms(row['fixed_p99_s'])}"
        if row["fixed_non_2xx"]:
            fixed += f" ({row['fixed_non_2xx']} non-2xx)"
        cpu = (
            f"{_ms(row['c32_cpu_per_request_s'])} / {_ms(row['best_cpu_per_request_s'])} / "
            f"{_ms(row['fixed_cpu_per_request_s'])}"
        )
        ratio = f"{row['vs_mlserver_best']:.2f}×" if "vs_mlserver_best" in row else "—"
        lines.append(f"| {entry['label']} | {best} | {c32} | {fixed} | {cpu} | {ratio} |")
    goal = _row(all_rows, "goal.mlgate_router")
    ms_best = _row(all_rows, "goal.mlserver_best")
    if goal and ms_best:
        lines += [
            "",
            f"MLServer's best: {targets[ms_best['target']]['label']}, "
            f"{_rate(ms_best['best_rps'])}; server CPU per request "
            f"{_ms(ms_best['c32_cpu_per_request_s'])} at 32 connections, "
            f"{_ms(ms_best['cpu_per_request_s'])} at its best point.",
            "",
            f"- Goal, mlgate with the router's features on ({goal['target']}) ≥ 3× MLServer's "
            f"best throughput: {goal['vs_mlserver_best']:.2f}× {_goal(goal['met_throughput'])}"
            + (
                f" (peak throughput at any p99: {goal['peak_vs_mlserver_peak']:.2f}× "
                "MLServer's peak)"
                if goal.get("peak_vs_mlserver_peak")
                else ""
            ),
            f"- Goal, < 0.5 ms server CPU per request with the router's features on "
            f"(at 32 connections): "
            f"{_ms(goal['cpu_per_request_s'])} {_goal(goal['met_cpu'])}",
        ]
    costs = [r for r in all_rows if r["id"].startswith("router_cost.")]
    if costs:
        lines += [
            "",
            "### Router cost",
            "",
            "Router: a 90/10 split between two versions, sticky on the `user` request "
            "parameter (64 users), every request mirrored to a third version (shadow), "
            "every answer and every shadow answer logged to the SQLite prediction log. Added "
            f"p99 at {rate:,.0f}/s; throughput ratio of the best passing points.",
            "",
            "| Baseline → router | Added p99 | Throughput ratio | Goal: ≤ 1 ms p99 added "
            "or ≤ 10 % less throughput |",
            "|---|---|---|---|",
        ]
        for r in costs:
            added = r["added_p99_s"]
            ratio = r["throughput_ratio"]
            lines.append(
                f"| {targets[r['baseline']]['label']} → router | "
                + (f"{added * 1e3:+.2f} ms" if added is not None else "—")
                + " | "
                + (f"{ratio:.2f}" if ratio is not None else "—")
                + f" | {_goal(r['met'])} |"
            )
    batching = _row(all_rows, "batching")
    if batching:
        lines += [
            "",
            "### Adaptive batching: ONNX MLP 64 → 128 → 64 → 2 (Relu, softmax, float32)",
            "",
            "Both endpoints run the model on the inference threads (`inline_budget_ms: 0`), so "
            "the pair isolates batching. With mlgate's defaults this small model runs on the "
            "event loop once observed fast, which speeds up unbatched serving as much as it "
            "does the LR rows above.",
            "",
            "| Configuration | Best throughput, p99 ≤ 50 ms (connections, p99) "
            "| 32 connections: throughput, p99 "
            f"| p50 / p99 at {rate:,.0f}/s | Server CPU per request: at 32 connections / "
            "at best |",
            "|---|---|---|---|---|",
        ]
        for key, entry in targets.items():
            if entry["family"] != "mlp":
                continue
            row = _row(all_rows, f"target.{key}")
            assert row is not None
            best = (
                f"{_rate(row['best_rps'])} ({row['best_connections']}, {_ms(row['best_p99_s'])})"
                if row["best_rps"]
                else f"none passed (peak {_rate(row['peak_rps'])})"
            )
            c32 = _c32(row)
            lines.append(
                f"| {entry['label']} | {best} | {c32} | {_ms(row['fixed_p50_s'])} / "
                f"{_ms(row['fixed_p99_s'])} | {_ms(row['c32_cpu_per_request_s'])} / "
                f"{_ms(row['best_cpu_per_request_s'])} |"
            )
        ratio = batching["ratio"]
        lines += [
            "",
            "- Goal, batching on ≥ 3× batching off, p99 ≤ 50 ms: "
            + (f"{ratio:.2f}× " if ratio is not None else "— ")
            + _goal(batching["met"]),
        ]
        lines += _heavy_batching_lines(all_rows, targets)
    overloads = [r for r in all_rows if r["id"].startswith("overload.")]
    if overloads:
        lines += [
            "",
            "### Overload at twice capacity",
            "",
            "Capacity is the peak throughput of the same server, model and batching in the "
            f"sweep; twice that is offered for {plan['overload_s']:.0f} s, paced over "
            f"{plan['overload_connections']} connections, first to the endpoint with the "
            "default deadline (timeout_ms 1000), then to one with timeout_ms 50: an endpoint's "
            "deadline is the SLA its server protects. Two models: the logistic regression, "
            "whose capacity is the HTTP stack's (the event loop reads, routes and answers "
            "every request, with the load generator on the same 2 cores), and the larger "
            "MLP, whose own compute bounds the server. Latency counts from "
            "each request's intended send time: a paced generator never has more than its "
            "connections' worth of requests at the server, so when the server cannot answer "
            "(with 200 or 503) as fast as requests are offered, the backlog grows in the "
            "clients, and that shows here. To the server, each of those connections looks "
            "like a closed-loop client at capacity (one request outstanding, the next sent "
            "when it is answered), so nothing it can observe tells twice capacity from "
            "capacity; where the HTTP work is the bottleneck it answers everything it reads "
            "in time (its own clock, below) while the clients fall behind. Server RSS (the "
            "whole process tree) sampled every 0.25 s.",
            "",
            "| Endpoint | Offered | Answered | 2xx (goodput) | 503 | Other | Admitted p50 / p99 "
            "| RSS start → peak → end | RSS growth (last vs first quarter) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        mib = 2**20
        for overload in overloads:
            rss = results["overload"][overload["id"].removeprefix("overload.")].get("rss", {})
            other = ", ".join(f"{k}: {v}" for k, v in overload["other_statuses"].items()) or "0"
            if overload["socket_errors"]:
                other += f"; {overload['socket_errors']} socket errors"
            lines.append(
                f"| {overload['label']} | {_rate(overload['offered_rps'])} | "
                f"{_rate(overload['answered_rps'])} | "
                f"{overload['ok']:,} ({_rate(overload['ok_rps'])}) | {overload['shed_503']:,} | "
                f"{other} | "
                + (
                    f"{_ms(overload['ok_p50_s'])} / {_ms(overload['ok_p99_s'])} | "
                    if overload["ok"]
                    else "none admitted | "
                )
                + (
                    f"{rss['start_bytes'] / mib:.0f} → {rss['peak_bytes'] / mib:.0f} → "
                    f"{rss['end_bytes'] / mib:.0f} MiB | "
                    f"{overload['rss_growth_bytes'] / mib:+.1f} MiB |"
                    if rss
                    else "— | — |"
                )
            )
        lines.append("")
        for overload in overloads:
            lines.append(
                f"- {overload['label']}: goodput "
                f"{100 * overload['ok_rps'] / overload['capacity_rps']:.0f} % of capacity "
                f"({_rate(overload['capacity_rps'])}); "
                f"admitted p99 ≤ 50 ms {_goal(overload['met_p99'])}"
                + (
                    " (none admitted)"
                    if not overload["ok"]
                    else f" ({overload['ok']:,} admitted)"
                    if overload["ok"] < 100
                    else ""
                )
                + f"; every other request 503 {_goal(overload['met_only_503'])}"
                + f"; memory flat (≤ 16 MiB growth) {_goal(overload['met_rss_flat'])}"
                + (
                    ". mlgate's own counters: "
                    + ", ".join(
                        f"{k} {v:,.0f}"
                        for k, v in overload["refusals"].items()
                        if k not in (OWN_OK, OWN_OK_50MS)
                    )
                    if set(overload["refusals"]) - {OWN_OK, OWN_OK_50MS}
                    else ""
                )
                + _own_clock(overload["refusals"])
            )
    lines += ["", "<details><summary>Every sweep point (throughput, p99)</summary>", ""]
    levels = [str(c) for c in plan["connections"]]
    lines += [
        "| Target | " + " | ".join(f"{c} conn." for c in levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for key, entry in targets.items():
        sweep = entry.get("sweep", {})
        cells = [_fmt_point(sweep[c]).replace(" p99 ", ", ") if c in sweep else "—" for c in levels]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines += ["", "</details>"]
    profile = results.get("profile")
    if profile and "own" in profile:
        lines += _profile_lines(profile)
    checks = results.get("checks", {})
    answers = results.get("answers", {})
    lines += [
        "",
        "Correctness checks from the same run (all must be true):",
        "",
        "- " + ", ".join(f"{k} = {str(v).lower()}" for k, v in checks.items()),
        "- LR, largest difference from the local estimator's predict_proba: "
        + ", ".join(f"{k} {v:.1e}" for k, v in answers.get("lr_max_abs_diff", {}).items()),
        "- MLP, largest difference from onnxruntime in-process: "
        + ", ".join(f"{k} {v:.1e}" for k, v in answers.get("mlp_max_abs_diff", {}).items()),
        "",
        *_method_notes(results),
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    main = profile["main_thread_samples"] or 1
    run_ = profile.get("run", {})
    layers = profile["main_thread_layers"]
    lines = [
        "",
        "<details><summary>Where mlgate's time goes (py-spy on `mlgate serve --workers 1`, "
        "router endpoint, 32 connections"
        + (f", {_rate(run_.get('rps'))}" if run_.get("rps") else "")
        + ")</summary>",
        "",
        "Shares are of the event-loop thread's samples, the bottleneck: HTTP stack (uvicorn, "
        f"Starlette, FastAPI) {100 * layers.get('http_stack', 0) / main:.0f} %, mlgate's "
        f"inference handler {100 * layers.get('mlgate_infer_handler', 0) / main:.0f} %, uvloop "
        f"and everything else {100 * layers.get('loop_and_other', 0) / main:.0f} %.",
        "",
        "| mlgate frame on the event loop (inclusive) | Share |",
        "|---|---|",
    ]
    for frame, n in profile["inclusive_mlgate"][:12]:
        lines.append(f"| `{frame}` | {100 * n / main:.1f} % |")
    lines += ["", "| Frame on the event loop (own time) | Share |", "|---|---|"]
    for frame, n in profile["own"][:12]:
        lines.append(f"| `{frame}` | {100 * n / main:.1f} % |")
    others = profile["inclusive_mlgate_other_threads"][:5]
    if others:
        lines += [
            "",
            "mlgate frames on other threads (samples relative to the event loop's): "
            + ", ".join(f"`{frame}` {100 * n / main:.0f} %" for frame, n in others)
            + ".",
        ]
    lines += ["", "</details>"]
    return lines


def _method_notes(results: dict[str, Any]) -> list[str]:
    meta, plan = results["meta"], results["plan"]
    notes = ["How it was measured:", ""]
    if meta["client"] == "wrk":
        notes += [
            "- Throughput: wrk, one thread, closed loop (each connection sends its next request "
            "when the answer arrives), requests cycling through 64 bodies (one row each, "
            "distinct features and `user`); p99 from wrk's histogram, from write to answer.",
            "- Fixed rate: Debian 12 packages no constant-rate generator (no wrk2, vegeta or "
            "oha; h2load's `--rate` paces new connections, not requests, and hey's `-q` is a "
            "closed-loop ticker per worker), so `bench/serving_wrk.lua` paces wrk as wrk2 "
            "does: one connection per wrk thread, each on its own schedule through wrk's "
            "`delay()`, latency measured from the request's intended send time whenever the "
            "connection was still busy then (the correction for coordinated omission), and "
            "every status kept.",
        ]
    else:
        notes.append(
            "- Load: the Python (httpx) client of `bench/serving.py`, far slower than wrk and "
            "hungry for the CPU the servers need: these numbers say little about the servers."
        )
    notes += [
        "- mlgate: `mlgate serve --workers N` (uvicorn, uvloop, httptools) on a fresh "
        "MLGATE_HOME with SQLite; the estimators are registered from skops bytes and the "
        "endpoints deployed before the servers start; `--workers 2` serves the same workspace "
        "on another port. The endpoints' YAML is in `bench/serving.py`.",
    ]
    if meta.get("mlserver"):
        notes.append(
            "- MLServer: `mlserver start` with `mlserver_sklearn.SKLearnModel` loading the same "
            "fitted estimator from joblib, `debug: false` (its default writes an access-log "
            "line per request) and `gzip_enabled: false`; batching is `max_batch_size` "
            f"{MLSERVER_BATCH['max_batch_size']}, `max_batch_time` "
            f"{MLSERVER_BATCH['max_batch_time']} s. Requests ask for `predict_proba` (mlgate: "
            "`probabilities`); the bodies are otherwise identical."
        )
    notes.append(
        f"- Warm-up: {plan['warmup_s']:.0f} s at 32 connections per target before measuring."
    )
    return notes


def write_section(path: Path, section: str) -> None:
    """Put ``section`` between the serving markers of ``path``; other sections are kept."""
    write_marked_section(path, section, MARK_START, MARK_END)


# -- command line -----------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.serving",
        description="Benchmark mlgate's serving beside Seldon MLServer (wrk over loopback).",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run of about a minute")
    p.add_argument("--duration", type=float, help="seconds per sweep point (6; 2 with --quick)")
    p.add_argument("--fixed-duration", type=float, help="seconds of each fixed-rate run")
    p.add_argument("--overload-duration", type=float, help="seconds of the overload run (30)")
    p.add_argument(
        "--connections", type=_int_list, help="sweep levels (1,4,8,16,32,64; 8,32 with --quick)"
    )
    p.add_argument("--rate", type=float, default=250.0, help="fixed rate, requests/s (250)")
    p.add_argument("--rate-connections", type=int, default=32, help="connections at fixed rate")
    p.add_argument(
        "--overload-connections", type=int, default=128, help="connections of the overload run"
    )
    p.add_argument("--workers", type=_int_list, help="mlgate --workers values (1,2; 1 quick)")
    p.add_argument("--skip-mlserver", action="store_true", help="measure mlgate alone")
    p.add_argument(
        "--client",
        choices=("wrk", "python"),
        default="wrk",
        help="load generator: wrk (default) or a small httpx client (for tests)",
    )
    p.add_argument(
        "--max-requests",
        type=int,
        default=20_000,
        help="bound on the requests of one run of the Python client",
    )
    p.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also profile the router endpoint with py-spy for this long",
    )
    p.add_argument("--mlserver-venv", type=Path, default=DEFAULT_MLSERVER_VENV)
    p.add_argument("--tools-venv", type=Path, default=HERE / "out" / "tools-venv")
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument(
        "--heavy-dims",
        type=_int_list,
        default=list(HEAVY_DIMS),
        help="layer widths of the compute-bound MLP (512,4096,4096,2)",
    )
    p.add_argument("--write", type=Path, help="update the serving section of this Markdown file")
    p.add_argument("--out", type=Path, help="write every raw number here as JSON")
    p.add_argument("--workdir", type=Path, help="where the temporary workspace goes")
    p.add_argument("--keep", action="store_true", help="keep the workspace and server logs")
    return p


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(arguments)
    command = shlex.join([".venv/bin/python", "-m", "bench.serving", *arguments])
    results = run(args, command)
    section = render_markdown(results)
    publish(
        "serving", section, results, out=args.out, write=args.write, write_section=write_section
    )
    return results


if __name__ == "__main__":
    main()
