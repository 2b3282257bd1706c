"""Writing records whose header name is not UTF-8 to the real broker.

aiokafka's producers encode header names from `str`; its pure-Python batch builder calls
`name.encode("utf-8")`, so a `str` whose `encode` returns raw bytes writes any bytes there.
The batch goes out through the ordinary producer's `send_batch`.
"""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import _DefaultRecordBatchBuilderPy

from bus.settings import KafkaSettings

BAD_NAME = b"\xff\xfe"


class RawName(str):
    """A header name that encodes to bytes that are not UTF-8."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:  # type: ignore[override]
        return BAD_NAME


async def produce_batch(
    broker: KafkaSettings,
    topic: str,
    values: list[tuple[bytes | None, bytes | None, bool]],
    partition: int = 0,
) -> None:
    """Write (key, value, bad_header) records to `topic[partition]` as one batch, in order;
    those marked carry a header whose name is not UTF-8."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        batch = producer.create_batch()
        batch._builder = _DefaultRecordBatchBuilderPy(
            2, 0, 0, -1, -1, 0, batch_size=16 * 1024 * 1024
        )
        for key, value, bad in values:
            headers = [(RawName("x"), b"1")] if bad else []
            assert batch.append(key=key, value=value, timestamp=None, headers=headers)
        await (await producer.send_batch(batch, topic, partition=partition))
    finally:
        await producer.stop()
