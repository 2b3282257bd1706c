"""Kafka types and errors the services may name, re-exported so that only bus/ imports aiokafka.

Errors are grouped by what the caller should do: `RECORD_REFUSED` are refusals of one record
(too large, invalid) that no retry fixes; any other `KafkaError` may pass on retry.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer as Consumer
from aiokafka import AIOKafkaProducer as Producer
from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    CommitFailedError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
    KafkaError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from aiokafka.structs import ConsumerRecord

RECORD_REFUSED: tuple[type[Exception], ...] = (
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    CorruptRecordException,
    InvalidMessageError,
    InvalidTimestampError,
)

__all__ = [
    "RECORD_REFUSED",
    "CommitFailedError",
    "Consumer",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "KafkaError",
    "MessageSizeTooLargeError",
    "Producer",
    "RecordTooLargeError",
    "TopicPartition",
]
