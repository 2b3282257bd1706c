"""Read a topic from where a consumer group left off to the end it had when reading began, and
move the group's committed offsets only when the caller says a chunk is done.

The group is a bookmark and is never joined: partitions are assigned by hand and offsets are
committed with no generation, so there is no rebalance to wait for and nothing is committed
before the caller's own work (e.g. re-sent records acknowledged) has finished.

    async with open_bookmark(settings, "news.dlq", "streamclf-dlq-replay.news.dlq.news") as mark:
        print(mark.remaining, "records to read")
        async for chunk in mark.chunks(500):
            ...                          # act on chunk.records
            await mark.advance(chunk)    # now the next run starts after them
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from bus.clients import make_consumer
from bus.exceptions import BrokerUnavailable, BusError, TopicMissing
from bus.fetching import fetch
from bus.reading import Record, high_waters
from bus.rejected import skip_unreadable
from bus.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Chunk:
    """Records of one fetch, and where each partition stands after them."""

    records: list[Record]
    positions: dict[int, int]  # partition -> next offset to read


class Bookmark:
    """An open reader of one topic between the group's bookmark and the end at opening."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        starts: dict[int, int],
        ends: dict[int, int],
        stall_s: float,
    ) -> None:
        self._consumer = consumer
        self.topic = topic
        self.starts = starts
        self.ends = ends
        self._stall_s = stall_s

    @property
    def remaining(self) -> int:
        """Offsets between the bookmark and the end (an upper bound on a compacted topic)."""
        return sum(max(0, self.ends[p] - self.starts[p]) for p in self.ends)

    async def chunks(self, size: int = 500) -> AsyncIterator[Chunk]:
        """Chunks of at most `size` records until every partition reached its end."""
        consumer, loop = self._consumer, asyncio.get_running_loop()
        parts = {p: TopicPartition(self.topic, p) for p in self.ends}
        last_progress = loop.time()
        while True:
            positions = {p: await consumer.position(tp) for p, tp in parts.items()}
            behind = [parts[p] for p, pos in positions.items() if pos < self.ends[p]]
            if not behind:
                return
            fetched = await fetch(consumer, *behind, timeout_ms=500, max_records=size)
            records = [
                Record(tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp)
                for tp, rs in fetched.records.items()
                for r in rs
            ]
            for bad in fetched.unreadable:  # skipped: the bookmark moves past it
                skip_unreadable(log, "other", bad)
            new_positions = {p: await consumer.position(tp) for p, tp in parts.items()}
            if new_positions != positions:
                last_progress = loop.time()
                yield Chunk(records, new_positions)
            elif loop.time() - last_progress > self._stall_s:
                where = ", ".join(f"{tp.topic}[{tp.partition}]" for tp in behind)
                raise BusError(f"no records from {where} for {self._stall_s:.0f}s")

    async def advance(self, chunk: Chunk) -> None:
        """Move the bookmark past `chunk` (call only once the chunk's work is done)."""
        offsets = {TopicPartition(self.topic, p): o for p, o in chunk.positions.items()}
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            raise BusError(f"cannot commit the bookmark on {self.topic}: {exc!r}") from exc


@contextlib.asynccontextmanager
async def open_bookmark(
    settings: KafkaSettings,
    topic: str,
    group_id: str,
    *,
    from_start: bool = False,
    stall_s: float = 30.0,
) -> AsyncIterator[Bookmark]:
    """Open `topic` at `group_id`'s committed offsets (the beginning where none is committed,
    or with `from_start`), up to the partitions' current ends."""
    consumer = make_consumer(settings, group_id=group_id)
    try:
        try:
            await consumer.start()
            parts = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
            if not parts:
                raise TopicMissing.on([topic], settings.bootstrap_servers)
            consumer.assign(parts)
            starts = await _seek(consumer, parts, from_start)
            ends = {tp.partition: end for tp, end in (await high_waters(consumer, parts)).items()}
            for tp in parts:  # a bookmark past the end: the topic was recreated, start over
                if starts[tp.partition] > ends[tp.partition]:
                    await consumer.seek_to_beginning(tp)
                    starts[tp.partition] = await consumer.position(tp)
        except KafkaConnectionError as exc:
            raise BrokerUnavailable.at(settings.bootstrap_servers, exc) from exc
        except KafkaError as exc:
            raise BusError(f"cannot open {topic} at bookmark {group_id}: {exc!r}") from exc
        yield Bookmark(consumer, topic, starts, ends, stall_s)
    finally:
        await asyncio.sleep(0)  # see bus.reading.iter_records
        with contextlib.suppress(KafkaError):
            await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    parts = consumer.partitions_for_topic(topic)
    if not parts:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
    return set(parts or ())


async def _seek(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], from_start: bool
) -> dict[int, int]:
    """Position each partition at its bookmark (or the beginning); returns the positions."""
    firsts = await consumer.beginning_offsets(parts)
    starts: dict[int, int] = {}
    for tp in parts:
        committed = None if from_start else await consumer.committed(tp)
        start = max(committed or 0, firsts[tp])
        consumer.seek(tp, start)
        starts[tp.partition] = start
    return starts
