"""The worker: decode → route → batch → (cache, infer, publish) → commit, read top to bottom.

Composition root: builds every part from the settings and runs the consume loop. Offsets are
committed only for inputs whose output or dead letter the broker acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

import torch
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from bus.clients import make_consumer, make_producer
from bus.control import ensure_control_topics
from bus.settings import KafkaSettings
from bus.topics import create_topics, list_topics
from modelstore.store import ModelStore
from schemas.control import AnyControl, Rollback, SwapModel
from worker import metrics
from worker.batcher import Batcher, estimate_tokens
from worker.cache import make_cache
from worker.control import ControlListener, starting_version
from worker.decode import Rejected, decode_event
from worker.health import serve_health
from worker.inference import InferenceEngine
from worker.offsets import OffsetTracker
from worker.pipeline import Item, ModelPipeline
from worker.publisher import Publisher
from worker.registry import ModelRegistry
from worker.rollout import Rollouts
from worker.routing import Router
from worker.settings import WorkerSettings
from worker.status import StatusReporter

log = logging.getLogger(__name__)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.joined = True
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class Worker:
    def __init__(self, settings: WorkerSettings, kafka: KafkaSettings | None = None) -> None:
        self.settings = settings
        self.kafka = kafka or KafkaSettings()
        self.router = Router(settings.parsed_routes())
        if not self.router.topics:
            raise ValueError(
                "no routes: give --route IN_TOPIC=MODEL[:OUT_TOPIC] or STREAMCLF_ROUTES"
            )
        self.store = ModelStore(settings.model_store)
        self.tracker = OffsetTracker()
        self.registry = ModelRegistry(self.store, self._make_engine)
        redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
        self.cache = make_cache(
            redis_url,
            settings.cache_enabled,
            settings.cache_ttl_s,
            settings.cache_lru_size,
            settings.redis_timeout_ms,
            settings.redis_retry_s,
        )
        self.batchers: dict[str, Batcher[Item]] = {
            m: Batcher(settings.max_batch, settings.max_wait_ms, settings.max_batch_tokens)
            for m in self.router.models
        }
        self.joined = False
        self.loaded = False
        self.events_in = 0
        self.started_at = time.monotonic()
        self.last_error: str | None = None
        self._stop = asyncio.Event()
        self._fatal: BaseException | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.reporter = StatusReporter(self)

    # -- parts -------------------------------------------------------------------------
    def _make_engine(self, model: str, version: str, sha256: str | None) -> InferenceEngine:
        s = self.settings
        return InferenceEngine(
            self.store.require(model, version),
            device=s.device,
            dtype=s.dtype,
            engine=s.engine,
            max_length=s.max_length,
            max_batch_tokens=s.max_padded_tokens or 0,
            top_k=s.top_k,
            expected_sha256=sha256,
            min_dtype_agreement=s.min_dtype_agreement,
        )

    def ready(self) -> bool:
        return self.joined and self.loaded and not self._stop.is_set()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing in-flight batches, then committing")
        self._stop.set()

    def _on_fatal(self, exc: BaseException) -> None:
        log.error("fatal: %s", exc)
        self._fatal = exc
        self.last_error = str(exc)
        self._stop.set()

    # -- lifecycle ---------------------------------------------------------------------
    async def run(self) -> int:
        """Run until stopped (SIGTERM/SIGINT or `request_stop`); return the exit code."""
        s = self.settings
        if s.torch_threads:
            torch.set_num_threads(s.torch_threads)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop)
        health = (
            serve_health(s.metrics_host, s.metrics_port, self.ready) if s.metrics_port else None
        )
        self.producer = make_producer(self.kafka)
        await self.producer.start()
        self.publisher = Publisher(self.producer, self.tracker, s.worker_id, self._on_fatal)
        try:
            await self._prepare_topics()
            await self._load_models()
            return await self._serve()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.producer.stop()
            await self.cache.close()
            self.registry.shutdown()
            if health:
                health.shutdown()

    async def _prepare_topics(self) -> None:
        s = self.settings
        await ensure_control_topics(self.kafka, s.control_topic, s.status_topic)
        existing = await list_topics(self.kafka)
        for route in self.router.routes:
            parts = existing.get(route.in_topic)
            if parts is None:
                raise ValueError(
                    f"input topic {route.in_topic!r} does not exist; create it first "
                    "(streamclf topics create NAME --partitions N)"
                )
            missing = [t for t in (route.out_topic, route.dlq_topic) if t not in existing]
            if missing:
                await create_topics(self.kafka, missing, parts)

    async def _load_models(self) -> None:
        s = self.settings
        self.control_consumer = make_consumer(self.kafka)
        await self.control_consumer.start()
        key = s.control_key.get_secret_value() if s.control_key else None
        if key is None:
            log.warning(
                "NO CONTROL KEY: this worker accepts UNSIGNED control commands on %s; anyone who "
                "can write that topic can swap its models. Set STREAMCLF_CONTROL_KEY.",
                s.control_topic,
            )
        self.control = ControlListener(
            self.control_consumer, s.control_topic, key, self.router.models
        )
        latest = await self.control.initial_state()
        for model in self.router.models:
            start = starting_version(latest.get(model), self.store, model)
            self.control.set_in_force(model, start.sequence)
            try:
                version = await self.registry.start(model, start.version, start.sha256)
            except Exception as exc:
                if start.source == "store":
                    raise
                log.error(
                    "active version %s@%s from the control topic failed to load (%s); "
                    "using the store's active version",
                    model,
                    start.version,
                    exc,
                )
                self.last_error = f"{model}@{start.version}: {exc}"
                version = await self.registry.start(model, None)
            log.info("serving %s@%s (from the %s)", model, version, start.source)
        await self._start_rollouts()
        self.pipelines = {
            m: ModelPipeline(
                m,
                self.registry,
                self.cache,
                self.publisher,
                s.cache_prefix,
                {
                    r.in_topic
                    for r in self.router.routes
                    if r.in_topic not in s.cache_disabled_routes
                },
                s.worker_id,
                s.max_inflight_batches,
                self.rollouts,
            )
            for m in self.router.models
        }
        self.loaded = True

    async def _serve(self) -> int:
        s = self.settings
        self.consumer = make_consumer(
            self.kafka, group_id=s.group_id, max_poll_records=s.max_batch * 4
        )
        self.consumer.subscribe(self.router.topics, listener=_Rebalance(self))
        await self.consumer.start()
        metrics.READY.set(1)
        for pipeline in self.pipelines.values():
            self._tasks.append(asyncio.create_task(self._guard(pipeline.run(), "pipeline")))
        self._tasks += [
            asyncio.create_task(self._guard(self.control.follow(self._apply_control), "control")),
            asyncio.create_task(self._guard(self._commit_loop(), "commit")),
            asyncio.create_task(self._guard(self.reporter.run(), "status")),
        ]
        try:
            await self._consume_loop()
        finally:
            metrics.READY.set(0)
            clean = await self._drain()
            await self._commit()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.rollouts.close()  # finishes queued shadow work while the producer is up
            await self.consumer.stop()  # leaves the group
            await self.control_consumer.stop()
            for pipeline in self.pipelines.values():
                pipeline.shutdown()
        if self._fatal is not None:
            return 1
        return 0 if clean else 1

    async def _guard(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_fatal(RuntimeError(f"{name} task failed: {type(exc).__name__}: {exc}"))

    # -- the consume loop --------------------------------------------------------------
    async def _consume_loop(self) -> None:
        while not self._stop.is_set():
            records = await self.consumer.getmany(timeout_ms=self._poll_timeout_ms())
            full: list[tuple[str, list[Item]]] = []
            for tp, batch in records.items():
                metrics.EVENTS_IN.labels(tp.topic).inc(len(batch))
                for record in batch:
                    self._ingest(tp, record, full)
            await self.publisher.flush()  # dead letters from decoding
            for model, items in full:
                await self._dispatch(model, items)
            for model, batcher in self.batchers.items():
                if batcher.ready():
                    await self._dispatch(model, batcher.take())

    def _poll_timeout_ms(self) -> int:
        deadlines = [d for b in self.batchers.values() if (d := b.deadline()) is not None]
        if not deadlines:
            return 200
        return max(0, int((min(deadlines) - time.monotonic()) * 1000))

    def _ingest(self, tp: TopicPartition, record: Any, full: list[tuple[str, list[Item]]]) -> None:
        self.tracker.track(tp, record.offset)
        self.events_in += 1
        route = self.router[tp.topic]
        decoded = decode_event(record.value, self.settings.max_message_bytes)
        if isinstance(decoded, Rejected):
            self.publisher.dead_letter(
                route, tp, record.offset, record.key, record.value, decoded.kind, decoded.message
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
        )
        tokens = estimate_tokens(decoded.text, decoded.text_pair, self.settings.max_length)
        batcher = self.batchers[route.model]
        if batcher.would_overflow(tokens):
            full.append((route.model, batcher.take()))
        batcher.add(item, tokens)
        if len(batcher) >= self.settings.max_batch:
            full.append((route.model, batcher.take()))

    async def _dispatch(self, model: str, items: list[Item]) -> None:
        if items:
            metrics.BATCH_WAIT.labels(model).observe(time.monotonic() - items[0].received)
            await self.pipelines[model].queue.put(items)

    async def _flush_batchers(self) -> None:
        for model, batcher in self.batchers.items():
            await self._dispatch(model, batcher.take())

    # -- commits, rebalances, shutdown ---------------------------------------------------
    async def _commit(self, tps: list[TopicPartition] | None = None) -> None:
        offsets = self.tracker.to_commit(tps)
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
            self.tracker.mark_committed(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("commit of %d partitions failed (%s); will retry", len(offsets), exc)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_ms / 1000)
            await self._commit()
            metrics.INFLIGHT.set(self.tracker.in_flight())

    async def _wait_handled(self, tps: list[TopicPartition] | None, timeout_s: float) -> bool:
        await self._flush_batchers()
        deadline = time.monotonic() + timeout_s
        while self.tracker.in_flight(tps) and time.monotonic() < deadline and not self._fatal:
            await self.publisher.flush()
            await asyncio.sleep(0.01)
        return self.tracker.in_flight(tps) == 0

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Finish and commit what is in flight on revoked partitions before giving them up."""
        if not revoked:
            return
        done = await self._wait_handled(revoked, self.settings.shutdown_timeout_s / 2)
        await self._commit(revoked)
        self.tracker.forget(revoked)
        log.info("revoked %d partitions (%s)", len(revoked), "drained" if done else "timed out")

    async def _drain(self) -> bool:
        done = await self._wait_handled(None, self.settings.shutdown_timeout_s)
        ok = await self.publisher.drain(2.0)
        if not (done and ok):
            log.warning(
                "stopped with %d events unfinished; they will be redone after restart",
                self.tracker.in_flight(),
            )
        return done and ok

    # -- control and status --------------------------------------------------------------
    async def _apply_control(self, command: AnyControl) -> None:
        if isinstance(command, Rollback):
            await self.registry.rollback(command.model)
        elif isinstance(command, SwapModel):
            await self.registry.swap(command.model, command.version, command.sha256)
        await self.rollouts.apply(command)  # shadow/canary; a swap completes a canary
        await self.reporter.publish()

    async def _start_rollouts(self) -> None:
        """Join the shadows and canaries the control topic holds in force (durable like swaps)."""

        async def send(topic: str, value: bytes, key: bytes | None) -> Any:
            return await self.producer.send(topic, value, key=key)

        async def shadow_topics(model: str) -> None:
            parts = await list_topics(self.kafka)
            for r in self.router.routes:
                if r.model == model:
                    await create_topics(self.kafka, [f"{r.in_topic}.shadow"], parts[r.in_topic])

        self.rollouts = Rollouts(
            self.registry, self.router.models, send, self.settings.worker_id, shadow_topics
        )
        for command in self.control.history:
            self.rollouts.book.feed(command)
        for model in self.router.models:
            await self.rollouts.reconcile(model)
