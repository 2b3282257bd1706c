"""The worker: decode → route → batch → (cache, infer, publish) → commit, read top to bottom.

Composition root: builds every part from the settings and runs the consume loop. The
checkpoint (worker/checkpoint.py) owns offsets and commits: an offset is committed only once
the output or dead letter of it and of every earlier offset was acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

import torch

from bus.batching import BatchProducer
from bus.clients import make_consumer
from bus.control import ensure_control_topics
from bus.fetching import fetch
from bus.settings import KafkaSettings
from bus.topics import create_topics, list_topics
from bus.types import ConsumerRebalanceListener, TopicPartition
from modelstore.exceptions import IntegrityError
from modelstore.store import ModelStore
from schemas.control import AnyControl, Rollback, SwapModel
from worker import metrics
from worker.cache import make_cache
from worker.checkpoint import Checkpoint
from worker.control import ControlListener, starting_version
from worker.health import Liveness, serve_health
from worker.inference import InferenceEngine
from worker.intake import Intake
from worker.pipeline import ModelPipeline
from worker.publisher import Publisher
from worker.registry import ModelRegistry
from worker.rollout import Rollouts
from worker.routing import Router
from worker.settings import WorkerSettings
from worker.status import StatusReporter

log = logging.getLogger(__name__)


STEP_TIMEOUT_S = 10.0  # each shutdown step after the drain (commit, leave group)


async def _bounded(coro: Any, what: str, timeout_s: float) -> None:
    """A shutdown step that may not hold the exit: logged and given up after `timeout_s`."""
    try:
        await asyncio.wait_for(coro, timeout_s)
    except TimeoutError:
        log.warning("shutdown: %s took over %.0fs; going on without it", what, timeout_s)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.worker.on_revoked(list(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.joined = True
        self.worker.checkpoint.assign(assigned)
        log.info("assigned %s", sorted(f"{tp.topic}[{tp.partition}]" for tp in assigned))


class Worker:
    def __init__(
        self,
        settings: WorkerSettings,
        kafka: KafkaSettings | None = None,
        producer_factory: Callable[[KafkaSettings], Any] = BatchProducer.create,
    ) -> None:
        self.settings = settings
        self.kafka = kafka or KafkaSettings()
        self._producer_factory = producer_factory
        self.router = Router(settings.parsed_routes())
        if not self.router.topics:
            raise ValueError(
                "no routes: give --route IN_TOPIC=MODEL[:OUT_TOPIC] or STREAMCLF_ROUTES"
            )
        self.store = ModelStore(settings.model_store)
        self.checkpoint = Checkpoint(self._commit_offsets)
        self.liveness = Liveness(settings.stall_timeout_s)
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
        self.joined = False
        self.loaded = False
        self.started_at = time.monotonic()
        self.last_error: str | None = None
        self._stop = asyncio.Event()
        self._stop_deadline = float("inf")
        self._fatal: BaseException | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.reporter = StatusReporter(self)

    # -- parts -------------------------------------------------------------------------
    def _make_engine(self, model: str, version: str, sha256: str | None) -> InferenceEngine:
        return InferenceEngine(
            self.store.require(model, version),
            expected_sha256=sha256,
            **self.settings.engine_options(),
        )

    @property
    def events_in(self) -> int:
        return self.intake.events_in if hasattr(self, "intake") else 0

    def ready(self) -> bool:
        return self.joined and self.loaded and not self._stop.is_set()

    def request_stop(self) -> None:
        if not self._stop.is_set():
            log.info("stopping: finishing in-flight batches, then committing")
            self._stop_deadline = time.monotonic() + self.settings.shutdown_timeout_s
            if hasattr(self, "intake"):
                self.intake.stop_deadline = self._stop_deadline
        self._stop.set()

    def _on_fatal(self, exc: BaseException) -> None:
        log.error("fatal: %s", exc)
        if self._fatal is None:
            self._fatal = exc
        self.last_error = str(exc)
        self.request_stop()

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
            serve_health(s.http_host, s.metrics_port, self.ready, self.liveness.problem)
            if s.metrics_port
            else None
        )
        self._tasks.append(asyncio.create_task(self.liveness.tick()))
        self.producer = self._producer_factory(self.kafka)
        await self.producer.start()
        self.publisher = Publisher(
            self.producer,
            self.checkpoint,
            s.worker_id,
            self._on_fatal,
            max_record_bytes=self.kafka.max_message_bytes,
        )
        self.intake = Intake(s, self.router, self.checkpoint, self.publisher, self.liveness)
        self.intake.stop_deadline = self._stop_deadline
        try:
            await self._prepare_topics()
            await self._load_models()
            return await self._serve()
        finally:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if not self.loaded and hasattr(self, "control_consumer"):  # the start failed
                await _bounded(self.control_consumer.stop(), "control consumer", STEP_TIMEOUT_S)
            await _bounded(self.producer.stop(), "producer flush", STEP_TIMEOUT_S)
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
                if start.source == "store" or isinstance(exc, IntegrityError):
                    raise  # a tampered store stops the start (exit 3), never a silent fallback
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
        self.intake.pipelines = self.pipelines
        self.loaded = True

    async def _serve(self) -> int:
        s = self.settings
        self.consumer = make_consumer(
            self.kafka, group_id=s.group_id, max_poll_records=s.max_batch * 4
        )
        self.consumer.subscribe(self.router.topics, listener=_Rebalance(self))
        await self.consumer.start()
        metrics.READY.set(1)
        for model, pipeline in self.pipelines.items():
            task = asyncio.create_task(self._guard(pipeline.run(), f"pipeline {model}"))
            self.intake.tasks[model] = task
            self.liveness.watch(pipeline, task)
            self._tasks.append(task)
        self._tasks += [
            asyncio.create_task(self._guard(self.control.follow(self._apply_control), "control")),
            asyncio.create_task(self._guard(self._commit_loop(), "commit")),
            asyncio.create_task(self._guard(self.reporter.run(), "status")),
        ]
        try:
            await self._consume_loop()
        finally:
            metrics.READY.set(0)
            self.request_stop()  # also when the loop raised: the drain is bounded from now
            clean = await self._drain()
            await _bounded(self.checkpoint.commit(), "final commit", STEP_TIMEOUT_S)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            # finishes queued shadow work while the producer is up
            await _bounded(self.rollouts.close(), "shadow work", STEP_TIMEOUT_S)
            await _bounded(self.consumer.stop(), "leaving the group", STEP_TIMEOUT_S)
            await _bounded(self.control_consumer.stop(), "control consumer", STEP_TIMEOUT_S)
            for pipeline in self.pipelines.values():
                pipeline.shutdown()
            log.info("stopped (%s)", "drained" if clean else "not drained")
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
            self.liveness.consume_beat = time.monotonic()
            fetched = await fetch(self.consumer, timeout_ms=self.intake.poll_timeout_ms())
            await self.intake.take(fetched.records, fetched.unreadable)

    # -- commits, rebalances, shutdown ---------------------------------------------------
    async def _commit_offsets(self, offsets: dict[TopicPartition, int]) -> None:
        await self.consumer.commit(offsets)

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.commit_interval_ms / 1000)
            await self.checkpoint.commit()
            metrics.INFLIGHT.set(self.checkpoint.in_flight())
            for tp, age in self.checkpoint.oldest_uncommitted_age_s().items():
                metrics.OLDEST_UNCOMMITTED.labels(tp.topic, str(tp.partition)).set(age)

    def _pipelines_dead(self) -> bool:
        return self._fatal is not None or self.intake.pipelines_dead()

    async def on_revoked(self, revoked: list[TopicPartition]) -> None:
        """Finish and commit the in-flight batches of revoked partitions, then give them up."""
        if not revoked:
            return
        await self.intake.flush_batchers()
        timeout_s = min(self.settings.shutdown_timeout_s, self._stop_deadline - time.monotonic())
        done = await self.checkpoint.wait_handled(revoked, timeout_s, self._pipelines_dead)
        await self.checkpoint.commit(revoked)
        self.checkpoint.forget(revoked)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                metrics.OLDEST_UNCOMMITTED.remove(tp.topic, str(tp.partition))
        log.info("revoked %d partitions (%s)", len(revoked), "drained" if done else "timed out")

    async def _drain(self) -> bool:
        await self.intake.flush_batchers()
        left = max(0.0, self._stop_deadline - time.monotonic())
        done = await self.checkpoint.wait_handled(None, left, self._pipelines_dead)
        ok = await self.publisher.drain(min(2.0, max(0.0, self._stop_deadline - time.monotonic())))
        if not (done and ok):
            log.warning(
                "stopped with %d events unfinished; they will be redone after restart",
                self.checkpoint.in_flight(),
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
