"""The control-topic listener: every worker reads every command (no consumer group).

At start-up the topic is read from the beginning to its end, so a worker started later serves
the currently active version of each model; then new commands are applied as they come.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from bus.control import decode_control
from schemas.control import Rollback, SwapModel

log = logging.getLogger(__name__)
Apply = Callable[[SwapModel | Rollback], Awaitable[None]]


class ControlListener:
    def __init__(
        self, consumer: AIOKafkaConsumer, topic: str, key: str | None, models: list[str]
    ) -> None:
        self.consumer = consumer
        self.tp = TopicPartition(topic, 0)
        self.key = key
        self.models = set(models)
        self.rejected = 0
        self.last_rejection: str | None = None

    def _accept(self, raw: bytes | None, offset: int) -> SwapModel | Rollback | None:
        command = decode_control(raw)
        where = f"{self.tp.topic}[0]@{offset}"
        if command is None:
            if raw is not None:
                self._reject(f"{where}: unreadable control message")
            return None
        if command.model not in self.models:
            return None
        if self.key and not command.verify(self.key):
            why = "unsigned" if not command.signature else "badly signed"
            self._reject(f"{where}: {why} {command.type} for {command.model}; ignored")
            return None
        return command

    def _reject(self, message: str) -> None:
        self.rejected += 1
        self.last_rejection = message
        log.warning("control: %s", message)

    async def initial_state(self, timeout_s: float = 10.0) -> dict[str, SwapModel]:
        """The latest valid swap per routed model, reading the topic from start to end."""
        self.consumer.assign([self.tp])
        await self.consumer.seek_to_beginning(self.tp)
        latest: dict[str, SwapModel] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            batch = await self.consumer.getmany(self.tp, timeout_ms=300)
            for record in batch.get(self.tp, []):
                command = self._accept(record.value, record.offset)
                if isinstance(command, SwapModel):
                    latest[command.model] = command
            high = self.consumer.highwater(self.tp)
            if high is not None and await self.consumer.position(self.tp) >= high:
                break
        return latest

    async def follow(self, apply: Apply) -> None:
        """Apply new commands as they arrive (runs until cancelled)."""
        while True:
            batch = await self.consumer.getmany(self.tp, timeout_ms=1000)
            for record in batch.get(self.tp, []):
                command = self._accept(record.value, record.offset)
                if command is not None:
                    await apply(command)
