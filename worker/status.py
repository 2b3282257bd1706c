"""Worker heartbeats: a `WorkerStatus` on the status topic every few seconds."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Protocol

from bus.types import KafkaError
from schemas.status import WorkerStatus
from worker import metrics

if TYPE_CHECKING:
    from bus.types import Producer
    from worker.cache import ResultCache
    from worker.control import ControlListener
    from worker.pipeline import ModelPipeline
    from worker.publisher import Publisher
    from worker.registry import ModelRegistry
    from worker.rollout import Rollouts
    from worker.routing import Router
    from worker.settings import WorkerSettings

log = logging.getLogger(__name__)


class HeartbeatSource(Protocol):
    """What a heartbeat reads of the worker (the worker's composition root provides it); the
    consumer, once there is one, is read as an optional attribute for the lag."""

    @property
    def settings(self) -> WorkerSettings: ...
    @property
    def loaded(self) -> bool: ...
    @property
    def pipelines(self) -> dict[str, ModelPipeline]: ...
    @property
    def last_error(self) -> str | None: ...
    @property
    def control(self) -> ControlListener: ...
    @property
    def router(self) -> Router: ...
    @property
    def registry(self) -> ModelRegistry: ...
    @property
    def events_in(self) -> int: ...
    @property
    def publisher(self) -> Publisher: ...
    @property
    def cache(self) -> ResultCache: ...
    @property
    def rollouts(self) -> Rollouts: ...
    @property
    def producer(self) -> Producer: ...
    def ready(self) -> bool: ...


class StatusReporter:
    """Builds and publishes the worker's heartbeat; events/s is the rate since the last one."""

    def __init__(self, worker: HeartbeatSource) -> None:
        self.worker = worker
        self._last = (time.monotonic(), 0)

    async def lag(self) -> dict[str, int]:
        """High-water mark (from fetch responses) minus position, per assigned partition."""
        lag: dict[str, int] = {}
        consumer = getattr(self.worker, "consumer", None)
        if consumer is None:
            return lag
        for tp in consumer.assignment():
            try:  # a rebalance during an earlier await may have taken `tp` away (AssertionError)
                high = consumer.highwater(tp)
                if high is None:
                    continue
                pos = await asyncio.wait_for(consumer.position(tp), 1.0)
            except (TimeoutError, KafkaError, AssertionError):
                continue
            lag[f"{tp.topic}[{tp.partition}]"] = max(0, high - pos)
            metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, high - pos))
        return lag

    def _rate(self, events_out: int) -> float:
        now = time.monotonic()
        then, before = self._last
        self._last = (now, events_out)
        return (events_out - before) / max(1e-9, now - then)

    async def status(self) -> WorkerStatus:
        w = self.worker
        pipes = list(w.pipelines.values()) if w.loaded else []
        batches = sum(p.batches for p in pipes)
        lookups = sum(p.cache_lookups for p in pipes)
        errors = [
            w.last_error,
            w.control.last_rejection if w.loaded else None,
            *(p.last_error for p in pipes),
        ]
        errors = [e for e in errors if e]
        return WorkerStatus(
            worker_id=w.settings.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            at_ms=int(time.time() * 1000),
            routes={r.in_topic: r.model for r in w.router.routes},
            versions=w.registry.versions(),
            engines=w.registry.engines(),
            events_in=w.events_in,
            events_out=w.publisher.events_out,
            dead_letters=w.publisher.dead_letters,
            batches=batches,
            mean_batch_size=sum(p.events for p in pipes) / batches if batches else 0.0,
            events_per_s=self._rate(w.publisher.events_out),
            cache_hit_ratio=(sum(p.cache_hits for p in pipes) / lookups) if lookups else 0.0,
            cache_state=w.cache.state,
            lag=await self.lag(),
            last_error=errors[0] if errors else None,
            swaps=w.registry.swaps,
            rejected_control=w.control.rejected if w.loaded else 0,
            control_signed=w.settings.control_key is not None,
            rollouts=w.rollouts.status() if w.loaded else [],
            ready=w.ready(),
            drift={p.model: p.drift.snapshot() for p in pipes if p.drift is not None},
        )

    async def publish(self) -> None:
        w = self.worker
        try:
            payload = (await self.status()).model_dump_json().encode()
            await w.producer.send(
                w.settings.status_topic, payload, key=w.settings.worker_id.encode()
            )
        except KafkaError as exc:
            log.warning("status heartbeat not sent: %s", exc)

    async def run(self) -> None:
        while True:
            await self.publish()
            await asyncio.sleep(self.worker.settings.status_interval_s)
