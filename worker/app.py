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
from worker.review import ReviewPolicy, ReviewRouter
from worker.rollout import Rollouts
from worker.routing import Router
from worker.settings import WorkerSettings
from worker.status import StatusReporter
from worker.stopping import StopBudget, Stopped, bounded, unless_stopped

log = logging.getLogger(__name__)


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
        hard_exit: bool = False,
    ) -> None:
        """`hard_exit`: this worker is the process (the CLI), so a shutdown past its budget
        ends the process (see worker/stopping.py); in-process tests leave it off."""
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
        self.budget = StopBudget(settings.shutdown_timeout_s, hard_exit)
        self._drained = False
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
            log.info(
                "stopping: finishing in-flight batches, then committing (within %.0fs)",
                self.settings.shutdown_timeout_s,
            )
            self.budget.start()
            if hasattr(self, "intake"):
                self.intake.stop_deadline = self.budget.drain_deadline
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
        previous = self._handle_signals(asyncio.get_running_loop())
        health = (
            serve_health(s.http_host, s.metrics_port, self.ready, self.liveness.problem)
            if s.metrics_port
            else None
        )
        self._tasks.append(asyncio.create_task(self.liveness.tick()))
        self.producer = self._producer_factory(self.kafka)
        self.publisher = Publisher(
            self.producer,
            self.checkpoint,
            s.worker_id,
            self._on_fatal,
            max_record_bytes=self.kafka.max_message_bytes,
        )
        self.intake = Intake(s, self.router, self.checkpoint, self.publisher, self.liveness)
        self.intake.stop_deadline = self.budget.drain_deadline
        code = 1
        try:
            code = await self._stages()
            return code
        finally:
            for task in self._tasks:
                task.cancel()
            await bounded(asyncio.gather(*self._tasks, return_exceptions=True), "tasks", 1.0)
            await bounded(self.producer.stop(), "producer flush", self.budget.step_s())
            if hasattr(self, "control_consumer"):
                await bounded(
                    self.control_consumer.stop(), "control consumer", self.budget.step_s()
                )
            await bounded(self.cache.close(), "cache", self.budget.step_s())
            self.registry.shutdown()
            if health:
                health.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.budget.exit_now(code)

    def _handle_signals(self, loop: asyncio.AbstractEventLoop) -> dict[int, Any]:
        """SIGTERM/SIGINT start the stop budget (and the watchdog) in the handler itself, not
        when a busy event loop gets to it; the stop then runs on the loop."""

        def on_signal(signum: int, frame: Any) -> None:
            self.budget.start()
            loop.call_soon_threadsafe(self.request_stop)

        previous: dict[int, Any] = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread: no signals to take
                previous[sig] = signal.signal(sig, on_signal)
        return previous

    async def _stages(self) -> int:
        """Start (every wait of it ends at a stop), then serve until stopped."""
        try:
            await unless_stopped(self._start_up(), self._stop)
        except Stopped:
            log.info("stopped while starting; nothing was consumed")
            return 1 if self._fatal is not None else 0
        return await self._serve()

    async def _start_up(self) -> None:
        await self.producer.start()
        await self._prepare_topics()
        await self._load_models()

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
        review = s.review_topic
        if review and review not in existing:
            parts = existing[self.router.routes[0].in_topic]
            await create_topics(self.kafka, [review], parts)

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
            log.info("loading %s@%s", model, start.version or "(the store's active version)")
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
        self.review = self._review_router()
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
                self.review,
                s.drift_window_events,
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
        try:
            await unless_stopped(self.consumer.start(), self._stop)
        except Stopped:
            pass
        else:
            self._start_tasks()
            await self._consume_loop()
        finally:
            await self._stop_serving()
        if self._fatal is not None:
            return 1
        return 0 if self._drained else 1

    def _start_tasks(self) -> None:
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
        if self.review is not None:
            self._tasks.append(asyncio.create_task(self._guard(self.review.run(), "review")))

    async def _stop_serving(self) -> None:
        """Drain, commit, leave the group: every step inside the stop budget."""
        metrics.READY.set(0)
        self.request_stop()  # also when the loop raised: the drain is bounded from now
        self._drained = await self._drain()
        step = self.budget.step_s
        await bounded(self.checkpoint.commit(), "final commit", step())
        for task in self._tasks:
            task.cancel()
        await bounded(asyncio.gather(*self._tasks, return_exceptions=True), "tasks", step())
        # finishes queued shadow work while the producer is up
        await bounded(self.rollouts.close(), "shadow work", step())
        await bounded(self.consumer.stop(), "leaving the group", step())
        for pipeline in self.pipelines.values():
            pipeline.shutdown()
        log.info("stopped (%s)", "drained" if self._drained else "not drained")

    async def _guard(self, coro: Any, name: str) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._on_fatal(RuntimeError(f"{name} task failed: {type(exc).__name__}: {exc}"))

    # -- the consume loop --------------------------------------------------------------
    async def _consume_loop(self) -> None:
        """Poll and take, until stopped: a poll that waits for an assignment (joining the
        group, a rebalance the broker does not finish) ends at the stop too."""
        while not self._stop.is_set():
            self.liveness.consume_beat = time.monotonic()
            poll = fetch(self.consumer, timeout_ms=self.intake.poll_timeout_ms())
            try:
                fetched = await unless_stopped(poll, self._stop)
            except Stopped:
                return
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
        budget = self.budget
        timeout_s = min(self.settings.shutdown_timeout_s, budget.drain_left_s())

        def give_up() -> bool:  # a stop during the wait shortens it to the stop's budget
            return self._pipelines_dead() or time.monotonic() > budget.drain_deadline

        done = await self.checkpoint.wait_handled(revoked, timeout_s, give_up)
        await self.checkpoint.commit(revoked)
        self.checkpoint.forget(revoked)
        for tp in revoked:
            with contextlib.suppress(KeyError):
                metrics.OLDEST_UNCOMMITTED.remove(tp.topic, str(tp.partition))
        log.info("revoked %d partitions (%s)", len(revoked), "drained" if done else "timed out")

    async def _drain(self) -> bool:
        await self.intake.flush_batchers()
        left = self.budget.drain_left_s()
        done = await self.checkpoint.wait_handled(None, left, self._pipelines_dead)
        ok = await self.publisher.drain(min(2.0, self.budget.drain_left_s() + 1.0))
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

    def _review_router(self) -> ReviewRouter | None:
        """Review requests beside the labelled output (worker/review.py), when configured."""
        s = self.settings
        if not s.review_topic:
            return None
        policy = ReviewPolicy(
            s.review_topic,
            s.review_margin,
            s.review_min_score,
            s.review_sample_rate,
            s.review_rate_per_s,
            s.review_burst,
            s.review_queue_size,
        )

        async def send(topic: str, value: bytes, key: bytes | None) -> Any:
            return await self.producer.send(topic, value, key=key)

        return ReviewRouter(policy, send, s.worker_id)

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
