"""The demo's story, step by step; :mod:`mlgate.cli.demo` calls these in order.

The story steers only the *world* (before or after the drift, poisoned labels or not) and
reacts to what the loop did; it never tells the loop what to do. What the loop decides is
what the timeline shows, so a run of the demo that goes otherwise says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlgate.cli._common import console
from mlgate.cli._demo_timeline import story_events
from mlgate.config import Settings
from mlgate.ledger.events import LedgerEntry
from mlgate.loop.runs import LoopRun, RunState
from mlgate.workspace import Workspace

__all__ = ["Story"]

_POISON = 0.35  # share of labels the compromised feed flips
_DRIFT_AFTER = 900  # requests served before the world changes
_AFTER_PROMOTION_S = 3.0  # traffic kept flowing after the promotion, to show the new champion


@dataclass
class Story:
    workspace: Workspace
    settings: Settings
    folder: Path
    endpoint: str
    started: float
    wall_start: float = field(default_factory=time.time)
    traffic: Any = None
    drift_at: int | None = None
    promoted: LoopRun | None = None
    runs: list[LoopRun] = field(default_factory=list)

    def say(self, text: str) -> None:
        console.print(f"[dim]{time.monotonic() - self.started:5.1f}s[/] {text}")

    # -- 2. the champion ----------------------------------------------------------------

    def deploy_champion(self) -> None:
        from sklearn.linear_model import LogisticRegression
        from skops.io import dumps

        from mlgate.loop.synthetic import SyntheticWorld
        from mlgate.registry.records import Lineage
        from mlgate.serving.endpoints import EndpointStore
        from mlgate.serving.spec import parse_endpoint_yaml

        ws = self.workspace
        x, y = SyntheticWorld(seed=3).rows(3000, "before")
        model = LogisticRegression().fit(x[:2000], y[:2000])
        accuracy = float(model.score(x[2000:], y[2000:]))
        artifact = dumps(model)
        (self.folder / "models").mkdir(exist_ok=True)
        (self.folder / "models" / "champion.skops").write_bytes(artifact)  # for the README tour
        version = ws.registry.register(
            self.endpoint,
            artifact,
            actor=self.settings.actor,
            params={"estimator": "LogisticRegression"},
            metrics={"accuracy": accuracy},
            lineage=Lineage(run_id="demo:initial-training"),
        )
        ws.registry.move_alias(
            self.endpoint, "champion", version.version, actor=self.settings.actor
        )
        spec = parse_endpoint_yaml(f"name: {self.endpoint}\nroute: champion\n")
        EndpointStore(ws.store, ws.registry, ws.log, ws.clock).deploy(
            spec, actor=self.settings.actor
        )
        self.say(
            f"version {version.version} (logistic regression, holdout accuracy {accuracy:.3f}) "
            f"is champion; endpoint {self.endpoint!r} routes to the champion"
        )

    # -- 3. serve and loop --------------------------------------------------------------

    def run_loop(self, loop_file: Path, *, time_limit_s: float) -> None:
        from mlgate.cli._demo_server import background_server
        from mlgate.cli._demo_traffic import Traffic
        from mlgate.loop.config import load_loop_config
        from mlgate.loop.runner import LoopRunner

        config = load_loop_config(loop_file)
        with background_server(self.settings) as url:
            self.say(f"serving OIP v2 at {url}; clients send requests, labels follow 40 later")
            runner = LoopRunner(
                self.workspace, config, progress=lambda t: self.say(f"[cyan]loop[/] {t}")
            )
            self.traffic = traffic = Traffic(url, self.endpoint)
            traffic.start()
            deadline = time.monotonic() + time_limit_s
            promoted_at: float | None = None
            try:
                while time.monotonic() < deadline:
                    runner.step()
                    self._steer(traffic, runner)
                    if self.promoted is not None:
                        promoted_at = promoted_at or time.monotonic()
                        if time.monotonic() - promoted_at > _AFTER_PROMOTION_S:
                            break
                    time.sleep(0.05)
                else:
                    self.say("[red]time limit reached before a promotion; see the timeline[/]")
            finally:
                traffic.stop()
            if traffic.errors:
                self.say(f"{len(traffic.errors)} requests failed, e.g. {traffic.errors[0]}")
            self.say(f"{traffic.sent} requests served")
        self.runs = runner.runs.list(config.name)
        if self.promoted is not None and self.promoted.candidate_version is not None:
            retrained = self.workspace.registry.get(self.endpoint, self.promoted.candidate_version)
            data = self.workspace.registry.read_artifact(retrained)
            (self.folder / "models" / "retrained.skops").write_bytes(data)

    def _steer(self, traffic: Any, runner: Any) -> None:
        if self.drift_at is None and runner.reference is not None and traffic.sent >= _DRIFT_AFTER:
            traffic.set_world("after", poison=_POISON)
            self.drift_at = traffic.sent
            self.say(
                f"[yellow]drift injected at request {self.drift_at}: two features moved, the "
                f"rule changed, and the label feed now flips {_POISON:.0%} of labels[/]"
            )
        runs = runner.runs.list(runner.config.name, limit=20)
        if traffic.poison and any(r.state == RunState.QUARANTINED for r in runs):
            traffic.set_world("after", poison=0.0)
            self.say("[yellow]the label feed is repaired: labels are clean from here on[/]")
        self.promoted = next((r for r in runs if r.state == RunState.PROMOTED), None)

    # -- 4. accuracy --------------------------------------------------------------------

    def show_accuracy(self) -> None:
        answers = self.traffic.answers if self.traffic is not None else []
        groups: dict[tuple[str, str], list[bool]] = {}
        for answer in answers:
            phase = "before drift" if answer.world == "before" else "after drift"
            groups.setdefault((phase, answer.version), []).append(answer.correct)
        for (phase, version), hits in groups.items():
            console.print(
                f"{phase:>12}, version {version}: {sum(hits) / len(hits):.3f} accuracy over "
                f"{len(hits)} requests"
            )

    # -- 5. lineage ---------------------------------------------------------------------

    def show_lineage(self) -> None:
        from mlgate.loop.lineage import lineage_of_request

        answers = self.traffic.answers if self.traffic is not None else []
        if self.promoted is None or not answers:
            console.print("no promoted version to trace")
            return
        mine = [a for a in answers if a.version == str(self.promoted.candidate_version)]
        if not mine:
            console.print("the promoted version answered no request yet")
            return
        request_id = f"req-{mine[-1].index}"
        found = lineage_of_request(self.workspace, self.endpoint, request_id, verify=True)
        from mlgate.cli.lineage import request_tree

        console.print(f"$ mlgate lineage {self.endpoint} --request {request_id} --verify")
        console.print(request_tree(found.to_json()))

    # -- 6. prove -------------------------------------------------------------------------

    def prove(self) -> Path:
        ws = self.workspace
        checkpoint = ws.checkpoint()
        console.print(checkpoint.note.rstrip())
        verified = ws.verify()
        console.print(
            f"OK: {verified.size} entries, {verified.nodes} nodes, {verified.checkpoints} "
            "checkpoints; registry rows match their ledger digests"
        )
        bundle = self.folder / "audit-bundle"
        ws.export(bundle)
        return bundle

    def tamper(self, entries: Path) -> None:
        lines = entries.read_bytes().split(b"\n")
        index = max(i for i, line in enumerate(lines) if b'"kind":"loop.promoted"' in line)
        lines[index] = lines[index].replace(b'"actor":"', b'"actor":"mallory-', 1)
        entries.write_bytes(b"\n".join(lines))
        console.print(f"rewrote entry {index} (loop.promoted) to name another actor")

    # -- 7. timeline and report -----------------------------------------------------------

    def _entries(self) -> list[tuple[int, LedgerEntry]]:
        with self.workspace.store.read() as conn:
            return list(enumerate(self.workspace.log.entries(conn, 0)))

    def events(self) -> list[Any]:
        return story_events(self._entries())

    def timeline(self) -> None:
        entries = self._entries()
        events = story_events(entries)
        for event in events:
            console.print(f"{event.at - self.wall_start:6.1f}s  {event.kind:<22} {event.text}")
        console.print(f"({len(events)} events shown of {len(entries)} entries)")

    def write_report(self, path: Path) -> None:
        from mlgate.loop.report import LoopReport, ReportAnswer, write_loop_report

        verified = self.workspace.verify()
        with self.workspace.store.read() as conn:
            root = self.workspace.log.root_hash(conn).hex()
        answers = self.traffic.answers if self.traffic is not None else []
        report = LoopReport(
            title="mlgate demo: drift, poisoned labels, retraining, canary, promotion",
            endpoint=self.endpoint,
            started_at=self.wall_start,
            answers=[ReportAnswer(a.index, a.at, a.version, a.correct, a.world) for a in answers],
            events=self.events(),
            runs=[run.to_json() for run in self.runs],
            drift_at=self.drift_at,
            ledger={
                "size": verified.size,
                "root": root,
                "verified": True,
                "checkpoints": verified.checkpoints,
            },
        )
        written = write_loop_report(path, report)
        console.print(f"report: {written}")
