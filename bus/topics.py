"""Topic administration and consumer lag computed from high-water marks (creation lives in
bus/creating.py and is re-exported here)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from bus.clients import make_consumer
from bus.creating import TopicOutcome, create_topics, create_topics_report
from bus.exceptions import BusError, TopicError
from bus.fetching import fetch
from bus.settings import KafkaSettings

__all__ = [
    "PartitionInfo",
    "TopicOutcome",
    "create_topics",
    "create_topics_report",
    "high_water_marks",
    "list_topics",
    "wait_for_topics",
]


@dataclass(frozen=True)
class PartitionInfo:
    topic: str
    partition: int
    high_water: int
    committed: int | None = None

    @property
    def lag(self) -> int | None:
        if self.committed is None:
            return None
        return max(0, self.high_water - self.committed)


async def list_topics(settings: KafkaSettings) -> dict[str, int]:
    """Topic name -> number of partitions (internal topics left out)."""
    consumer = make_consumer(settings)
    try:
        await consumer.start()
        topics = await consumer.topics()
        result = {}
        for topic in sorted(topics):
            if topic.startswith("__"):
                continue
            parts = consumer.partitions_for_topic(topic) or set()
            result[topic] = len(parts)
        return result
    except KafkaError as exc:
        raise BusError(f"cannot list topics on {settings.bootstrap_servers}: {exc}") from exc
    finally:
        await consumer.stop()


async def wait_for_topics(
    settings: KafkaSettings, names: list[str], timeout_s: float = 15.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        have = await list_topics(settings)
        missing = [n for n in names if n not in have]
        if not missing:
            return
        if loop.time() > deadline:
            raise TopicError(f"topics not visible after {timeout_s}s: {missing}")
        await asyncio.sleep(0.2)


async def high_water_marks(
    settings: KafkaSettings, topic: str, group_id: str | None = None
) -> list[PartitionInfo]:
    """Per-partition high-water marks and, with `group_id`, the group's committed offsets.

    High-water marks are read from a fetch response rather than ListOffsets, which some
    Kafka-protocol brokers answer wrongly.
    """
    consumer = make_consumer(settings, group_id=group_id, max_partition_fetch_bytes=1)
    try:
        await consumer.start()
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
        if not parts:
            raise TopicError(f"topic {topic!r} does not exist")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        marks: dict[TopicPartition, int | None] = {tp: None for tp in tps}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5.0
        while any(v is None for v in marks.values()) and loop.time() < deadline:
            await fetch(consumer, *tps, timeout_ms=200, max_records=1)
            for tp in tps:
                marks[tp] = consumer.highwater(tp)
        infos = []
        for tp in tps:
            committed = await consumer.committed(tp) if group_id else None
            infos.append(PartitionInfo(topic, tp.partition, marks[tp] or 0, committed))
        return infos
    except KafkaError as exc:
        raise BusError(f"cannot read offsets of {topic!r}: {exc}") from exc
    finally:
        await consumer.stop()
