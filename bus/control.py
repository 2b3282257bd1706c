"""Publishing and reading control-topic commands (swap, rollback) and status heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from bus.clients import make_consumer, make_producer
from bus.exceptions import BusError
from bus.settings import KafkaSettings
from bus.topics import create_topics
from schemas.control import ControlCommand, Rollback, SwapModel, control_adapter
from schemas.status import WorkerStatus

CONTROL_TOPIC = "streamclf.control"
STATUS_TOPIC = "streamclf.status"


async def ensure_control_topics(
    settings: KafkaSettings, control_topic: str = CONTROL_TOPIC, status_topic: str = STATUS_TOPIC
) -> None:
    """The control topic is compacted with one partition (keyed by model); status is a log."""
    await create_topics(settings, [control_topic], 1, {"cleanup.policy": "compact"})
    await create_topics(settings, [status_topic], 1, {"retention.ms": str(3600 * 1000)})


async def publish_control(
    settings: KafkaSettings,
    message: ControlCommand,
    key: str | None = None,
    topic: str = CONTROL_TOPIC,
) -> None:
    """Sign (when a key is given) and publish a control command keyed by model name.

    A command without a sequence gets its `requested_at_ms` (commands that move the store's
    pointer get theirs from the store, `ModelStore.next_sequence`).
    """
    if message.sequence is None:
        message = message.model_copy(update={"sequence": message.requested_at_ms})
    if key:
        message = message.signed(key)
    await ensure_control_topics(settings, topic)
    producer = make_producer(settings)
    try:
        await producer.start()
        await producer.send_and_wait(
            topic, message.model_dump_json().encode(), key=message.model.encode()
        )
    except KafkaError as exc:
        raise BusError(f"cannot publish to {topic}: {exc}") from exc
    finally:
        await producer.stop()


def decode_control(raw: bytes | None) -> SwapModel | Rollback | None:
    """A control command, or None for a tombstone or an unreadable record."""
    if raw is None:
        return None
    try:
        return control_adapter.validate_json(raw)
    except ValidationError:
        return None


async def read_status(
    settings: KafkaSettings, since_ms: int, topic: str = STATUS_TOPIC, timeout_s: float = 2.0
) -> dict[str, WorkerStatus]:
    """Latest heartbeat per worker among those published since `since_ms` (up to now)."""
    latest: dict[str, WorkerStatus] = {}
    async for status in iter_status(settings, since_ms, topic, timeout_s, follow=False):
        prev = latest.get(status.worker_id)
        if prev is None or status.at_ms >= prev.at_ms:
            latest[status.worker_id] = status
    return latest


async def iter_status(
    settings: KafkaSettings,
    since_ms: int,
    topic: str = STATUS_TOPIC,
    timeout_s: float = 2.0,
    follow: bool = True,
) -> AsyncIterator[WorkerStatus]:
    """Heartbeats from `since_ms` on, until nothing new arrives for `timeout_s`.

    With `follow=False` it also stops at the end of the topic as it was when reading began
    (live workers heartbeat every few seconds, so the topic is never quiet for long).
    """
    consumer = make_consumer(settings)
    try:
        await consumer.start()
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            # Let aiokafka's just-created background task start: stopping before it ran
            # raises CancelledError out of consumer.stop().
            await asyncio.sleep(0)
            return
        tps = [TopicPartition(topic, p) for p in parts]
        consumer.assign(tps)
        offsets = await consumer.offsets_for_times({tp: since_ms for tp in tps})
        for tp in tps:
            found = offsets.get(tp)
            if found is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        ends = {} if follow else await consumer.end_offsets(tps)
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + timeout_s
        while loop.time() < quiet_until:
            if ends and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return
            batch = await consumer.getmany(*tps, timeout_ms=200)
            for records in batch.values():
                quiet_until = loop.time() + timeout_s
                for record in records:
                    try:
                        status = WorkerStatus.model_validate_json(record.value)
                    except ValidationError:
                        continue
                    if status.at_ms >= since_ms:
                        yield status
    finally:
        await consumer.stop()
