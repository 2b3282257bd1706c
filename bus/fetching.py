"""Fetching records so that one record the client cannot parse stops no consumer.

aiokafka decodes record header names as UTF-8 while it fetches: a record whose header name is
not UTF-8 makes `getmany()` raise `UnicodeDecodeError`, and every retry (and every restart)
raises again at the same offset; records of other partitions drained by the same call are
lost to the caller. Every consumer loop fetches through `fetch` instead:

    fetched = await fetch(consumer, timeout_ms=200)
    for tp, records in fetched.records.items(): ...
    for bad in fetched.unreadable: ...   # already skipped: dead-letter, count or log it

On a parse error every partition goes back to where it stood before the call, then the
partitions are read one record at a time until the failing one raises again: its position is
the unreadable offset (on a compacted topic, the first offset at or before it), which is
reported and skipped. What was read before it is returned; nothing readable is skipped. The
client parses a batch from its start, so the records after a bad one in the same producer
batch cannot be read either: each is reported in turn, never silently skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from aiokafka.consumer.fetcher import OffsetResetStrategy

from bus.types import Consumer, ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)
PARSE_ERRORS: tuple[type[Exception], ...] = (UnicodeDecodeError,)  # raised per record
ISOLATE_WAIT_MS = 1000  # per partition: a refetch after the seek back must arrive
ISOLATE_MAX_RECORDS = 500  # read one by one per isolation; the culprit may lie further on

EARLIEST = OffsetResetStrategy.EARLIEST
Batch = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]


@dataclass(frozen=True)
class Unreadable:
    """An offset the client could not parse; the consumer is already past it."""

    topic: str
    partition: int
    offset: int
    reason: str

    @property
    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True)
class Fetched:
    """What one fetch read: records per partition, and the offsets skipped as unreadable
    (each after every returned record of its partition)."""

    records: Batch = field(default_factory=dict)
    unreadable: tuple[Unreadable, ...] = ()


async def fetch(
    consumer: Consumer,
    *partitions: TopicPartition,
    timeout_ms: int = 0,
    max_records: int | None = None,
) -> Fetched:
    """`consumer.getmany(*partitions, ...)` that isolates and skips unreadable records."""
    before = _positions(consumer)
    try:
        batch = await consumer.getmany(*partitions, timeout_ms=timeout_ms, max_records=max_records)
    except PARSE_ERRORS as exc:
        await _restore(consumer, before)
        wanted = list(partitions) or sorted(consumer.assignment())
        return await _isolate(consumer, wanted, exc, max_records or ISOLATE_MAX_RECORDS)
    return Fetched(batch)


async def _isolate(
    consumer: Consumer, partitions: list[TopicPartition], exc: Exception, limit: int
) -> Fetched:
    """Read `partitions` one record at a time until one raises; that offset is skipped."""
    records: Batch = {}
    read = 0
    for tp in partitions:
        while read < limit:
            try:
                got = await consumer.getmany(tp, timeout_ms=ISOLATE_WAIT_MS, max_records=1)
            except PARSE_ERRORS as err:
                offset = await consumer.position(tp)
                consumer.seek(tp, offset + 1)
                bad = Unreadable(tp.topic, tp.partition, offset, _reason(err))
                log.debug("%s: unreadable, skipped: %s", bad.where, bad.reason)  # caller logs
                return Fetched(records, (bad,))
            if not got.get(tp):
                break
            records.setdefault(tp, []).extend(got[tp])
            read += 1
    log.debug("parse error (%s) not isolated yet; %d records read meanwhile", _reason(exc), read)
    return Fetched(records)


def _reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"record header name is not UTF-8 (here or earlier in its batch: {exc.reason})"
    return f"the client cannot parse the record ({type(exc).__name__}: {exc})"


Positions = dict[TopicPartition, tuple[object, int | None, int | None]]


def _positions(consumer: Consumer) -> Positions:
    """Each assigned partition's state, position (None: not known yet) and pending reset
    strategy, without waiting. A new assignment makes new states: an older position is not
    restored."""
    subscription = consumer._subscription.subscription  # no public read that does not wait
    assignment = subscription.assignment if subscription is not None else None
    if assignment is None:
        return {}
    states = {tp: assignment.state_value(tp) for tp in assignment.tps}
    return {
        tp: (s, s.position if s.has_valid_position else None, s._reset_strategy)
        for tp, s in states.items()
    }


async def _restore(consumer: Consumer, before: Positions) -> None:
    """Put back partitions whose records the failed call drained and dropped."""
    for tp, (state, position, _) in _positions(consumer).items():
        was_state, start, strategy = before.get(tp, (None, None, None))
        if position is None:
            continue
        if was_state is not state:  # assigned during the call
            start, strategy = None, None
        if start is None:
            start = await _first_position(consumer, tp, strategy)
        if start is not None and position != start:
            consumer.seek(tp, start)


async def _first_position(
    consumer: Consumer, tp: TopicPartition, strategy: int | None
) -> int | None:
    """Where a partition with no position before the call started: the group's committed
    offset, else the beginning when it was reset to the earliest (None: unknown)."""
    committed: int | None = await consumer.committed(tp) if consumer._group_id else None
    if committed is not None:
        return committed
    earliest = consumer._auto_offset_reset == "earliest" and strategy in (None, EARLIEST)
    if strategy == EARLIEST or earliest:
        return int((await consumer.beginning_offsets([tp]))[tp])
    log.warning("%s[%d]: cannot tell where the failed fetch began", tp.topic, tp.partition)
    return None
