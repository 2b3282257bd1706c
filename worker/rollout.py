"""This worker's shadow and canary rollouts: which events they take, and their engines.

Sampling is deterministic and the same in every worker: an event is in the shadow sample when
the hash of its `id` falls under the fraction; a key is served by the canary when the hash of
the key (the `id` for events without a key) does. Raising a fraction keeps every key that was
already in, so a key's events never move back and forth between versions.

What is in force comes from the control topic through `bus.rollout.RolloutBook` (the same fold
the CLI uses), so a worker started later, or restarted, joins the rollouts in force.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bus.rollout import RolloutBook
from schemas.control import AnyControl, RolloutCommand
from schemas.events import LabelledEvent
from schemas.status import RolloutStatus
from worker import metrics
from worker.shadow import Send, ShadowRunner

if TYPE_CHECKING:
    from worker.items import Item
    from worker.registry import Active, ModelRegistry

log = logging.getLogger(__name__)
KINDS = ("shadow", "canary")


def bucket(salt: bytes, value: bytes) -> float:
    """A stable number in [0, 1) for `value` (blake2b; the same in every process and run)."""
    digest = hashlib.blake2b(value, digest_size=8, person=salt).digest()
    return int.from_bytes(digest, "big") / 2**64


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")  # never fails, whatever the id holds


def in_shadow(event_id: str, fraction: float) -> bool:
    return bucket(b"shadow", _utf8(event_id)) < fraction


def in_canary(key: bytes | None, event_id: str, fraction: float) -> bool:
    return bucket(b"canary", key if key else _utf8(event_id)) < fraction


@dataclass
class Candidate:
    command: RolloutCommand
    loaded: Active | None = None
    runner: ShadowRunner | None = None
    error: str | None = None
    served: int = 0  # canary: events this version answered


class Rollouts:
    """Rollouts in force in this worker, reconciled with the control topic's `RolloutBook`."""

    def __init__(
        self,
        registry: ModelRegistry,
        models: list[str],
        send: Send,
        worker_id: str,
        ensure_shadow_topics: Callable[[str], Awaitable[None]],
    ) -> None:
        self.registry = registry
        self.models = set(models)
        self.send = send
        self.worker_id = worker_id
        self.ensure_shadow_topics = ensure_shadow_topics
        self.book = RolloutBook()
        self.active: dict[tuple[str, str], Candidate] = {}

    # -- control ---------------------------------------------------------------------------
    async def apply(self, command: AnyControl) -> None:
        """Feed one command (in control-topic order) and start or stop what it changes."""
        model = getattr(command, "model", None)
        if model not in self.models:
            return
        if self.book.feed(command):
            await self.reconcile(model)
        elif command.type in KINDS:
            log.info("control: stale or repeated %s of %s ignored", command.type, model)

    async def reconcile(self, model: str) -> None:
        for kind in KINDS:
            wanted = self.book.get(model, kind)
            have = self.active.get((model, kind))
            if have is not None and have.command is wanted:
                continue
            if have is not None:
                await self._stop(have)
                del self.active[(model, kind)]
            if wanted is not None:
                self.active[(model, kind)] = await self._start(wanted)

    async def _start(self, command: RolloutCommand) -> Candidate:
        cand = Candidate(command)
        name = f"{command.type} {command.model}@{command.version} ({command.fraction:.0%})"
        try:
            cand.loaded = await self.registry.load(
                command.model, command.version, command.sha256 or None
            )
            if command.type == "shadow":
                await self.ensure_shadow_topics(command.model)
                cand.runner = ShadowRunner(
                    command.model, command.version, cand.loaded.engine, self.send, self.worker_id
                )
        except Exception as exc:
            cand.error = f"{type(exc).__name__}: {exc}"
            log.error("%s not started: %s", name, cand.error)
            return cand
        metrics.ROLLOUT_FRACTION.labels(command.model, command.type, command.version).set(
            command.fraction
        )
        log.info("%s started", name)
        return cand

    async def _stop(self, cand: Candidate) -> None:
        c = cand.command
        metrics.ROLLOUT_FRACTION.labels(c.model, c.type, c.version).set(0)
        if cand.runner is not None:
            await cand.runner.close()
        elif cand.loaded is not None:  # a canary engine may be mid-batch: the pipeline frees it
            self.registry.retire(c.model, cand.loaded.engine)
        log.info("%s of %s@%s ended", c.type, c.model, c.version)

    async def close(self) -> None:
        for cand in list(self.active.values()):
            await self._stop(cand)
        self.active.clear()

    # -- the hot path ----------------------------------------------------------------------
    def split(
        self, model: str, batch: list[Item], active: Active
    ) -> list[tuple[Active, list[Item]]]:
        """The batch cut by which version answers: (loaded version, its items), canary first."""
        cand = self.active.get((model, "canary"))
        if cand is None or cand.loaded is None:
            return [(active, batch)]
        f = cand.command.fraction
        picked = [in_canary(i.key, i.event.id, f) for i in batch]
        mine = [i for i, p in zip(batch, picked, strict=True) if p]
        rest = [i for i, p in zip(batch, picked, strict=True) if not p]
        cand.served += len(mine)
        metrics.CANARY_EVENTS.labels(model, cand.command.version).inc(len(mine))
        parts = [(cand.loaded, mine), (active, rest)]
        return [p for p in parts if p[1]]

    async def after_batch(self, model: str, done: list[tuple[Item, LabelledEvent]]) -> None:
        """Hand the shadow sample of a published batch to the shadow runner."""
        cand = self.active.get((model, "shadow"))
        if cand is None or cand.runner is None:
            return
        f = cand.command.fraction
        await cand.runner.submit([(i, o) for i, o in done if in_shadow(i.event.id, f)])

    # -- reporting -------------------------------------------------------------------------
    def status(self) -> list[RolloutStatus]:
        out = []
        for (model, kind), cand in sorted(self.active.items()):
            c = cand.command
            counts: Any = cand.runner.counts if cand.runner else None
            out.append(
                RolloutStatus(
                    model=model,
                    kind=kind,
                    version=c.version,
                    fraction=c.fraction,
                    loaded=cand.error is None,
                    error=cand.error,
                    events=counts.events if counts else cand.served,
                    agreement=counts.agreement if counts else None,
                    requested_at_ms=c.requested_at_ms,
                )
            )
        return out
