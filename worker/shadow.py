"""The shadow runner of one model: the candidate classifies sampled events beside the active one.

The model's pipeline hands over each batch's sampled events with the active version's outputs
(after they were published); the runner classifies them with the candidate on its own thread
and publishes one `ShadowResult` per event to `IN.shadow`. Its queue is bounded, so a slow
candidate slows the live path instead of growing memory; shadow results never reach the
labelled topic and never hold back a commit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas.events import LabelledEvent
from schemas.rollout import ShadowResult
from worker import metrics
from worker.inference import EngineThread, InferenceEngine, Prediction

if TYPE_CHECKING:
    from worker.items import Item

log = logging.getLogger(__name__)
Send = Callable[[str, bytes, bytes | None], Awaitable[Any]]  # (topic, value, key) -> ack future
QUEUE_BATCHES = 8


def shadow_topic(in_topic: str) -> str:
    return f"{in_topic}.shadow"


@dataclass
class ShadowCounts:
    events: int = 0
    agree: int = 0
    failed: int = 0

    @property
    def agreement(self) -> float | None:
        return self.agree / self.events if self.events else None


class ShadowRunner:
    """Owns one candidate engine from start to stop; `close` releases it after the queue."""

    def __init__(
        self, model: str, version: str, engine: InferenceEngine, send: Send, worker_id: str
    ) -> None:
        self.model = model
        self.version = version
        self.engine = engine
        self.send = send
        self.worker_id = worker_id
        self.counts = ShadowCounts()
        self.thread = EngineThread(f"shadow-{model}")
        self.queue: asyncio.Queue[list[tuple[Item, LabelledEvent]] | None] = asyncio.Queue(
            QUEUE_BATCHES
        )
        self.task = asyncio.create_task(self._run())

    async def submit(self, done: list[tuple[Item, LabelledEvent]]) -> None:
        if done:
            await self.queue.put(done)

    async def close(self, timeout_s: float = 30.0) -> None:
        """Finish what is queued (up to `timeout_s`), then release the engine and the thread."""
        await self.queue.put(None)
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning(
                "shadow %s@%s: queue not finished in %.0fs", self.model, self.version, timeout_s
            )
            self.task.cancel()
        self.thread.shutdown()
        self.engine.release()

    async def _run(self) -> None:
        while (done := await self.queue.get()) is not None:
            try:
                await self._classify(done)
            except Exception as exc:  # a shadow failure never touches the live path
                self.counts.failed += len(done)
                where = ", ".join(_where(i) for i, _ in done[:3])
                log.error("shadow %s@%s failed on %s…: %s", self.model, self.version, where, exc)

    async def _classify(self, done: list[tuple[Item, LabelledEvent]]) -> None:
        texts = [i.event.text for i, _ in done]
        pairs = [i.event.text_pair for i, _ in done]
        started = time.perf_counter()
        preds: list[Prediction] = await self.thread.run(self.engine.predict, texts, pairs)
        took_ms = (time.perf_counter() - started) * 1000
        acks = []
        for (item, out), pred in zip(done, preds, strict=True):
            result = self._result(item, out, pred, took_ms, len(done))
            self.counts.events += 1
            self.counts.agree += result.agree
            topic = shadow_topic(item.tp.topic)
            acks.append(await self.send(topic, result.model_dump_json().encode(), item.key))
        await asyncio.gather(*acks)
        metrics.SHADOW_EVENTS.labels(self.model, self.version).inc(len(done))
        if self.counts.agreement is not None:
            metrics.SHADOW_AGREEMENT.labels(self.model, self.version).set(self.counts.agreement)

    def _result(
        self, item: Item, out: LabelledEvent, pred: Prediction, took_ms: float, size: int
    ) -> ShadowResult:
        timings = out.timings
        return ShadowResult(
            id=item.event.id,
            model=self.model,
            active_version=out.version,
            candidate_version=self.version,
            active_label=out.label,
            active_label_id=out.label_id,
            active_score=out.score,
            candidate_label=pred.label,
            candidate_label_id=pred.label_id,
            candidate_score=pred.score,
            agree=out.label == pred.label,
            active_ms=timings.inference_ms if timings else 0.0,
            active_batch=timings.batch_size if timings else 1,
            active_cached=out.cached,
            candidate_ms=took_ms,
            candidate_batch=size,
            source_topic=item.tp.topic,
            source_partition=item.tp.partition,
            source_offset=item.offset,
            worker_id=self.worker_id,
            at_ms=int(time.time() * 1000),
        )


def _where(item: Item) -> str:
    return f"{item.tp.topic}[{item.tp.partition}]@{item.offset}"
