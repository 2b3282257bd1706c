"""Read a topic until it is quiet: the one reader behind tail, dlq, demo, status, tests, benchmarks.

    async for record in iter_records(settings, ["news.labelled"], quiet_s=2.0):
        ...
    records = await read_until_quiet(settings, ["news.labelled"], expected=100, timeout_s=60)

Without a group the reader assigns every partition itself (nothing is committed); with
`group_id` it joins the group, starts from the group's committed offsets and commits what it
has handed out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError

from bus.clients import make_consumer
from bus.exceptions import BrokerUnavailable, BusError, TopicMissing
from bus.fetching import fetch
from bus.rejected import skip_unreadable
from bus.settings import KafkaSettings

log = logging.getLogger(__name__)
Start = Literal["beginning", "end"] | int  # an int is a timestamp in ms


@dataclass(frozen=True)
class Record:
    """One consumed record, free of the client library's types."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    headers: tuple[tuple[str, bytes], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


@dataclass(frozen=True)
class StopWhen:
    """When a read ends; whichever comes first.

    quiet_s: nothing new for this long (None: follow forever), counted only once `expected`
    records have arrived; timeout_s: overall limit; max_records: this many handed out;
    at_end: the end offsets as they were when reading began are reached.
    """

    quiet_s: float | None = 2.0
    expected: int = 0
    timeout_s: float | None = None
    max_records: int | None = None
    at_end: bool = False


async def iter_records(
    settings: KafkaSettings,
    topics: Sequence[str],
    *,
    start: Start = "beginning",
    group_id: str | None = None,
    stop: StopWhen | None = None,
    wait_for_topics_s: float = 0.0,
    missing_ok: bool = False,
    on_wait: Callable[[list[str]], None] | None = None,
) -> AsyncGenerator[Record, None]:
    """Records of `topics` until `stop` says so. A missing topic raises `TopicMissing`
    (after waiting up to `wait_for_topics_s`; `on_wait` is told the missing topics once, when
    the wait begins), or ends the read at once with `missing_ok`."""
    stop = stop or StopWhen()
    if group_id is not None and (stop.at_end or start not in ("beginning", "end")):
        raise ValueError("a group reads from its committed offsets: no timestamp start or at_end")
    consumer = make_consumer(
        settings, group_id=group_id, auto_offset_reset="latest" if start == "end" else "earliest"
    )
    try:
        await _start(consumer, settings)
        parts = await _partitions(
            consumer, settings, topics, wait_for_topics_s, missing_ok, on_wait
        )
        if parts is None:
            return
        await _position(consumer, parts, topics, start, group_id)
        async for record in _poll(consumer, parts, stop, group_id is not None):
            yield record
    except KafkaConnectionError as exc:
        raise BrokerUnavailable.at(settings.bootstrap_servers, exc) from exc
    except KafkaError as exc:
        raise BusError(f"cannot read {', '.join(topics)}: {exc}") from exc
    finally:
        # Let the client's just-created background task start: stopping before it ran
        # raises CancelledError out of consumer.stop().
        await asyncio.sleep(0)
        with contextlib.suppress(KafkaError):
            await consumer.stop()


async def read_until_quiet(
    settings: KafkaSettings,
    topics: Sequence[str],
    *,
    quiet_s: float = 2.0,
    expected: int = 0,
    timeout_s: float | None = None,
    max_records: int | None = None,
    start: Start = "beginning",
    wait_for_topics_s: float = 0.0,
    missing_ok: bool = False,
) -> list[Record]:
    """Every record from `start` until the topics have been quiet for `quiet_s` (after at
    least `expected` arrived), `timeout_s` passed, or `max_records` were read."""
    stop = StopWhen(quiet_s, expected, timeout_s, max_records)
    reader = iter_records(
        settings,
        topics,
        start=start,
        stop=stop,
        wait_for_topics_s=wait_for_topics_s,
        missing_ok=missing_ok,
    )
    async with contextlib.aclosing(reader):
        return [record async for record in reader]


async def require_topics(settings: KafkaSettings, topics: Sequence[str]) -> dict[str, int]:
    """Topic -> partition count; raises `BrokerUnavailable` or `TopicMissing`."""
    consumer = make_consumer(settings)
    try:
        await _start(consumer, settings)
        parts = await _partitions(consumer, settings, topics, 0.0, False) or []
        return {t: sum(1 for tp in parts if tp.topic == t) for t in topics}
    except KafkaConnectionError as exc:
        raise BrokerUnavailable.at(settings.bootstrap_servers, exc) from exc
    except KafkaError as exc:
        raise BusError(f"cannot describe {', '.join(topics)}: {exc}") from exc
    finally:
        await asyncio.sleep(0)
        with contextlib.suppress(KafkaError):
            await consumer.stop()


async def _start(consumer: AIOKafkaConsumer, settings: KafkaSettings) -> None:
    try:
        await consumer.start()
    except KafkaConnectionError as exc:
        raise BrokerUnavailable.at(settings.bootstrap_servers, exc) from exc


async def _partitions(
    consumer: AIOKafkaConsumer,
    settings: KafkaSettings,
    topics: Sequence[str],
    wait_s: float,
    missing_ok: bool,
    on_wait: Callable[[list[str]], None] | None = None,
) -> list[TopicPartition] | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    waiting = False
    while True:
        found = {t: consumer.partitions_for_topic(t) for t in topics}
        missing = [t for t, parts in found.items() if not parts]
        if not missing:
            return [TopicPartition(t, p) for t, parts in found.items() for p in sorted(parts)]
        if loop.time() >= deadline:
            if missing_ok:
                return None
            raise TopicMissing.on(missing, settings.bootstrap_servers)
        if on_wait is not None and not waiting:
            on_wait(missing)
        waiting = True
        await asyncio.sleep(0.2)
        await consumer._client.force_metadata_update()


async def _position(
    consumer: AIOKafkaConsumer,
    parts: list[TopicPartition],
    topics: Sequence[str],
    start: Start,
    group_id: str | None,
) -> None:
    if group_id is not None:
        consumer.subscribe(list(topics))  # committed offsets, else auto_offset_reset
        return
    consumer.assign(parts)
    if start == "beginning":
        await consumer.seek_to_beginning(*parts)
    elif start == "end":
        for tp, high in (await high_waters(consumer, parts)).items():
            consumer.seek(tp, high)
    else:
        found = await consumer.offsets_for_times({tp: start for tp in parts})
        for tp in parts:
            if found.get(tp) is None:
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found[tp].offset)


async def high_waters(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], wait_s: float = 5.0
) -> dict[TopicPartition, int]:
    """Each partition's high-water mark, read from fetch responses (some Kafka-protocol
    brokers, tansu among them, answer ListOffsets for the end wrongly). Positions move: the
    caller seeks afterwards."""
    positions = {tp: await consumer.position(tp) for tp in parts}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    marks: dict[TopicPartition, int | None] = dict.fromkeys(parts)
    while any(v is None for v in marks.values()) and loop.time() < deadline:
        await fetch(consumer, *parts, timeout_ms=200, max_records=1)
        marks = {tp: consumer.highwater(tp) for tp in parts}
    for tp, position in positions.items():
        consumer.seek(tp, position)
    return {tp: mark or 0 for tp, mark in marks.items()}


async def _poll(
    consumer: AIOKafkaConsumer, parts: list[TopicPartition], stop: StopWhen, commit: bool
) -> AsyncGenerator[Record, None]:
    loop = asyncio.get_running_loop()
    deadline = None if stop.timeout_s is None else loop.time() + stop.timeout_s
    ends = await high_waters(consumer, parts) if stop.at_end else {}
    last_new = loop.time()
    seen = 0
    pending: dict[TopicPartition, int] = {}
    try:
        while deadline is None or loop.time() < deadline:
            if ends and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                return
            fetched = await fetch(consumer, timeout_ms=200)
            for bad in fetched.unreadable:  # counted and logged, committed past
                skip_unreadable(log, "other", bad)
                last_new = loop.time()
            for tp, records in fetched.records.items():
                last_new = loop.time()
                for r in records:
                    if stop.max_records is not None and seen >= stop.max_records:
                        return
                    seen += 1
                    pending[tp] = r.offset + 1
                    yield Record(
                        tp.topic, tp.partition, r.offset, r.key, r.value, r.timestamp,
                        tuple(r.headers or ()),
                    )  # fmt: skip
            if stop.max_records is not None and seen >= stop.max_records:
                return
            for bad in fetched.unreadable:  # after every returned record of its partition
                pending[bad.tp] = bad.offset + 1
            if commit and pending:
                await consumer.commit(dict(pending))
                pending.clear()
            quiet_for = loop.time() - last_new
            if stop.quiet_s is not None and seen >= stop.expected and quiet_for >= stop.quiet_s:
                return
    finally:
        if commit and pending:
            with contextlib.suppress(KafkaError):
                await consumer.commit(dict(pending))
