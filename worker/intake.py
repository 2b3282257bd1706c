"""From polled records to queued batches: spans in the checkpoint, one decode per record,
dead letters for what cannot be a text event (or cannot be read at all: `bus.fetching`),
per-model micro-batches for the pipelines.

A full pipeline queue applies backpressure, but never forever: a batch whose pipeline died
(or is stuck past the stop deadline) is left unqueued, its offsets uncommitted, redone later.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from bus.fetching import Unreadable
from bus.types import ConsumerRecord, TopicPartition
from schemas.deadletter import ErrorKind
from schemas.decoding import Rejected, decode_event
from worker import metrics
from worker.batcher import Batcher, estimate_tokens
from worker.checkpoint import Checkpoint, Span
from worker.health import Liveness
from worker.items import Item
from worker.pipeline import ModelPipeline
from worker.publisher import Publisher
from worker.routing import Router
from worker.settings import WorkerSettings

log = logging.getLogger(__name__)
PUT_WAIT_S = 0.5  # how often a blocked dispatch checks that its pipeline still lives


class Intake:
    def __init__(
        self,
        settings: WorkerSettings,
        router: Router,
        checkpoint: Checkpoint,
        publisher: Publisher,
        liveness: Liveness,
    ) -> None:
        self.settings = settings
        self.router = router
        self.checkpoint = checkpoint
        self.publisher = publisher
        self.liveness = liveness
        self.batchers: dict[str, Batcher[Item]] = {
            m: Batcher(settings.max_batch, settings.max_wait_ms, settings.max_batch_tokens)
            for m in router.models
        }
        self.pipelines: dict[str, ModelPipeline] = {}
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self.stop_deadline = float("inf")
        self.events_in = 0

    async def take(
        self,
        records: dict[TopicPartition, list[ConsumerRecord[Any, Any]]],
        unreadable: Sequence[Unreadable] = (),
    ) -> None:
        """Handle one poll: decode everything, then queue the batches that are ready.
        `unreadable` offsets (each after its partition's records) become dead letters."""
        full: list[tuple[str, list[Item]]] = []
        for tp, batch in records.items():
            metrics.EVENTS_IN.labels(tp.topic).inc(len(batch))
            span = self.checkpoint.begin(tp, batch[0].offset, batch[-1].offset, len(batch))
            if span is None:  # revoked meanwhile: its next owner reads these again
                continue
            self.events_in += len(batch)
            for record in batch:
                self._ingest(tp, span, record, full)
        for bad in unreadable:
            self._unreadable(bad)
        await self.publisher.flush()  # dead letters from decoding
        for model, items in full:
            await self.dispatch(model, items)
        for model, batcher in self.batchers.items():
            if batcher.ready():
                await self.dispatch(model, batcher.take())

    def poll_timeout_ms(self) -> int:
        deadlines = [d for b in self.batchers.values() if (d := b.deadline()) is not None]
        if not deadlines:
            return 200
        return max(0, int((min(deadlines) - time.monotonic()) * 1000))

    def _unreadable(self, bad: Unreadable) -> None:
        """A `decode` dead letter without key or value (the client could not give them)."""
        tp = bad.tp
        span = self.checkpoint.begin(tp, bad.offset, bad.offset, 1)
        if span is None:
            return
        metrics.EVENTS_IN.labels(tp.topic).inc()
        self.events_in += 1
        route = self.router[tp.topic]
        self.publisher.dead_letter(route, tp, bad.offset, None, None, ErrorKind.DECODE, bad.reason,
                                   span=span)  # fmt: skip

    def _ingest(
        self, tp: TopicPartition, span: Span, record: ConsumerRecord[Any, Any], full: list[Any]
    ) -> None:
        route = self.router[tp.topic]
        decoded = decode_event(record.value, self.settings.max_message_bytes)
        if isinstance(decoded, Rejected):
            self.publisher.dead_letter(
                route,
                tp,
                record.offset,
                record.key,
                record.value,
                decoded.kind,
                decoded.message,
                span=span,
            )
            return
        item = Item(
            decoded,
            route,
            tp,
            record.offset,
            record.key,
            record.value,
            record.timestamp,
            time.monotonic(),
            span,
        )
        tokens = estimate_tokens(decoded.text, decoded.text_pair, self.settings.max_length)
        batcher = self.batchers[route.model]
        if batcher.would_overflow(tokens):
            full.append((route.model, batcher.take()))
        batcher.add(item, tokens)
        if len(batcher) >= self.settings.max_batch:
            full.append((route.model, batcher.take()))

    async def dispatch(self, model: str, items: list[Item]) -> bool:
        """Queue a batch for its pipeline; False when it was left unqueued (see above)."""
        if not items:
            return True
        metrics.BATCH_WAIT.labels(model).observe(time.monotonic() - items[0].received)
        queue = self.pipelines[model].queue
        task = self.tasks.get(model)
        while True:
            try:
                await asyncio.wait_for(queue.put(items), PUT_WAIT_S)
                return True
            except TimeoutError:
                self.liveness.consume_beat = time.monotonic()
                if (task is not None and task.done()) or time.monotonic() > self.stop_deadline:
                    first = items[0]
                    log.error(
                        "pipeline %s takes no batches: %d events from %s[%d]@%d left undone",
                        model,
                        len(items),
                        first.tp.topic,
                        first.tp.partition,
                        first.offset,
                    )
                    return False

    async def flush_batchers(self) -> None:
        for model, batcher in self.batchers.items():
            await self.dispatch(model, batcher.take())

    def pipelines_dead(self) -> bool:
        return any(t.done() for t in self.tasks.values())
