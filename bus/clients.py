"""Factories for aiokafka producers and consumers with streamclf's delivery defaults."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from bus.exceptions import IdempotenceRefused
from bus.settings import KafkaSettings


def _not_init_pid_error(record: logging.LogRecord) -> bool:
    """aiokafka logs a refused InitProducerId before raising; `BusProducer.start` says it instead."""
    return not str(record.msg).startswith("Unexpected error during InitProducerIdRequest")


logging.getLogger("aiokafka.producer.sender").addFilter(_not_init_pid_error)


class BusProducer(AIOKafkaProducer):
    """aiokafka's producer whose `start` raises `IdempotenceRefused` (a `BusError`) when the
    broker will not give an idempotent producer its id, instead of the client's UnknownError."""

    def __init__(self, settings: KafkaSettings, **kwargs: Any) -> None:
        super().__init__(**settings.client_kwargs(), **kwargs)
        self._bootstrap = settings.bootstrap_servers
        self._idempotent = bool(kwargs.get("enable_idempotence"))

    async def start(self) -> None:
        try:
            await super().start()
        except KafkaConnectionError:
            raise
        except KafkaError as exc:
            if not self._idempotent:
                raise
            # Connected, then refused: the only request left in start() is InitProducerId.
            with contextlib.suppress(KafkaError):
                await self.stop()
            raise IdempotenceRefused.at(self._bootstrap, exc) from exc


def make_producer(settings: KafkaSettings, **overrides: Any) -> BusProducer:
    """An idempotent producer (retries write once) that waits for all in-sync replicas
    (`acks=all`) before a send counts."""
    kwargs: dict[str, Any] = dict(
        acks="all",
        enable_idempotence=settings.enable_idempotence,
        linger_ms=2,
        max_request_size=settings.max_message_bytes,
        max_batch_size=1024 * 1024,
    )
    kwargs.update(overrides)
    return BusProducer(settings, **kwargs)


def make_consumer(
    settings: KafkaSettings, *topics: str, group_id: str | None = None, **overrides: Any
) -> AIOKafkaConsumer:
    """A consumer with manual commits, reading from the earliest offset when none is committed."""
    kwargs: dict[str, Any] = dict(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        max_partition_fetch_bytes=settings.max_message_bytes,
        fetch_max_bytes=max(settings.max_message_bytes, 50 * 1024 * 1024),
    )
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **settings.client_kwargs(), **kwargs)
