"""A record whose header name is not UTF-8 stops no consumer (issue 17, header finding).

aiokafka decodes header names while fetching: such a record made `getmany()` raise
`UnicodeDecodeError` at the same offset forever. Written to the real broker with
`tests.integration.bad_headers`; read with real consumers, workers, the trainer and the CLI.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from bus.clients import make_consumer
from bus.fetching import Unreadable, fetch
from bus.settings import KafkaSettings
from bus.topics import create_topics
from bus.types import TopicPartition
from tests.integration.bad_headers import produce_batch

pytestmark = pytest.mark.integration


def _rows(values: Sequence[str]) -> list[tuple[bytes | None, bytes | None, bool]]:
    """'bad' marks a record with a non-UTF-8 header name; anything else is a good value."""
    return [(v.encode(), v.encode(), v.startswith("bad")) for v in values]


async def _fetch_all(
    broker: KafkaSettings, topic: str, parts: int, expected: int, **kw: Any
) -> tuple[dict[int, list[bytes]], list[Unreadable]]:
    consumer = make_consumer(broker)
    await consumer.start()
    values: dict[int, list[bytes]] = {}
    unreadable: list[Unreadable] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while sum(map(len, values.values())) + len(unreadable) < expected:
            assert loop.time() < deadline, (values, unreadable)
            fetched = await fetch(consumer, timeout_ms=300, **kw)
            for tp, records in fetched.records.items():
                values.setdefault(tp.partition, []).extend(r.value for r in records)
            unreadable += fetched.unreadable
    finally:
        await consumer.stop()
    return values, unreadable


@pytest.mark.parametrize("max_records", [None, 2])
async def test_fetch_returns_every_readable_record_and_skips_the_bad_one(
    broker: KafkaSettings, uid: str, max_records: int | None
) -> None:
    topic = f"hdr.{uid}"
    await create_topics(broker, [topic], partitions=2)
    await produce_batch(broker, topic, _rows(["p1a", "p1b", "p1c"]), partition=1)
    for batch in (["bad0"], ["a", "b"], ["bad3"], ["c", "d", "bad6", "e"], ["f"]):
        await produce_batch(broker, topic, _rows(batch), partition=0)
    await produce_batch(broker, topic, _rows(["p1d"]), partition=1)
    values, unreadable = await _fetch_all(broker, topic, 2, 13, max_records=max_records)
    assert values == {0: [b"a", b"b", b"c", b"d", b"f"], 1: [b"p1a", b"p1b", b"p1c", b"p1d"]}
    # the client parses a batch from its start: what follows a bad record in its batch is
    # unreadable too, and reported (never silently skipped)
    assert [(u.partition, u.offset) for u in unreadable] == [(0, 0), (0, 3), (0, 6), (0, 7)]
    assert all("header name is not UTF-8" in u.reason for u in unreadable)
    assert unreadable[1].where == f"{topic}[0]@3"
