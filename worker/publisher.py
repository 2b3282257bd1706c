"""Publishing labelled events and dead letters; an input's offset is handed to the tracker as
done only once the broker acknowledged its output."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer, TopicPartition

from schemas.deadletter import DeadLetter, ErrorKind
from schemas.events import LabelledEvent
from worker import metrics
from worker.offsets import OffsetTracker
from worker.routing import Route

if TYPE_CHECKING:
    from worker.pipeline import Item

log = logging.getLogger(__name__)
DLQ_VALUE_LIMIT = 256 * 1024  # raw bytes kept in a dead letter (the rest is cut and said so)
MAX_SEND_ATTEMPTS = 5


class PublishFailed(RuntimeError):
    """The broker kept refusing an output: the worker must stop without committing it."""


class Publisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        tracker: OffsetTracker,
        worker_id: str,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.producer = producer
        self.tracker = tracker
        self.worker_id = worker_id
        self.on_fatal = on_fatal
        self._pending: list[tuple[str, bytes | None, bytes, TopicPartition, int, str, Any]] = []
        self._inflight: set[asyncio.Future[Any]] = set()
        self.events_out = 0
        self._metric_children: dict[tuple[str, str], tuple[Any, Any]] = {}
        self.dead_letters = 0

    def labelled(self, item: Item, event: LabelledEvent) -> None:
        self._pending.append(
            (
                item.route.out_topic,
                item.key,
                event.model_dump_json().encode(),
                item.tp,
                item.offset,
                "out",
                (item.route.in_topic, event.model, item.timestamp_ms),
            )
        )

    def _children(self, in_topic: str, model: str) -> tuple[Any, Any]:
        """Metric children per (topic, model), looked up once rather than per event."""
        key = (in_topic, model)
        found = self._metric_children.get(key)
        if found is None:
            found = (
                metrics.EVENTS_OUT.labels(in_topic, model),
                metrics.E2E_LATENCY.labels(in_topic),
            )
            self._metric_children[key] = found
        return found

    def dead_letter(
        self,
        route: Route | None,
        tp: TopicPartition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        kind: ErrorKind,
        message: str,
        event_id: str | None = None,
        dlq_topic: str | None = None,
    ) -> None:
        kept = value if value is None or len(value) <= DLQ_VALUE_LIMIT else value[:DLQ_VALUE_LIMIT]
        if value is not None and kept is not value:
            message = f"{message} (value cut to its first {DLQ_VALUE_LIMIT} of {len(value)} bytes)"
        letter = DeadLetter(
            kind=kind,
            message=message,
            key_b64=DeadLetter.encode_bytes(key),
            value_b64=DeadLetter.encode_bytes(kept),
            source_topic=tp.topic,
            source_partition=tp.partition,
            source_offset=offset,
            event_id=event_id,
            worker_id=self.worker_id,
            time_ms=int(time.time() * 1000),
        )
        topic = dlq_topic or (route.dlq_topic if route else tp.topic + ".dlq")
        log.warning("dead letter %s[%d]@%d: %s: %s", tp.topic, tp.partition, offset, kind, message)
        self._pending.append(
            (
                topic,
                key,
                letter.model_dump_json().encode(),
                tp,
                offset,
                "dlq",
                (tp.topic, kind.value, 0),
            )
        )

    async def flush(self) -> None:
        """Hand pending outputs to the producer; acknowledgements complete them later."""
        pending, self._pending = self._pending, []
        for entry in pending:
            await self._send(entry, 1)

    async def _send(self, entry: tuple[Any, ...], attempt: int) -> None:
        topic, key, value = entry[0], entry[1], entry[2]
        fut = await self.producer.send(topic, value, key=key)
        self._inflight.add(fut)
        fut.add_done_callback(lambda f: self._acked(f, entry, attempt))

    def _acked(self, fut: asyncio.Future[Any], entry: tuple[Any, ...], attempt: int) -> None:
        self._inflight.discard(fut)
        _, _, _, tp, offset, kind, extra = entry
        exc = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if exc is not None:
            if attempt >= MAX_SEND_ATTEMPTS:
                self.on_fatal(
                    PublishFailed(
                        f"output of {tp.topic}[{tp.partition}]@{offset} refused {attempt} times: {exc}"
                    )
                )
                return
            log.warning(
                "send for %s[%d]@%d failed (%s); retry %d",
                tp.topic,
                tp.partition,
                offset,
                exc,
                attempt,
            )
            task = asyncio.get_running_loop().create_task(self._retry(entry, attempt))
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
            return
        self.tracker.done(tp, offset)
        if kind == "out":
            in_topic, model, ts_ms = extra
            self.events_out += 1
            out, latency = self._children(in_topic, model)
            out.inc()
            if ts_ms:
                latency.observe(max(0.0, time.time() - ts_ms / 1000))
        else:
            self.dead_letters += 1
            metrics.DEAD_LETTERS.labels(extra[0], extra[1]).inc()

    async def _retry(self, entry: tuple[Any, ...], attempt: int) -> None:
        await asyncio.sleep(min(0.2 * 2**attempt, 5.0))
        await self._send(entry, attempt + 1)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every output handed to the producer is acknowledged."""
        await self.flush()
        deadline = time.monotonic() + timeout_s
        while self._inflight and time.monotonic() < deadline:
            await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - time.monotonic()))
        return not self._inflight
