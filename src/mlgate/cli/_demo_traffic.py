"""The demo's clients: a stream of requests from a synthetic world, and their late labels.

One thread sends each row to the endpoint over OIP v2 and, ``label_delay`` requests later,
posts its label (and the reward: was the served answer right) to the feedback route, as a
labelling team would. What the world is (before or after the drift, poisoned or not) is
set by the story while the thread runs. Every answer is kept with the truth, so the story
can show real accuracy over time, not the loop's own estimate.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx

from mlgate.loop.synthetic import SyntheticWorld, World

__all__ = ["Answer", "Traffic"]


@dataclass(frozen=True)
class Answer:
    index: int
    at: float
    version: str
    correct: bool
    world: str


@dataclass
class Traffic:
    base_url: str
    endpoint: str
    seed: int = 11
    label_delay: int = 40
    feedback_batch: int = 20
    world: World = "before"
    poison: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlgate-demo-traffic", daemon=True)
        self._synthetic = SyntheticWorld(self.seed)
        self._flips = random.Random(self.seed)
        self.sent = 0
        self.drift_at: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def set_world(self, world: World, *, poison: float = 0.0) -> None:
        if world != self.world and world == "after" and self.drift_at is None:
            self.drift_at = self.sent
        self.world, self.poison = world, poison

    def wait_for(self, n: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sent < n and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)

    def _run(self) -> None:
        pending: deque[dict[str, object]] = deque()
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            while not self._stop.is_set():
                world, poison = self.world, self.poison
                x, y = self._synthetic.rows(1, world)
                rid = f"req-{self.sent}"
                body = {
                    "id": rid,
                    "inputs": [
                        {
                            "name": "input",
                            "datatype": "FP64",
                            "shape": [1, x.shape[1]],
                            "data": x[0].tolist(),
                        }
                    ],
                }
                try:
                    reply = client.post(f"/v2/models/{self.endpoint}/infer", json=body)
                except httpx.HTTPError as exc:
                    self.errors.append(str(exc))
                    time.sleep(0.05)
                    continue
                if reply.status_code != 200:
                    self.errors.append(f"{reply.status_code}: {reply.text[:200]}")
                    time.sleep(0.01)
                    continue
                answer = reply.json()
                predicted = int(answer["outputs"][0]["data"][0])
                truth = int(y[0])
                label = 1 - truth if self._flips.random() < poison else truth  # poisoned feed
                self.answers.append(
                    Answer(
                        self.sent,
                        time.time(),
                        str(answer["model_version"]),
                        predicted == truth,
                        world,
                    )
                )
                pending.append(
                    {"request_id": rid, "label": label, "reward": float(predicted == label)}
                )
                self.sent += 1
                if len(pending) >= self.label_delay + self.feedback_batch:
                    batch = [pending.popleft() for _ in range(self.feedback_batch)]
                    client.post(f"/v2/models/{self.endpoint}/feedback", json={"feedback": batch})
