"""Produce a batch of records as one record batch per (topic, partition): the worker's hot path.

Keyed records go to the partition the client's default partitioner picks (murmur2 of the key,
as a single `send` would), so partitioning is the same as record-at-a-time; keyless ones to a
random partition. A record that cannot share a batch (bigger than the request limit) is sent
alone, so that the client refuses it alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from bus.clients import make_producer
from bus.settings import KafkaSettings

Record = tuple[str, bytes | None, bytes]  # topic, key, value


class BatchProducer:
    """A producer with `send_records`; `send`, `start` and `stop` are the client's own."""

    def __init__(self, producer: AIOKafkaProducer, max_record_bytes: int) -> None:
        self.producer = producer
        self.max_record_bytes = max_record_bytes
        self._partitioner = DefaultPartitioner()

    @classmethod
    def create(cls, settings: KafkaSettings) -> BatchProducer:
        return cls(make_producer(settings), settings.max_message_bytes)

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        await self.producer.stop()

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None) -> Any:
        return await self.producer.send(topic, value, key=key)

    async def send_records(self, records: Sequence[Record]) -> list[Any]:
        """Queue every record; per record, the future of its batch's acknowledgement (shared
        by the records of one batch) or the exception that refused it before queueing."""
        out: list[Any] = [None] * len(records)
        groups: dict[tuple[str, int], list[int]] = {}
        parts: dict[str, list[int]] = {}
        for i, (topic, key, value) in enumerate(records):
            if len(value) + len(key or b"") >= self.max_record_bytes:
                out[i] = await self._send_alone(topic, key, value)
                continue
            all_parts = parts.get(topic)
            if all_parts is None:
                all_parts = parts[topic] = sorted(await self.producer.partitions_for(topic))
            partition = self._partitioner(key, all_parts, all_parts)
            groups.setdefault((topic, partition), []).append(i)
        for (topic, partition), indexes in groups.items():
            await self._send_group(records, topic, partition, indexes, out)
        return out

    async def _send_group(
        self,
        records: Sequence[Record],
        topic: str,
        partition: int,
        indexes: list[int],
        out: list[Any],
    ) -> None:
        batch, members = self.producer.create_batch(), list[int]()
        for i in indexes:
            _, key, value = records[i]
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: ship it
                await self._ship(batch, topic, partition, members, out)
                batch, members = self.producer.create_batch(), []
                batch.append(key=key, value=value, timestamp=None)
            members.append(i)
        await self._ship(batch, topic, partition, members, out)

    async def _ship(
        self, batch: Any, topic: str, partition: int, members: list[int], out: list[Any]
    ) -> None:
        batch.close()
        try:
            fut: Any = await self.producer.send_batch(batch, topic, partition=partition)
        except Exception as exc:  # not queued (no metadata for the topic, stopping)
            fut = exc
        for i in members:
            out[i] = fut

    async def _send_alone(self, topic: str, key: bytes | None, value: bytes) -> Any:
        try:
            return await self.producer.send(topic, value, key=key)
        except Exception as exc:  # e.g. MessageSizeTooLargeError
            return exc


async def settle(fut: Any) -> BaseException | None:
    """The outcome of a `send_records` entry: None when acknowledged, else the exception."""
    if isinstance(fut, BaseException):
        return fut
    try:
        await fut
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return exc
    return None
