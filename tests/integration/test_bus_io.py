"""The one reader (`bus.reading`) and the one sender (`bus.producing`) against a real broker."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bus.exceptions import BrokerUnavailable, TopicMissing
from bus.producing import produce_many
from bus.reading import StopWhen, iter_records, read_until_quiet
from bus.settings import KafkaSettings
from bus.topics import create_topics
from tests.conftest import free_port

pytestmark = pytest.mark.integration


def _records(n: int, prefix: str = "") -> list[tuple[bytes, bytes]]:
    return [(f"k{i}".encode(), f"{prefix}v{i}".encode()) for i in range(n)]


async def test_produce_many_then_read_until_quiet(broker: KafkaSettings, uid: str) -> None:
    topic = f"io.{uid}"
    await create_topics(broker, [topic], partitions=3)
    assert len(await produce_many(broker, topic, _records(50))) == 50
    got = await read_until_quiet(broker, [topic], quiet_s=1.0, expected=50, timeout_s=30)
    assert sorted(r.value for r in got) == sorted(v for _, v in _records(50))
    assert {r.key: r.value for r in got} == dict(_records(50))
    by_partition: dict[int, list[int]] = {}
    for r in got:
        by_partition.setdefault(r.partition, []).append(r.offset)
    assert all(offsets == sorted(offsets) for offsets in by_partition.values())
    assert got[0].where.startswith(f"{topic}[")


async def test_max_records_and_from_end(broker: KafkaSettings, uid: str) -> None:
    topic = f"io.{uid}"
    await create_topics(broker, [topic], partitions=1)
    await produce_many(broker, topic, _records(10))
    first = await read_until_quiet(broker, [topic], max_records=3, timeout_s=30)
    assert [r.value for r in first] == [b"v0", b"v1", b"v2"]
    # from the end: only what is produced after reading began (the old ten never show up)
    reader = iter_records(broker, [topic], start="end", stop=StopWhen(quiet_s=None, timeout_s=30))
    async with contextlib.aclosing(reader):
        pending = asyncio.ensure_future(reader.__anext__())
        while not pending.done():
            await produce_many(broker, topic, _records(1, prefix="new-"))
            await asyncio.wait([pending], timeout=0.5)
        record = pending.result()
    assert record.value == b"new-v0"


async def test_group_continues_where_it_left_off(broker: KafkaSettings, uid: str) -> None:
    topic, group = f"io.{uid}", f"g.{uid}"
    await create_topics(broker, [topic], partitions=1)
    await produce_many(broker, topic, _records(5))
    stop = StopWhen(quiet_s=1.0, max_records=2, timeout_s=30)
    first = [r async for r in iter_records(broker, [topic], group_id=group, stop=stop)]
    assert [r.value for r in first] == [b"v0", b"v1"]
    stop = StopWhen(quiet_s=1.5, timeout_s=30)
    rest = [r async for r in iter_records(broker, [topic], group_id=group, stop=stop)]
    assert [r.value for r in rest] == [b"v2", b"v3", b"v4"]


async def test_missing_topic_and_missing_broker(broker: KafkaSettings, uid: str) -> None:
    with pytest.raises(TopicMissing, match=f"streamclf topics create nope.{uid}"):
        await read_until_quiet(broker, [f"nope.{uid}"], timeout_s=5)
    assert await read_until_quiet(broker, [f"nope.{uid}"], missing_ok=True) == []
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}", request_timeout_ms=3000)
    with pytest.raises(BrokerUnavailable, match="streamclf stack up"):
        await read_until_quiet(nowhere, ["x"], timeout_s=5)
    with pytest.raises(BrokerUnavailable, match="streamclf stack up"):
        await produce_many(nowhere, "x", _records(1))
