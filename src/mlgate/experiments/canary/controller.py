"""The canary controller: a persisted state machine that judges, steps, promotes, rolls back.

States (``canaries.state``)::

    running ──pass──> running (next step) ──pass at the last judged step──> promoted
       │  └─fail (below failure_limit)──> running       fail at the limit ──> rolled_back
       └─inconclusive──> paused ──(judged again after interval_s)──> ...
                           └─ inconclusive_limit in a row ──> held ──resume──> running
    running | paused | held ──abort──> aborted

A canary is judged ``interval_s`` after its last change (start, step, judgement, resume) on
everything logged since its current step started. Every start, judgement, step, promotion,
rollback, pause, resume and abort is a ledger entry whose ``report`` digest is the digest of
the judgement stored in the row's ``last_report``.

Several server processes may call :meth:`CanaryController.tick` at once. Each change is an
``UPDATE ... WHERE id = ? AND revision = ?`` in the same transaction as its ledger entries;
a process whose update matches no row lost the race and does nothing more, so a step is
taken, and ledgered, once.

Crash safety. An endpoint deploy (:class:`EndpointStore`) and an alias move
(:class:`Registry`) are transactions of their own, so they cannot share the state
change's transaction. The order is therefore: first commit the new state with its ledger
entries, then make the endpoint match it. The endpoint spec a state wants is a pure
function of the row (:mod:`.rollout`), so every tick compares it with what is deployed:

- deployed == wanted: nothing to do;
- deployed == the spec of the state before (the process died between its commit and its
  deploy): after ``reconcile_after_s`` (time for the committing process to finish) the
  tick deploys the wanted spec, moving the promotion alias first if it was not moved;
- anything else: someone deployed the endpoint by hand. An active canary is then aborted
  (ledgered, with reason ``taken_over``) and the hand-made spec is left alone.

A retry therefore converges to the committed state, never to a half one.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa

from mlgate.errors import CanaryError, MlgateError, PolicyError
from mlgate.experiments.canary.config import CanaryConfig
from mlgate.experiments.canary.judge import Judgement, judge
from mlgate.experiments.canary.rollout import previous_spec, spec_json, split_spec, wanted_spec
from mlgate.experiments.canary.samples import read_samples
from mlgate.experiments.canary.status import (
    ACTIVE_STATES,
    CanaryDecision,
    CanaryState,
    CanaryStatus,
    parse_time,
    status_from_row,
)
from mlgate.experiments.canary.transitions import (
    CANARY_ABORTED,
    CANARY_PAUSED,
    CANARY_RESUMED,
    CANARY_STARTED,
    after_judgement,
    number_text,
)
from mlgate.ledger.events import LedgerEvent, Scalar, digest_json, format_time
from mlgate.ledger.log import MerkleLog
from mlgate.registry.service import Registry
from mlgate.serving.endpoints import EndpointStore
from mlgate.store.engine import Store
from mlgate.store.schema import canaries, endpoints

if TYPE_CHECKING:
    from mlgate.workspace import Workspace

__all__ = ["SERVICE_ACTOR", "CanaryController"]

logger = logging.getLogger(__name__)

SERVICE_ACTOR = "mlgate:canary"
"""The ledger actor of what the controller does by itself (judgements, steps, repairs)."""

Clock = Callable[[], datetime]
_OPERATOR_RETRIES = 5


class CanaryController:
    """Starts canaries and drives them; call :meth:`tick` every few seconds from each server."""

    def __init__(
        self,
        store: Store,
        endpoint_store: EndpointStore,
        registry: Registry,
        log: MerkleLog,
        clock: Clock,
        *,
        reconcile_after_s: float = 30.0,
        service_actor: str = SERVICE_ACTOR,
    ) -> None:
        self._store = store
        self._endpoints = endpoint_store
        self._registry = registry
        self._log = log
        self._clock = clock
        self._reconcile_after = timedelta(seconds=reconcile_after_s)
        self._actor = service_actor

    @classmethod
    def from_workspace(cls, workspace: Workspace, **options: Any) -> CanaryController:
        store = workspace.store
        endpoint_store = EndpointStore(store, workspace.registry, workspace.log, workspace.clock)
        return cls(
            store, endpoint_store, workspace.registry, workspace.log, workspace.clock, **options
        )

    # -- operator actions ----------------------------------------------------------

    def start(
        self,
        endpoint: str,
        candidate: int | str,
        *,
        baseline: int | str | None = None,
        config: CanaryConfig | None = None,
        actor: str,
    ) -> CanaryStatus:
        """Split ``endpoint`` between its current version and ``candidate`` at the first step.

        ``baseline`` defaults to what the endpoint serves now. The endpoint must route to
        one target (``route: champion``); its other settings are kept.
        """
        config = config or CanaryConfig()
        current = self.status(endpoint)
        if current is not None and current.active:  # checked again, under the lock, below
            raise _already_active(endpoint, current.id, current.candidate)
        deployed = self._endpoints.get(endpoint)
        if deployed is None:
            raise CanaryError(
                f"there is no deployed endpoint {endpoint!r}: deploy it first, then start "
                "its canary"
            )
        original = deployed.spec
        if original.route.target is None:
            raise CanaryError(
                f"endpoint {endpoint!r} routes by {original.route.kind}; a canary starts from "
                "an endpoint that routes to one target (such as 'route: champion'): deploy "
                "that first"
            )
        base = self._resolve(
            original.model, original.route.target if baseline is None else baseline, "baseline"
        )
        cand = self._resolve(original.model, candidate, "candidate")
        if base == cand:
            raise CanaryError(
                f"the candidate and the baseline are both {original.model} version {cand}; "
                "a canary compares two different versions"
            )
        first = split_spec(original, base, cand, config.steps[0], config.sticky_key)
        try:
            self._endpoints.check(first)
        except PolicyError as exc:
            raise CanaryError(f"cannot split {endpoint!r} for a canary: {exc}") from None
        now = format_time(self._clock())
        config_json = config.to_json()
        original_json = spec_json(original)
        with self._store.write() as conn:
            self._log.lock_size(conn)  # serialises starts, so two cannot both find none active
            active = conn.execute(
                sa.select(canaries.c.id, canaries.c.candidate).where(
                    canaries.c.endpoint == endpoint, canaries.c.state.in_(ACTIVE_STATES)
                )
            ).first()
            if active is not None:
                raise _already_active(endpoint, active.id, active.candidate)
            revision = conn.execute(
                sa.select(endpoints.c.revision).where(endpoints.c.name == endpoint)
            ).scalar_one_or_none()
            if revision != deployed.revision:
                raise CanaryError(
                    f"endpoint {endpoint!r} was redeployed while its canary was starting; "
                    "start the canary again"
                )
            inserted = conn.execute(
                canaries.insert().values(
                    endpoint=endpoint,
                    baseline=str(base),
                    candidate=str(cand),
                    state="running",
                    step_index=0,
                    config=config_json,
                    original_spec=original_json,
                    step_started_at=now,
                    failures=0,
                    inconclusive=0,
                    last_report=None,
                    revision=1,
                    created_at=now,
                    created_by=actor,
                    updated_at=now,
                )
            ).inserted_primary_key
            assert inserted is not None  # an insert of one row has one key
            canary_id = int(inserted[0])
            self._log.append(
                conn,
                LedgerEvent(
                    kind=CANARY_STARTED,
                    actor=actor,
                    subject={"endpoint": endpoint, "canary": canary_id},
                    digests={
                        "config": digest_json(config_json),
                        "original_spec": digest_json(original_json),
                    },
                    attributes={
                        "model": original.model,
                        "baseline": base,
                        "candidate": cand,
                        "steps": ",".join(number_text(s) for s in config.steps),
                        "interval_s": number_text(config.interval_s),
                        "failure_limit": config.failure_limit,
                        "inconclusive_limit": config.inconclusive_limit,
                        "percent": number_text(config.steps[0]),
                    },
                ),
            )
        status = self._by_id(canary_id)
        try:
            self._converge(status, force=True)
        except MlgateError as exc:
            event = LedgerEvent(
                kind=CANARY_ABORTED,
                actor=self._actor,
                subject={"endpoint": endpoint, "canary": canary_id},
                attributes={"step": 0, "from_state": "running", "reason": "deploy_failed"},
            )
            self._commit(status, {"state": "aborted"}, [event], format_time(self._clock()))
            raise CanaryError(
                f"the canary of {endpoint!r} could not deploy its first step ({exc}); it was "
                "aborted and the endpoint left as it was"
            ) from exc
        return status

    def abort(self, endpoint: str, *, actor: str, reason: str = "operator") -> CanaryStatus:
        """Roll the active canary back now: the endpoint's original spec is deployed again."""
        return self._operator(
            endpoint,
            ACTIVE_STATES,
            "aborted",
            CANARY_ABORTED,
            actor,
            {"reason": reason},
            "abort",
        )

    def pause(self, endpoint: str, *, actor: str) -> CanaryStatus:
        """Hold the active canary at its step: no judgement until :meth:`resume`."""
        return self._operator(
            endpoint,
            ("running", "paused"),
            "held",
            CANARY_PAUSED,
            actor,
            {"held": True, "reason": "operator"},
            "pause",
        )

    def resume(self, endpoint: str, *, actor: str) -> CanaryStatus:
        """Judge a paused or held canary again, ``interval_s`` from now, with a fresh count."""
        return self._operator(
            endpoint, ("paused", "held"), "running", CANARY_RESUMED, actor, {}, "resume"
        )

    # -- queries ---------------------------------------------------------------------

    def status(self, endpoint: str) -> CanaryStatus | None:
        """The endpoint's newest canary, active or ended; None if it never had one."""
        with self._store.read() as conn:
            row = conn.execute(
                sa.select(canaries)
                .where(canaries.c.endpoint == endpoint)
                .order_by(canaries.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else status_from_row(row)

    def list(self, *, active_only: bool = False, limit: int = 100) -> builtins.list[CanaryStatus]:
        """Canaries, newest first."""
        query = sa.select(canaries).order_by(canaries.c.id.desc()).limit(limit)
        if active_only:
            query = query.where(canaries.c.state.in_(ACTIVE_STATES))
        with self._store.read() as conn:
            return [status_from_row(row) for row in conn.execute(query)]

    # -- the loop --------------------------------------------------------------------

    def tick(self, now: datetime | None = None) -> builtins.list[CanaryDecision]:
        """Judge every canary that is due and act on the verdicts; repair half-done steps.

        Safe to call from several processes at once. A canary whose step cannot be applied
        (its deploy refused) is logged and retried on the next tick; the others go on.
        """
        moment = now or self._clock()
        decisions: builtins.list[CanaryDecision] = []
        for status in self._latest_per_endpoint():
            try:
                decision = self._tick_one(status, moment)
            except MlgateError as exc:
                logger.warning("canary #%d of %s: %s", status.id, status.endpoint, exc)
                continue
            except Exception:  # a bug in one canary must not stall the others
                logger.exception("canary #%d of %s failed to tick", status.id, status.endpoint)
                continue
            if decision is not None:
                decisions.append(decision)
        return decisions

    def _tick_one(self, status: CanaryStatus, now: datetime) -> CanaryDecision | None:
        outcome = self._converge(status, now=now)
        if outcome == "taken_over":
            return CanaryDecision("taken_over", self._by_id(status.id), None)
        if outcome in ("stale", "waiting") or status.state not in ("running", "paused"):
            return None  # "waiting": judge no step whose traffic split is not deployed yet
        if now < parse_time(status.updated_at) + timedelta(seconds=status.config.interval_s):
            return None
        config = status.config
        until = format_time(now)
        window = read_samples(
            self._store,
            status.endpoint,
            baseline=status.baseline,
            candidate=status.candidate,
            since=status.step_started_at,
            until=until,
            limit=config.max_rows,
            output=config.prediction_output,
        )
        judgement = judge(window.baseline, window.canary, config.metrics, config.judge)
        return self._act(status, judgement, window.since, until)

    def _act(
        self, status: CanaryStatus, judgement: Judgement, since: str, until: str
    ) -> CanaryDecision | None:
        step = after_judgement(status, judgement, since=since, until=until, actor=self._actor)
        if not self._commit(status, step.changes, step.events, until):
            return None  # another process judged this step first
        after = self._by_id(status.id)
        try:
            self._converge(after, force=True)
        except MlgateError as exc:  # the state is committed: a later tick converges
            logger.warning(
                "canary #%d of %s: applying %s failed (a later tick retries): %s",
                after.id,
                after.endpoint,
                step.action,
                exc,
            )
        return CanaryDecision(step.action, after, judgement)

    # -- state changes ---------------------------------------------------------------

    def _operator(
        self,
        endpoint: str,
        allowed: Sequence[CanaryState],
        state: CanaryState,
        kind: str,
        actor: str,
        attributes: dict[str, Scalar],
        verb: str,
    ) -> CanaryStatus:
        for _ in range(_OPERATOR_RETRIES):  # a tick may change the row between read and write
            status = self.status(endpoint)
            if status is None or not status.active:
                raise CanaryError(f"endpoint {endpoint!r} has no active canary to {verb}")
            if status.state not in allowed:
                raise CanaryError(
                    f"cannot {verb} the canary of {endpoint!r}: it is {status.state} "
                    f"(only a {' or '.join(allowed)} canary can be asked to {verb})"
                )
            now = format_time(self._clock())
            changes: dict[str, Any] = {"state": state}
            if state == "running":
                changes["inconclusive"] = 0
            event = LedgerEvent(
                kind=kind,
                actor=actor,
                subject={"endpoint": endpoint, "canary": status.id},
                attributes={"step": status.step_index, "from_state": status.state, **attributes},
            )
            if self._commit(status, changes, [event], now):
                after = self._by_id(status.id)
                self._converge(after, force=True)
                return after
        raise CanaryError(
            f"the canary of {endpoint!r} kept changing while asked to {verb}; try again"
        )

    def _commit(
        self,
        status: CanaryStatus,
        changes: dict[str, Any],
        events: Sequence[LedgerEvent],
        now: str,
    ) -> bool:
        """Apply ``changes`` and append ``events`` iff the row is still at ``status.revision``."""
        with self._store.write() as conn:
            self._log.lock_size(conn)  # the ledger head first, always: no lock-order deadlock
            updated = conn.execute(
                canaries.update()
                .where(canaries.c.id == status.id, canaries.c.revision == status.revision)
                .values(**changes, revision=status.revision + 1, updated_at=now)
            )
            if updated.rowcount != 1:
                return False
            self._log.append_many(conn, events)
        return True

    # -- making the endpoint match the state ----------------------------------------

    def _converge(
        self, status: CanaryStatus, *, now: datetime | None = None, force: bool = False
    ) -> Literal["in_sync", "waiting", "deployed", "taken_over", "stale"]:
        """Deploy what ``status`` wants if the endpoint still shows the state before it.

        ``force``: the caller just committed ``status`` (no grace period to wait).
        """
        wanted = wanted_spec(status)
        deployed = self._endpoints.get(status.endpoint)
        current = None if deployed is None else spec_json(deployed.spec)
        if current == spec_json(wanted):
            return "in_sync"
        if current is None or current != spec_json(previous_spec(status)):
            if not status.active:
                return "in_sync"  # the operator deployed since it ended: theirs to keep
            event = LedgerEvent(
                kind=CANARY_ABORTED,
                actor=self._actor,
                subject={"endpoint": status.endpoint, "canary": status.id},
                attributes={
                    "step": status.step_index,
                    "from_state": status.state,
                    "reason": "taken_over",
                },
            )
            moment = format_time(now or self._clock())
            if not self._commit(status, {"state": "aborted"}, [event], moment):
                return "stale"
            logger.warning(
                "canary #%d of %s aborted: the endpoint was deployed by hand during it",
                status.id,
                status.endpoint,
            )
            return "taken_over"
        if (
            not force
            and (now or self._clock()) < parse_time(status.updated_at) + self._reconcile_after
        ):
            return "waiting"  # the process that committed the change is probably deploying it
        if status.state == "promoted" and status.config.promote_alias is not None:
            alias = status.config.promote_alias
            candidate = int(status.candidate)
            if not self._alias_is(status.model, alias, candidate):
                self._registry.move_alias(status.model, alias, candidate, actor=self._actor)
        self._endpoints.deploy(wanted, actor=self._actor)
        return "deployed"

    def _alias_is(self, model: str, alias: str, version: int) -> bool:
        try:
            return self._registry.get(model, alias).version == version
        except MlgateError:
            return False

    # -- reading ---------------------------------------------------------------------

    def _resolve(self, model: str, ref: int | str, role: str) -> int:
        try:
            return self._registry.get(model, ref).version
        except MlgateError as exc:
            raise CanaryError(
                f"the canary's {role} {ref!r} is not a version of {model}: {exc}"
            ) from None

    def _by_id(self, canary_id: int) -> CanaryStatus:
        with self._store.read() as conn:
            row = conn.execute(sa.select(canaries).where(canaries.c.id == canary_id)).one()
        return status_from_row(row)

    def _latest_per_endpoint(self) -> builtins.list[CanaryStatus]:
        newest = sa.select(sa.func.max(canaries.c.id)).group_by(canaries.c.endpoint)
        query = sa.select(canaries).where(canaries.c.id.in_(newest)).order_by(canaries.c.id)
        with self._store.read() as conn:
            return [status_from_row(row) for row in conn.execute(query)]


def _already_active(endpoint: str, canary_id: int, candidate: str) -> CanaryError:
    return CanaryError(
        f"endpoint {endpoint!r} already has an active canary (#{canary_id}, candidate "
        f"version {candidate}): abort it (or let it finish) before starting another"
    )
