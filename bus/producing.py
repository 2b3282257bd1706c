"""Produce many records and wait for every acknowledgement: the one sender behind produce,
dlq replay, the demo, tests and benchmarks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from bus.clients import make_producer
from bus.exceptions import BrokerUnavailable, BusError
from bus.settings import KafkaSettings

KeyValue = tuple[bytes | None, bytes | None]
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Delivered:
    """Where the broker stored an acknowledged record."""

    topic: str
    partition: int
    offset: int


class Sender:
    """An open producer: `send_many` returns once the broker acknowledged every record."""

    def __init__(self, producer: AIOKafkaProducer, settings: KafkaSettings) -> None:
        self._producer = producer
        self._settings = settings

    async def send_many(
        self, topic: str, records: Iterable[KeyValue], headers: Headers | None = None
    ) -> list[Delivered]:
        """Send (key, value) pairs (value None = tombstone) to `topic`, each with `headers`;
        wait for all acks; return where each record went, in order."""
        hdrs = list(headers) if headers else None
        try:
            futures = [
                await self._producer.send(topic, value, key=key, headers=hdrs)
                for key, value in records
            ]
            acks = await asyncio.gather(*futures)
        except KafkaConnectionError as exc:
            raise BrokerUnavailable.at(self._settings.bootstrap_servers, exc) from exc
        except KafkaError as exc:
            raise BusError(f"cannot produce to {topic}: {exc!r}") from exc
        return [Delivered(topic, ack.partition, ack.offset) for ack in acks]

    async def send(self, topic: str, value: bytes | None, key: bytes | None = None) -> Delivered:
        return (await self.send_many(topic, [(key, value)]))[0]


@asynccontextmanager
async def sender(settings: KafkaSettings, **overrides: Any) -> AsyncIterator[Sender]:
    """A started producer (`acks=all`) for several `send_many` calls, stopped on exit."""
    producer = make_producer(settings, **overrides)
    try:
        await producer.start()
    except KafkaConnectionError as exc:
        await producer.stop()
        raise BrokerUnavailable.at(settings.bootstrap_servers, exc) from exc
    try:
        yield Sender(producer, settings)
    finally:
        await producer.stop()


async def produce_many(
    settings: KafkaSettings,
    topic: str,
    records: Iterable[KeyValue],
    headers: Headers | None = None,
    **overrides: Any,
) -> list[Delivered]:
    """Open a producer, send every (key, value) to `topic` (each with `headers`), wait for all
    acks, close."""
    async with sender(settings, **overrides) as s:
        return await s.send_many(topic, records, headers)
