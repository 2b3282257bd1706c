"""Factories for aiokafka producers and consumers with streamclf's delivery defaults."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bus.settings import KafkaSettings


def make_producer(settings: KafkaSettings, **overrides: Any) -> AIOKafkaProducer:
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
    return AIOKafkaProducer(**settings.client_kwargs(), **kwargs)


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
