"""Which shadow and canary rollouts the control topic holds in force (pure fold + a reader).

Shared by the worker (at start-up) and the CLI (status, rollback), so that both read the same
history the same way. A rollout is in force when its latest command is not a stop, it is newer
than the model's latest swap, and, for a canary, no swap came after it (a swap completes a
canary; a swap to the shadowed version ends the shadow).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from bus.control import CONTROL_TOPIC
from bus.reading import Record, StopWhen, iter_records
from bus.rejected import skip
from bus.settings import KafkaSettings
from schemas.control import AnyControl, CanaryModel, RolloutCommand, ShadowModel, SwapModel
from schemas.records import Reason, Rejection, decode_control
from schemas.signing import header_signature

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (model, "shadow" | "canary")


class RolloutBook:
    """The rollouts in force per (model, kind), fed commands in control-topic order.

    Commands are weighed by their `order` (the per-model sequence): a rollout command not above
    the one in force for its (model, kind), or not above the model's newest swap, is stale (a
    replay) and ignored; a swap ends only rollouts older than itself.
    """

    def __init__(self) -> None:
        self.in_force: dict[Key, RolloutCommand] = {}
        self.last: dict[Key, int] = {}
        self.swapped: dict[str, int] = {}

    def feed(self, command: AnyControl) -> bool:
        """Apply one command; True when it changed what is in force."""
        if isinstance(command, SwapModel):
            return self._swap(command)
        if not isinstance(command, ShadowModel | CanaryModel):
            return False
        key = (command.model, command.type)
        newest = max(self.last.get(key, -1), self.swapped.get(command.model, -1))
        if command.order <= newest:
            return False
        self.last[key] = command.order
        if command.stop:
            return self.in_force.pop(key, None) is not None
        self.in_force[key] = command
        return True

    def _swap(self, swap: SwapModel) -> bool:
        model = swap.model
        self.swapped[model] = max(self.swapped.get(model, -1), swap.order)
        changed = False
        canary = self.in_force.get((model, "canary"))
        if canary is not None and canary.order < swap.order:  # a swap completes a canary
            del self.in_force[(model, "canary")]
            changed = True
        shadow = self.in_force.get((model, "shadow"))
        if shadow is not None and shadow.order < swap.order and shadow.version == swap.version:
            del self.in_force[(model, "shadow")]  # the shadowed version took over
            changed = True
        return changed

    def get(self, model: str, kind: str) -> RolloutCommand | None:
        return self.in_force.get((model, kind))


async def read_rollouts(
    settings: KafkaSettings, topic: str = CONTROL_TOPIC, key: str | None = None
) -> RolloutBook:
    """The rollouts in force according to the whole control topic (only signed ones with `key`;
    bad records are skipped, see `read_control`)."""
    book = RolloutBook()
    for command in await read_control(settings, topic, key):
        book.feed(command)
    return book


async def read_control(
    settings: KafkaSettings, topic: str = CONTROL_TOPIC, key: str | None = None
) -> list[AnyControl]:
    """Every valid command of the control topic in order (with `key`: only signed ones).
    Tombstones are passed over; any other bad record is counted, logged and skipped."""
    commands = []
    for record in await read_to_end(settings, [topic]):
        command = decode_control(record.value, key, header_signature(record.headers))
        if not isinstance(command, Rejection):
            commands.append(command)
        elif command.reason is not Reason.TOMBSTONE:
            skip(log, "control", record.where, command)
    return commands


async def read_to_end(
    settings: KafkaSettings, topics: Sequence[str], quiet_s: float = 2.0
) -> list[Record]:
    """Every record of `topics` up to their end when reading began (missing topics: none)."""
    stop = StopWhen(quiet_s=quiet_s, at_end=True)
    reader = iter_records(settings, topics, stop=stop, missing_ok=True)
    async with contextlib.aclosing(reader):
        return [record async for record in reader]
