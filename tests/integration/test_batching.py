"""bus.batching: one record batch per partition puts each keyed record where a single send
would, acknowledges every record, and refuses an oversized record alone."""

from __future__ import annotations

import pytest

from bus.batching import BatchProducer, settle
from bus.clients import make_producer
from bus.reading import read_until_quiet
from bus.types import MessageSizeTooLargeError
from tests.integration.harness import make_topics

pytestmark = pytest.mark.integration


async def test_batches_land_where_single_sends_do(broker, uid):
    batched, single = f"b-{uid}", f"s-{uid}"
    await make_topics(broker, [batched, single], 4)
    keys = [f"key-{i}".encode() for i in range(200)]
    values = [b'{"id": "%d"}' % i for i in range(200)]
    producer = BatchProducer.create(broker)
    plain = make_producer(broker)
    await producer.start()
    await plain.start()
    try:
        sends = await producer.send_records(
            [(batched, k, v) for k, v in zip(keys, values, strict=True)]
        )
        assert len({id(s) for s in sends}) <= 8  # a few record batches, not 200 sends
        assert [await settle(s) for s in sends] == [None] * 200
        for k, v in zip(keys, values, strict=True):
            await (await plain.send(single, v, key=k))
        huge = b"x" * (broker.max_message_bytes + 1)
        refused = await producer.send_records([(batched, b"big", huge)])
        assert isinstance(await settle(refused[0]), MessageSizeTooLargeError)
    finally:
        await producer.stop()
        await plain.stop()
    where_batched = {o["_key"]: o["_partition"] for o in await _read(broker, batched)}
    where_single = {o["_key"]: o["_partition"] for o in await _read(broker, single)}
    assert len(where_batched) == 200 and where_batched == where_single


async def _read(broker, topic: str) -> list[dict]:
    records = await read_until_quiet(broker, [topic], quiet_s=0.5, expected=200, timeout_s=30)
    return [{"_key": r.key, "_partition": r.partition} for r in records]
