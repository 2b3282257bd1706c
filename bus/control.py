"""Publishing and reading control-topic commands (swap, rollback, shadow, canary) and status
heartbeats. Records are read through the strict decoders of `schemas.records`: a bad one is
counted, logged once and skipped (`bus.rejected`)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator

from bus.producing import produce_many
from bus.reading import StopWhen, iter_records
from bus.rejected import skip
from bus.settings import KafkaSettings
from bus.topics import create_topics
from schemas.control import ControlCommand
from schemas.records import Rejection, decode_status
from schemas.signing import SIGNATURE_HEADER, sign_value
from schemas.status import WorkerStatus

log = logging.getLogger(__name__)
CONTROL_TOPIC = "streamclf.control"
STATUS_TOPIC = "streamclf.status"


async def ensure_control_topics(
    settings: KafkaSettings, control_topic: str = CONTROL_TOPIC, status_topic: str = STATUS_TOPIC
) -> None:
    """The control topic is compacted with one partition (keyed by model); status is a log."""
    await create_topics(settings, [control_topic], 1, {"cleanup.policy": "compact"})
    await create_topics(settings, [status_topic], 1, {"retention.ms": str(3600 * 1000)})


async def publish_control(
    settings: KafkaSettings,
    message: ControlCommand,
    key: str | None = None,
    topic: str = CONTROL_TOPIC,
) -> None:
    """Sign (when a key is given) and publish a control command keyed by `record_key()` (the
    model name for swaps; `model:shadow` and `model:canary` for rollouts, so that compaction
    keeps the latest of each). Signed: the `signature` field (for readers that know only it)
    and the `streamclf-signature` header over the value's bytes as written.

    A command without a sequence gets its `requested_at_ms` (commands that move the store's
    pointer get theirs from the store, `ModelStore.next_sequence`).
    """
    if message.sequence is None:
        message = message.model_copy(update={"sequence": message.requested_at_ms})
    if key:
        message = message.signed(key)
    await ensure_control_topics(settings, topic)
    value = message.model_dump_json().encode()
    headers = [(SIGNATURE_HEADER, sign_value(key, value))] if key else None
    await produce_many(settings, topic, [(message.record_key().encode(), value)], headers)


async def read_status(
    settings: KafkaSettings, since_ms: int, topic: str = STATUS_TOPIC, timeout_s: float = 2.0
) -> dict[str, WorkerStatus]:
    """Latest heartbeat per worker among those published since `since_ms` (up to now)."""
    latest: dict[str, WorkerStatus] = {}
    async for status in iter_status(settings, since_ms, topic, timeout_s, follow=False):
        prev = latest.get(status.worker_id)
        if prev is None or status.at_ms >= prev.at_ms:
            latest[status.worker_id] = status
    return latest


async def iter_status(
    settings: KafkaSettings,
    since_ms: int,
    topic: str = STATUS_TOPIC,
    timeout_s: float = 2.0,
    follow: bool = True,
) -> AsyncGenerator[WorkerStatus, None]:
    """Heartbeats from `since_ms` on, until nothing new arrives for `timeout_s`.

    With `follow=False` it also stops at the end of the topic as it was when reading began
    (live workers heartbeat every few seconds, so the topic is never quiet for long).
    """
    stop = StopWhen(quiet_s=timeout_s, at_end=not follow)
    reader = iter_records(settings, [topic], start=since_ms, stop=stop, missing_ok=True)
    async with contextlib.aclosing(reader):
        async for record in reader:
            status = decode_status(record.value)
            if isinstance(status, Rejection):
                skip(log, "status", record.where, status)
                continue
            if status.at_ms >= since_ms:
                yield status
