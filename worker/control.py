"""The control-topic listener: every worker reads every command (no consumer group).

At start-up the topic is read from the beginning to its end; for each model the valid swap
with the highest sequence is the one in force (not the last one by offset: a replayed old
command lands at the end). `starting_version` weighs it against the store's active pointer.
Then new commands are applied as they come, and any command whose sequence is not above the
one in force for its model is ignored as stale (a replay, or one overtaken by a newer one).

Every record goes through the strict decoder (`schemas.records.decode_control`; with a key the
header signature is checked on the raw bytes first): a bad one is counted in
`streamclf_rejected_records_total{topic_kind="control"}`, logged once with its offset and
skipped, at start-up and while running; it never stops the worker. So is a record the client
cannot parse at all (a header name that is not UTF-8; `bus.fetching`, reason `header`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bus.fetching import Fetched, fetch
from bus.rejected import skip, skip_unreadable
from bus.types import Consumer, ConsumerRecord, TopicPartition
from modelstore.store import ModelStore
from schemas.control import AnyControl, ControlCommand, SwapModel
from schemas.records import Reason, Rejection, decode_control
from schemas.signing import header_signature

log = logging.getLogger(__name__)
Apply = Callable[[AnyControl], Awaitable[None]]


@dataclass(frozen=True)
class Start:
    """The version a worker loads first, and the sequence of the command that set it."""

    version: str | None  # None: the store's default (its active pointer)
    sha256: str | None
    sequence: int
    source: str  # "control" | "store"


def starting_version(swap: SwapModel | None, store: ModelStore, model: str) -> Start:
    """The control topic's swap, unless the store's pointer was set by a newer command."""
    record = store.active_record(model)
    if swap is not None and swap.order >= record.sequence:
        return Start(swap.version, swap.sha256, swap.order, "control")
    return Start(record.version, None, record.sequence, "store")


class ControlListener:
    def __init__(self, consumer: Consumer, topic: str, key: str | None, models: list[str]) -> None:
        self.consumer = consumer
        self.tp = TopicPartition(topic, 0)
        self.key = key
        self.models = set(models)
        self.in_force: dict[str, int] = {}  # model -> sequence of the command in force
        self.rejected = 0
        self.last_rejection: str | None = None
        self.history: list[AnyControl] = []  # valid commands read by initial_state, in order

    @property
    def signing(self) -> bool:
        return bool(self.key)

    def _verified(self, record: ConsumerRecord[bytes, bytes]) -> AnyControl | None:
        """The record's command when it is valid, signed (with a key) and for our models."""
        where = f"{self.tp.topic}[{record.partition}]@{record.offset}"
        command = decode_control(record.value, self.key, header_signature(record.headers))
        if not isinstance(command, Rejection):
            return command if command.model in self.models else None
        if command.reason is Reason.TOMBSTONE:  # compaction's deletes: nothing to apply
            return None
        if command.reason is Reason.UNKNOWN_TYPE:  # a newer writer's: not an error
            skip(log, "control", where, command, logging.INFO)
            return None
        if skip(log, "control", where, command):
            self._count(f"{where}: {command.message}; ignored")
        return None

    def _records(self, fetched: Fetched) -> list[ConsumerRecord[bytes, bytes]]:
        """The fetched records; unreadable offsets are counted, logged once and skipped."""
        for bad in fetched.unreadable:
            if skip_unreadable(log, "control", bad):
                self._count(f"{bad.where}: {bad.reason}; ignored")
        return fetched.records.get(self.tp, [])

    def _fresh(self, command: ControlCommand, offset: int) -> bool:
        """True (and now in force) when the command is newer than the one in force."""
        current = self.in_force.get(command.model)
        if current is not None and command.order <= current:
            self._reject(
                f"{self.tp.topic}[0]@{offset}: stale {getattr(command, 'type', 'command')} for "
                f"{command.model} (sequence {command.order} <= {current} in force); ignored"
            )
            return False
        self.in_force[command.model] = command.order
        return True

    def _reject(self, message: str) -> None:
        self._count(message)
        log.warning("control: %s", message)

    def _count(self, message: str) -> None:
        """One more rejected command for the heartbeat (`rejected_control`, the last error)."""
        self.rejected += 1
        self.last_rejection = message

    def set_in_force(self, model: str, sequence: int) -> None:
        """Record the sequence of the command behind the version this worker started with."""
        self.in_force[model] = max(sequence, self.in_force.get(model, sequence))

    async def initial_state(self, timeout_s: float = 10.0) -> dict[str, SwapModel]:
        """The valid swap with the highest sequence per routed model, reading start to end."""
        self.consumer.assign([self.tp])
        await self.consumer.seek_to_beginning(self.tp)
        latest: dict[str, SwapModel] = {}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            fetched = await fetch(self.consumer, self.tp, timeout_ms=300)
            for record in self._records(fetched):
                command = self._verified(record)
                if command is None:
                    continue
                self.history.append(command)
                top = self.in_force.get(command.model)
                self.in_force[command.model] = max(command.order, top or command.order)
                best = latest.get(command.model)
                if isinstance(command, SwapModel) and (best is None or command.order >= best.order):
                    latest[command.model] = command
            high = self.consumer.highwater(self.tp)
            if high is not None and await self.consumer.position(self.tp) >= high:
                break
        return latest

    async def follow(self, apply: Apply) -> None:
        """Apply new commands as they arrive (runs until cancelled)."""
        while True:
            fetched = await fetch(self.consumer, self.tp, timeout_ms=1000)
            for record in self._records(fetched):
                command = self._verified(record)
                if command is not None and self._fresh(command, record.offset):
                    await apply(command)
