"""`streamclf trainer serve`: training jobs and feedback in, progress and results out.

Jobs run one at a time in a thread (the event loop keeps the consumer alive); an offset is
committed only after the record's result has been published. Records are read through the
strict decoders of `schemas.records`: a malformed job or feedback event is counted
(`streamclf_rejected_records_total`), logged once, answered with an `invalid` result and
committed past; it never stops the service. A record the client cannot parse at all (a header
name that is not UTF-8; `bus.fetching`) is counted with reason `header`, answered and
committed past the same way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bus.clients import make_consumer, make_producer
from bus.fetching import Unreadable, fetch
from bus.rejected import TopicKind, skip, skip_unreadable
from bus.settings import KafkaSettings
from bus.topics import create_topics
from bus.types import ConsumerRecord, Producer, TopicPartition
from modelstore.exceptions import ModelStoreError
from modelstore.store import ModelStore
from schemas.records import Rejection, decode_feedback, decode_job
from schemas.signing import header_signature
from schemas.strictjson import errors_line
from schemas.training import TrainResult
from trainer import metrics
from trainer.checkpoint import Checkpoint
from trainer.config import HYPERPARAMETERS, Progress, TrainConfig
from trainer.data import parse_label
from trainer.exceptions import (
    CheckpointError,
    JobError,
    PromotionRefused,
    TrainerError,
    TrainingInterrupted,
)
from trainer.feedback import FeedbackLog, build_round, original_train_file
from trainer.jobs import check_promotion, confined_paths, redact, secret_values
from trainer.promote import check_gate, request_swap
from trainer.settings import TrainerSettings
from trainer.train import TrainOutcome, train

log = logging.getLogger("streamclf.trainer")
ONE_DAY_MS = 24 * 3600 * 1000
# What a feedback round inherits from the active version's recipe.
INHERITED = ("max_seq_len", "learning_rate", "batch_size", "warmup", "weight_decay",
             "grad_accum_steps", "max_grad_norm", "precision", "seed")  # fmt: skip


class ShuttingDown(Exception):
    """A job was interrupted by shutdown: its offset stays uncommitted, it resumes on restart."""


def _where(record: ConsumerRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"


def _job_id(record: ConsumerRecord) -> str:
    """The record's own `job_id` when it has one (read by the strict decoder), else its place."""
    job = decode_job(record.value)
    if not isinstance(job, Rejection):
        return job.job_id
    job_id = job.payload.get("job_id") if job.payload else None
    return job_id if isinstance(job_id, str) and job_id else _where(record)


def _summary(outcome: TrainOutcome) -> dict[str, Any]:
    card = outcome.card
    return {
        "dev_accuracy": card.dev_metrics.get("accuracy"),
        "dev_macro_f1": card.dev_metrics.get("macro_f1"),
        "test_accuracy": card.test_metrics.get("accuracy"),
        "best_epoch": outcome.best_epoch,
        "examples_per_s": round(outcome.examples_per_s, 2),
        "epochs": card.epochs,
    }


class TrainerService:
    def __init__(self, settings: TrainerSettings, kafka: KafkaSettings) -> None:
        self.settings = settings
        self.kafka = kafka
        self.store = ModelStore(settings.model_store)
        self.feedback = FeedbackLog(self.store)
        self.stop_training = threading.Event()
        self._producer: Producer | None = None
        password = kafka.sasl_password
        self._secrets = secret_values(
            [settings.control_key_value(), password.get_secret_value() if password else None]
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        s = self.settings
        await create_topics(self.kafka, [s.jobs_topic, s.results_topic, s.feedback_topic])
        self._producer = make_producer(self.kafka)
        await self._producer.start()  # before the consumer exists: a refusal leaves nothing open
        consumer = make_consumer(
            self.kafka,
            s.jobs_topic,
            s.feedback_topic,
            group_id=s.group_id,
            max_poll_interval_ms=ONE_DAY_MS,
        )
        await consumer.start()
        log.info(
            "trainer serving %s and %s; jobs may name files under %s; promoting jobs %s",
            s.jobs_topic,
            s.feedback_topic,
            s.data_root.resolve(),
            "must be signed" if s.control_key else "are refused (no STREAMCLF_CONTROL_KEY)",
        )
        watcher = asyncio.create_task(self._watch(stop))
        try:
            while stop is None or not stop.is_set():
                fetched = await fetch(consumer, timeout_ms=300, max_records=20)
                for tp, records in fetched.records.items():
                    for record in records:
                        await self.handle(record)
                        await consumer.commit(
                            {TopicPartition(tp.topic, tp.partition): record.offset + 1}
                        )
                for bad in fetched.unreadable:  # after every record of its partition
                    await self._unreadable(bad)
                    await consumer.commit({bad.tp: bad.offset + 1})
        except ShuttingDown:
            log.info("stopped during a job; it resumes from its checkpoint on restart")
        finally:
            watcher.cancel()
            self.stop_training.set()
            await consumer.stop()
            await self._producer.stop()

    async def _watch(self, stop: asyncio.Event | None) -> None:
        """Turn the service's stop event into a stop of the running training."""
        if stop is not None:
            await stop.wait()
            self.stop_training.set()

    async def publish(self, result: TrainResult) -> None:
        assert self._producer is not None
        update = {"at_ms": int(time.time() * 1000), "error": redact(result.error, self._secrets)}
        result = result.model_copy(update=update)
        metrics.RESULTS.labels(result.status).inc()
        await self._producer.send_and_wait(
            self.settings.results_topic,
            result.model_dump_json().encode(),
            key=result.job_id.encode(),
        )

    async def handle(self, record: ConsumerRecord) -> None:
        """Process one record; every failure becomes a result message, never an exception."""
        try:
            if record.topic == self.settings.jobs_topic:
                await self._job(record)
            else:
                await self._feedback(record)
        except ShuttingDown:
            raise
        except Exception as exc:  # the service outlives any one record
            log.exception("%s: %s", _where(record), exc)
            await self.publish(
                TrainResult(
                    job_id=_job_id(record),
                    status="failed",
                    error=f"{_where(record)}: {type(exc).__name__}: {exc}",
                )
            )

    async def _invalid(
        self, record: ConsumerRecord, error: str, model: str | None = None, logged: bool = False
    ) -> None:
        if not logged:
            log.warning("%s: %s", _where(record), error)
        await self.publish(
            TrainResult(
                job_id=_job_id(record),
                status="invalid",
                model=model,
                error=f"{_where(record)}: {error}",
            )
        )

    async def _rejected(self, record: ConsumerRecord, kind: TopicKind, why: Rejection) -> None:
        """A record that is not a message of its kind: counted, logged once, answered."""
        skip(log, kind, _where(record), why)
        what = "training job" if kind == "job" else "feedback"
        await self._invalid(record, f"malformed {what}: {why.message}", logged=True)

    async def _unreadable(self, bad: Unreadable) -> None:
        """An offset the client could not parse: counted, logged once, answered."""
        kind: TopicKind = "job" if bad.topic == self.settings.jobs_topic else "feedback"
        skip_unreadable(log, kind, bad)
        error = f"{bad.where}: unreadable record: {bad.reason}"
        await self.publish(TrainResult(job_id=bad.where, status="invalid", error=error))

    async def _job(self, record: ConsumerRecord) -> None:
        job = decode_job(record.value)
        if isinstance(job, Rejection):
            await self._rejected(record, "job", job)
            return
        try:
            unknown = sorted(set(job.hyperparameters) - set(HYPERPARAMETERS))
            if unknown:
                await self._invalid(record, f"unknown hyper-parameters {unknown}", job.model)
                return
            signature = header_signature(record.headers)
            check_promotion(job, self.settings.control_key_value(), signature, record.value)
            paths = confined_paths(job, self.settings.data_root)
            config = TrainConfig(
                model=job.model, base_version=job.base_version, **paths, **job.hyperparameters
            )
        except ValidationError as exc:
            await self._invalid(record, f"malformed training job: {errors_line(exc)}", job.model)
            return
        except JobError as exc:
            await self._invalid(record, str(exc), job.model)
            return
        await self._train(job.job_id, config, job.promote)

    async def _train(
        self, job_id: str, config: TrainConfig, promote: bool, extra: dict[str, Any] | None = None
    ) -> TrainResult:
        base = TrainResult(job_id=job_id, status="started", model=config.model, metrics=extra or {})
        await self.publish(base)
        loop = asyncio.get_running_loop()
        last = [0.0]

        def progress(p: Progress) -> None:
            now = time.monotonic()
            if p.phase == "train" and now - last[0] < self.settings.progress_interval_s:
                return
            last[0] = now
            metrics = {
                "phase": p.phase,
                "epoch": p.epoch,
                "epochs": p.epochs,
                "step": p.step,
                "steps": p.steps,
                "loss": p.loss,
                "examples_per_s": p.examples_per_s,
            } | p.metrics
            msg = base.model_copy(update={"status": "progress", "metrics": metrics})
            asyncio.run_coroutine_threadsafe(self.publish(msg), loop)

        try:
            outcome = await asyncio.to_thread(self._run_training, config, progress)
        except (TrainerError, ModelStoreError, ValueError, OSError) as exc:
            interrupted = self.stop_training.is_set() and isinstance(exc, TrainingInterrupted)
            result = base.model_copy(update={"status": "failed", "error": str(exc)})
            await self.publish(result)
            if interrupted:
                raise ShuttingDown from exc
            return result
        metrics.EXAMPLES_PER_S.labels(config.model).set(outcome.examples_per_s)
        result = base.model_copy(
            update={
                "status": "succeeded",
                "version": outcome.version,
                "metrics": (extra or {}) | _summary(outcome),
            }
        )
        if promote:
            result = await self._promote(result, config.model, outcome.version)
        await self.publish(result)
        return result

    def _run_training(self, config: TrainConfig, progress: Any) -> TrainOutcome:
        """Resume from this model's checkpoint when it matches the job, else start fresh."""
        checkpoint = Path(config.checkpoint_dir or self.store.root / ".checkpoints" / config.model)
        if not config.resume and Checkpoint(checkpoint).exists():
            try:
                resumed = config.model_copy(update={"resume": True})
                return train(resumed, self.store, progress, self.stop_training)
            except CheckpointError:
                log.info("checkpoint of %s belongs to another job; starting fresh", config.model)
        return train(config, self.store, progress, self.stop_training)

    async def _promote(self, result: TrainResult, model: str, version: str) -> TrainResult:
        try:
            decision = await asyncio.to_thread(check_gate, self.store, model, version)
        except PromotionRefused as exc:
            return result.model_copy(update={"status": "rejected", "error": str(exc)})
        await request_swap(
            self.kafka,
            self.store,
            model,
            version,
            self.settings.requested_by,
            self.settings.control_key_value(),
            self.settings.control_topic,
        )
        metrics = result.metrics | {"gate": decision.reason}
        return result.model_copy(update={"promoted": True, "metrics": metrics})

    async def _feedback(self, record: ConsumerRecord) -> None:
        event = decode_feedback(record.value)
        if isinstance(event, Rejection):
            await self._rejected(record, "feedback", event)
            return
        model = event.model or self.settings.feedback_model
        if not model:
            await self._invalid(record, "feedback names no model and no default is configured")
            return
        try:
            labels = list(self.store.card(model, self.store.default_version(model)).labels)
            label = parse_label(event.label, labels)
        except (ModelStoreError, ValueError) as exc:
            await self._invalid(record, str(exc), model)
            return
        self.feedback.append(model, event, label)
        metrics.FEEDBACK.labels(model).inc()
        if self.feedback.pending(model) >= self.settings.feedback_threshold:
            await self._feedback_round(model, labels)

    async def _feedback_round(self, model: str, labels: list[str]) -> TrainResult:
        """Fine-tune the active version on new feedback plus replay; promote through the gate."""
        s, store = self.settings, self.store
        active = store.default_version(model)
        card = store.card(model, active)
        number = self.feedback.state(model)["rounds"] + 1
        job_id = f"feedback-{model}-{number}"
        dev = str(s.feedback_dev_path) if s.feedback_dev_path else card.dev_metrics.get("data")
        try:
            if not dev:
                raise JobError(
                    f"{model}@{active} records no dev set; set STREAMCLF_TRAINER_FEEDBACK_DEV_PATH"
                )
            replay = original_train_file(store, model, active)
            path, upto, n_fb, n_replay = build_round(
                self.feedback, model, labels, replay, s.replay_sample, number, s.review_weight
            )
            hyper = {k: v for k, v in card.hyperparameters.items() if k in INHERITED}
            config = TrainConfig(model=model, train=str(path), dev=dev, base_version=active,
                                 **(hyper | {"epochs": s.feedback_epochs}))  # fmt: skip
        except (TrainerError, OSError, ValueError) as exc:
            result = TrainResult(job_id=job_id, status="failed", model=model, error=str(exc))
            self.feedback.mark_trained(model, self.feedback.count(model))
            await self.publish(result)
            return result
        result = await self._train(
            job_id,
            config,
            s.feedback_promote,
            {"feedback_examples": n_fb, "replay_examples": n_replay},
        )
        self.feedback.mark_trained(model, upto)
        return result
