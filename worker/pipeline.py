"""One model's path: batches of decoded events → cache → inference (own thread) → publish.

Batches of a model are handled one after another by one task, so outputs of a partition
leave in input order and a hot swap takes effect between two batches; the next batch's cache
lookup and tokenization overlap the current batch's inference.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import TopicPartition

from schemas.deadletter import ErrorKind
from schemas.events import LabelledEvent, LabelScore, TextEvent, Timings
from worker import metrics
from worker.cache import ResultCache, cache_key
from worker.inference import EngineThread, InferenceEngine, Prediction, Prepared
from worker.publisher import Publisher
from worker.registry import Active, ModelRegistry
from worker.routing import Route

if TYPE_CHECKING:
    from worker.rollout import Rollouts

log = logging.getLogger(__name__)
IDLE_RELEASE_S = 1.0  # with no batch for this long, a swapped-out engine is released


@dataclass
class Item:
    """A decoded event waiting for its model, with where it came from."""

    event: TextEvent
    route: Route
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    received: float


@dataclass
class Staged:
    """Part of a batch on one version after its cache lookup, its misses tokenized."""

    batch: list[Item]
    active: Active
    keys: list[str]
    found: dict[str, Prediction]
    todo: dict[str, Item]
    prepared: Prepared | None
    started: float


def prediction_to_dict(p: Prediction) -> dict[str, Any]:
    return {
        "label": p.label,
        "label_id": p.label_id,
        "score": p.score,
        "scores": [list(s) for s in p.scores],
        "truncated": p.truncated,
    }


def prediction_from_dict(d: dict[str, Any]) -> Prediction:
    return Prediction(
        d["label"],
        d["label_id"],
        d["score"],
        [tuple(s) for s in d["scores"]],
        d.get("truncated", False),
    )


class ModelPipeline:
    def __init__(
        self,
        model: str,
        registry: ModelRegistry,
        cache: ResultCache,
        publisher: Publisher,
        cache_prefix: str,
        cache_topics: set[str],
        worker_id: str,
        queue_size: int,
        rollouts: Rollouts | None = None,
    ) -> None:
        self.model = model
        self.rollouts = rollouts
        self.registry = registry
        self.cache = cache
        self.publisher = publisher
        self.cache_prefix = cache_prefix
        self.cache_topics = cache_topics
        self.worker_id = worker_id
        self.queue: asyncio.Queue[list[Item]] = asyncio.Queue(maxsize=queue_size)
        self.thread = EngineThread(model)
        self.batches = 0
        self.events = 0
        self.cache_hits = 0
        self.cache_lookups = 0
        self.last_error: str | None = None
        self._retired: list[Any] = []  # swapped-out engines still used by a staged batch

    async def run(self) -> None:
        """Batches one after another; while one runs on the model, the next one goes through
        the cache lookup and tokenization (`stage`), so the model does not wait for them."""
        ahead: tuple[asyncio.Task[list[Staged]], Any] | None = None  # (staging, its engine)
        try:
            while True:
                if ahead is None:
                    try:
                        batch = await asyncio.wait_for(self.queue.get(), IDLE_RELEASE_S)
                    except TimeoutError:  # idle: no batch runs on a retired engine
                        self._release_unused(None)
                        continue
                    ahead = self._stage_task(batch)
                staged = await ahead[0]
                finishing = asyncio.create_task(self.finish(staged))
                ahead = None
                getter = asyncio.ensure_future(self.queue.get())
                await asyncio.wait({finishing, getter}, return_when=asyncio.FIRST_COMPLETED)
                if getter.done() or not getter.cancel():  # the next batch arrived: stage it
                    ahead = self._stage_task(getter.result())
                try:
                    await finishing
                finally:
                    self.queue.task_done()
                self._release_unused(ahead[1] if ahead else None)
        finally:
            if ahead is not None:
                ahead[0].cancel()

    def _stage_task(self, batch: list[Item]) -> tuple[asyncio.Task[list[Staged]], Any]:
        active = self.registry.current(self.model)
        return asyncio.create_task(self.stage(batch, active)), active.engine

    def _release_unused(self, in_use: Any) -> None:
        """Release swapped-out engines that no batch (running or staged) uses any more."""
        self._retired += self.registry.take_retired(self.model)
        for old in self._retired:
            if old is not in_use:
                old.release()
        self._retired = [e for e in self._retired if e is in_use]

    async def process(self, batch: list[Item]) -> None:
        """One batch start to end (without overlap): stage, then finish."""
        await self.finish(await self.stage(batch, self.registry.current(self.model)))
        self._release_unused(None)

    async def stage(self, batch: list[Item], active: Active) -> list[Staged]:
        """Split by rollout (a canary's keys, then the rest), then per part: cache lookup,
        de-duplication and tokenization of the misses (in the engine's prepare thread)."""
        if self.rollouts is None:
            return [await self._stage_part(batch, active)]
        parts = self.rollouts.split(self.model, batch, active)
        return [await self._stage_part(part, answering) for answering, part in parts]

    async def finish(self, staged: list[Staged]) -> None:
        """Inference, cache fill and outputs of every part; then the rollouts see the batch."""
        done: list[tuple[Item, LabelledEvent]] = []
        for part in staged:
            done += await self._finish_part(part)
        if self.rollouts is not None:
            await self.rollouts.after_batch(self.model, done)

    async def _stage_part(self, batch: list[Item], active: Active) -> Staged:
        started = time.perf_counter()
        keys = [
            cache_key(
                self.cache_prefix, self.model, active.identity, i.event.text, i.event.text_pair
            )
            for i in batch
        ]
        use_cache = [i.route.in_topic in self.cache_topics for i in batch]
        cached = await self.cache.get_many([k for k, u in zip(keys, use_cache, strict=True) if u])
        found: dict[str, Prediction] = {}
        for key, value in zip(
            [k for k, u in zip(keys, use_cache, strict=True) if u], cached, strict=True
        ):
            if value is not None:
                found[key] = prediction_from_dict(value)
        hits = sum(1 for k, u in zip(keys, use_cache, strict=True) if u and k in found)
        self.cache_lookups += sum(use_cache)
        self.cache_hits += hits
        metrics.CACHE_HITS.labels(self.model).inc(hits)
        metrics.CACHE_MISSES.labels(self.model).inc(sum(use_cache) - hits)

        # Identical texts inside a batch are computed once.
        todo: dict[str, Item] = {}
        for key, item in zip(keys, batch, strict=True):
            if key not in found and key not in todo:
                todo[key] = item
        prepared = None
        if todo:
            texts = [i.event.text for i in todo.values()]
            pairs = [i.event.text_pair for i in todo.values()]
            try:
                prepared = await self.thread.prepare(active.engine.prepare, texts, pairs)
            except Exception as exc:  # retried per half in `_infer`, down to single events
                log.warning("tokenization of %d events failed: %s", len(todo), exc)
        return Staged(batch, active, keys, found, todo, prepared, started)

    async def _finish_part(self, staged: Staged) -> list[tuple[Item, LabelledEvent]]:
        """Infer the misses, fill the cache, publish; the published (item, output)s."""
        batch, keys, found, todo = staged.batch, staged.keys, staged.found, staged.todo
        version = staged.active.version
        computed, failed = await self._infer(staged.active.engine, todo, staged.prepared)
        infer_s = time.perf_counter() - staged.started
        if computed:
            await self.cache.set_many(
                {
                    k: prediction_to_dict(p)
                    for k, p in computed.items()
                    if todo[k].route.in_topic in self.cache_topics
                }
            )
        timings = Timings(queue_ms=0.0, inference_ms=infer_s * 1000, batch_size=len(batch))
        done: list[tuple[Item, LabelledEvent]] = []
        for key, item in zip(keys, batch, strict=True):
            if key in failed:
                self.publisher.dead_letter(
                    item.route,
                    item.tp,
                    item.offset,
                    item.key,
                    item.value,
                    ErrorKind.INFERENCE,
                    failed[key],
                    item.event.id,
                )
                continue
            is_hit = key in found
            pred = found[key] if is_hit else computed[key]
            output = self._output(item, pred, version, is_hit, timings)
            self.publisher.labelled(item, output)
            done.append((item, output))
        self.batches += 1
        self.events += len(batch)
        metrics.BATCH_SIZE.labels(self.model).observe(len(batch))
        return done

    async def _infer(
        self, engine: InferenceEngine, todo: dict[str, Item], prepared: Prepared | None = None
    ) -> tuple[dict[str, Prediction], dict[str, str]]:
        """Run the misses (`prepared` when staged); on failure split in halves down to single
        events (dead letters)."""
        if not todo:
            return {}, {}
        keys = list(todo)
        texts = [todo[k].event.text for k in keys]
        pairs = [todo[k].event.text_pair for k in keys]
        t0 = time.perf_counter()
        try:
            if prepared is not None:
                preds = await self.thread.run(engine.run, prepared)
            else:
                preds = await self.thread.run(engine.predict, texts, pairs)
        except Exception as exc:
            self.last_error = f"inference: {type(exc).__name__}: {exc}"
            if len(keys) == 1:
                log.error("inference failed for %s: %s", _where(todo[keys[0]]), exc)
                return {}, {keys[0]: f"{type(exc).__name__}: {exc}"}
            half = len(keys) // 2
            log.warning("inference failed on %d events (%s); retrying in halves", len(keys), exc)
            a = await self._infer(engine, {k: todo[k] for k in keys[:half]})
            b = await self._infer(engine, {k: todo[k] for k in keys[half:]})
            return {**a[0], **b[0]}, {**a[1], **b[1]}
        metrics.INFERENCE_LATENCY.labels(self.model).observe(time.perf_counter() - t0)
        metrics.BATCH_TOKENS.labels(self.model).observe(engine.last_stats.padded_tokens)
        return dict(zip(keys, preds, strict=True)), {}

    def _output(
        self, item: Item, pred: Prediction, version: str, cached: bool, timings: Timings
    ) -> LabelledEvent:
        return LabelledEvent(
            id=item.event.id,
            label=pred.label,
            label_id=pred.label_id,
            score=pred.score,
            scores=[LabelScore(label=s[0], label_id=s[1], score=s[2]) for s in pred.scores],
            model=self.model,
            version=version,
            cached=cached,
            truncated=pred.truncated,
            source_topic=item.tp.topic,
            source_partition=item.tp.partition,
            source_offset=item.offset,
            metadata=item.event.metadata,
            timings=timings,
            worker_id=self.worker_id,
            produced_at_ms=item.timestamp_ms,
        )

    def shutdown(self) -> None:
        self.thread.shutdown()


def _where(item: Item) -> str:
    return f"{item.tp.topic}[{item.tp.partition}]@{item.offset}"
