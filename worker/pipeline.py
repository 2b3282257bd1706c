"""One model's path: batches of decoded events → cache → inference (own thread) → publish.

Batches of a model are handled one after another by one task, so outputs of a partition
leave in input order and a hot swap takes effect between two batches; the next batch's cache
lookup and tokenization overlap the current batch's inference. Every step fails per event: an
event whose cache key, inference or output fails becomes a dead letter naming the step, a
corrupt cached value is a counted miss, and the rest of the batch goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from schemas.deadletter import ErrorKind
from schemas.drift import DriftReference, margin
from schemas.events import LabelledEvent, Timings
from worker import metrics
from worker.cache import ResultCache, cache_key
from worker.cached import checked_prediction, to_dict
from worker.drift import WINDOW_EVENTS, DriftWindow
from worker.inference import EngineThread, InferenceEngine, Prediction, Prepared
from worker.items import Item
from worker.outputs import BatchEncoder
from worker.publisher import Publisher
from worker.registry import Active, ModelRegistry
from worker.review import ReviewRouter

if TYPE_CHECKING:
    from worker.rollout import Rollouts

log = logging.getLogger(__name__)
IDLE_RELEASE_S = 1.0  # with no batch for this long, a swapped-out engine is released


@dataclass
class Staged:
    """Part of a batch on one version after its cache lookup, its misses tokenized."""

    batch: list[Item]
    active: Active
    keyed: list[tuple[str, Item]]  # events whose cache key could be computed, with it
    found: dict[str, Prediction]
    todo: dict[str, Item]
    prepared: Prepared | None
    started: float


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
        review: ReviewRouter | None = None,
        drift_window: int = WINDOW_EVENTS,
    ) -> None:
        self.model = model
        self.rollouts = rollouts
        self.review = review
        self.drift_window = drift_window
        self.drift: DriftWindow | None = None  # of the active version, made at its first batch
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
        self.busy_since: float | None = None  # liveness: a batch is being handled since then
        self.last_progress = time.monotonic()

    async def run(self) -> None:
        """Batches one after another; while one runs on the model, the next one goes through
        the cache lookup and tokenization (`stage`), so the model does not wait for them."""
        ahead: tuple[asyncio.Task[list[Staged]], Any] | None = None  # (staging, its engine)
        try:
            while True:
                self.last_progress = time.monotonic()
                self.busy_since = None
                if ahead is None:
                    try:
                        batch = await asyncio.wait_for(self.queue.get(), IDLE_RELEASE_S)
                    except TimeoutError:  # idle: no batch runs on a retired engine
                        self._release_unused(None)
                        continue
                    ahead = self._stage_task(batch)
                self.busy_since = time.monotonic()
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
        """Inference, cache fill and outputs of every part, published; then the rollouts see
        the batch (as LabelledEvent objects only while a shadow compares with them)."""
        shadow = self.rollouts is not None and (self.model, "shadow") in self.rollouts.active
        done: list[tuple[Item, LabelledEvent]] | None = [] if shadow else None
        for part in staged:
            await self._finish_part(part, done)
        self._drift_batch()
        await self.publisher.flush()
        if self.rollouts is not None and done:
            await self.rollouts.after_batch(self.model, done)

    async def _stage_part(self, batch: list[Item], active: Active) -> Staged:
        started = time.perf_counter()
        keyed = self._keys(batch, active.identity)
        found = await self._lookup(keyed, active.engine)
        todo: dict[str, Item] = {}  # identical texts inside a batch are computed once
        for key, item in keyed:
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
        return Staged(batch, active, keyed, found, todo, prepared, started)

    async def _finish_part(
        self, staged: Staged, done: list[tuple[Item, LabelledEvent]] | None
    ) -> None:
        """Infer the misses, fill the cache, serialise the outputs; `done` gets (item, output)."""
        found, todo = staged.found, staged.todo
        started = time.perf_counter()  # not staged.started: staging overlaps the batch before
        computed, failed = await self._infer(staged.active.engine, todo, staged.prepared)
        await self._store(computed, todo)
        infer_ms = (time.perf_counter() - started) * 1000
        timings = Timings(inference_ms=infer_ms, batch_size=len(staged.batch))
        version = staged.active.version
        encoder = BatchEncoder(self.model, version, self.worker_id, timings)
        drift = (
            self._drift_of(staged.active)
            if staged.active is self.registry.current(self.model)
            else None
        )  # a canary's answers are not the active version's stream
        review = self.review
        for key, item in staged.keyed:
            if key in failed:
                self._dead(item, ErrorKind.INFERENCE, failed[key])
                continue
            cached = key in found
            pred = found[key] if cached else computed[key]
            if not self._emit(encoder, item, pred, cached):
                continue
            if done is not None:
                done.append((item, encoder.event(item, pred, cached)))
            m = margin(pred.scores)
            if drift is not None:
                drift.observe(pred.label_id, pred.score, m, len(item.event.text), pred.truncated)
            if review is not None:
                review.offer(self.model, version, item, pred, m)
        self.batches += 1
        self.events += len(staged.batch)
        metrics.BATCH_SIZE.labels(self.model).observe(len(staged.batch))

    def _drift_of(self, active: Active) -> DriftWindow | None:
        """The active version's window; a swap starts a new one with that version's reference."""
        drift = self.drift
        if drift is not None and drift.version == active.version:
            return drift
        id2label = getattr(active.engine, "id2label", None)
        if not isinstance(id2label, dict):
            return None
        labels = [str(id2label[i]) for i in sorted(id2label)]
        reference = self._reference(active.version)
        if drift is None:
            self.drift = drift = DriftWindow(labels, active.version, reference, self.drift_window)
        else:
            metrics.forget_drift(self.model, drift.version)
            drift.reset(labels, active.version, reference)
        return drift

    def _reference(self, version: str) -> DriftReference | None:
        try:
            return self.registry.store.card(self.model, version).drift_reference
        except Exception as exc:  # an unreadable card: drift without a reference
            log.warning("%s@%s: no drift reference (%s)", self.model, version, exc)
            return None

    def _drift_batch(self) -> None:
        """Dead letters of the batch into the window; the gauges once per batch."""
        drift = self.drift
        if drift is None:
            return
        if dead := self.publisher.take_dead(self.model):
            drift.dead_letter(dead)
        drift.end_batch()
        metrics.record_drift(self.model, drift.snapshot())

    def _keys(self, batch: list[Item], identity: str) -> list[tuple[str, Item]]:
        """Cache keys; an event whose key cannot be computed becomes a `cache_key` dead letter."""
        keyed = []
        for item in batch:
            event = item.event
            try:
                key = cache_key(
                    self.cache_prefix, self.model, identity, event.text, event.text_pair
                )
            except Exception as exc:
                self._dead(item, ErrorKind.CACHE_KEY, f"{type(exc).__name__}: {exc}")
                continue
            keyed.append((key, item))
        return keyed

    async def _lookup(
        self, keyed: list[tuple[str, Item]], engine: InferenceEngine
    ) -> dict[str, Prediction]:
        """Cached predictions, checked against `engine`'s label map and top-k
        (`worker/cached.py`); a value that is not one counts as corrupt and a miss."""
        keys = [k for k, item in keyed if item.route.in_topic in self.cache_topics]
        found: dict[str, Prediction] = {}
        if not keys:
            return found
        corrupt, why = 0, ""
        for key, value in zip(keys, await self.cache.get_many(keys), strict=True):
            if value is None:
                continue
            try:
                found[key] = checked_prediction(value, engine.id2label, engine.top_k)
            except Exception as exc:
                corrupt, why = corrupt + 1, why or f"{type(exc).__name__}: {exc}"
        hits = sum(1 for k in keys if k in found)
        self.cache_lookups += len(keys)
        self.cache_hits += hits
        metrics.CACHE_HITS.labels(self.model).inc(hits)
        metrics.CACHE_MISSES.labels(self.model).inc(len(keys) - hits)
        if corrupt:
            metrics.CACHE_CORRUPT.labels(self.model).inc(corrupt)
            log.warning(
                "%d cached values of %s are not predictions (%s): recomputed",
                corrupt,
                self.model,
                why,
            )
        return found

    async def _store(self, computed: dict[str, Prediction], todo: dict[str, Item]) -> None:
        cacheable = {
            k: to_dict(p)
            for k, p in computed.items()
            if todo[k].route.in_topic in self.cache_topics
        }
        if cacheable:
            await self.cache.set_many(cacheable)

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
            result = dict(zip(keys, preds, strict=True))
        except Exception as exc:
            self.last_error = f"inference: {type(exc).__name__}: {exc}"
            if len(keys) == 1:
                return {}, {keys[0]: f"{type(exc).__name__}: {exc}"}
            half = len(keys) // 2
            log.warning("inference failed on %d events (%s); retrying in halves", len(keys), exc)
            a = await self._infer(engine, {k: todo[k] for k in keys[:half]})
            b = await self._infer(engine, {k: todo[k] for k in keys[half:]})
            return {**a[0], **b[0]}, {**a[1], **b[1]}
        metrics.INFERENCE_LATENCY.labels(self.model).observe(time.perf_counter() - t0)
        metrics.BATCH_TOKENS.labels(self.model).observe(engine.last_stats.padded_tokens)
        return result, {}

    def _emit(self, encoder: BatchEncoder, item: Item, pred: Prediction, cached: bool) -> bool:
        """Serialise one labelled event; if that fails it becomes an `output` dead letter."""
        tp = item.tp
        try:
            value = encoder.encode(
                item.event.id,
                pred,
                cached,
                tp.topic,
                tp.partition,
                item.offset,
                item.event.metadata,
                item.timestamp_ms,
            )
        except Exception as exc:
            self._dead(item, ErrorKind.OUTPUT, f"{type(exc).__name__}: {exc}")
            return False
        self.publisher.labelled(item, value, self.model)
        return True

    def _dead(self, item: Item, kind: ErrorKind, message: str) -> None:
        self.publisher.dead_letter(
            item.route,
            item.tp,
            item.offset,
            item.key,
            item.value,
            kind,
            message,
            item.event.id,
            item.span,
        )

    def shutdown(self) -> None:
        self.thread.shutdown()
