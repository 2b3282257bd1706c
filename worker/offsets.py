"""Offset tracking: the only module that decides what may be committed.

An offset is committable when it and every earlier offset of its partition that this worker
consumed has been fully handled (output or dead letter acknowledged by the broker).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aiokafka import TopicPartition


@dataclass
class _PartitionState:
    pending: deque[int] = field(default_factory=deque)
    done: set[int] = field(default_factory=set)
    next_offset: int | None = None  # the offset to commit: all before it are handled


class OffsetTracker:
    def __init__(self) -> None:
        self._parts: dict[TopicPartition, _PartitionState] = {}
        self._committed: dict[TopicPartition, int] = {}

    def track(self, tp: TopicPartition, offset: int) -> None:
        """Record that `offset` was consumed and is now in flight."""
        state = self._parts.setdefault(tp, _PartitionState())
        state.pending.append(offset)

    def done(self, tp: TopicPartition, offset: int) -> None:
        state = self._parts.get(tp)
        if state is None:  # partition was revoked and forgotten meanwhile
            return
        state.done.add(offset)
        while state.pending and state.pending[0] in state.done:
            finished = state.pending.popleft()
            state.done.discard(finished)
            state.next_offset = finished + 1

    def in_flight(self, tps: list[TopicPartition] | None = None) -> int:
        keys = self._parts.keys() if tps is None else [tp for tp in tps if tp in self._parts]
        return sum(len(self._parts[tp].pending) for tp in keys)

    def to_commit(self, tps: list[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets that advanced since the last `mark_committed`."""
        result = {}
        for tp, state in self._parts.items():
            if tps is not None and tp not in tps:
                continue
            if state.next_offset is not None and state.next_offset != self._committed.get(tp):
                result[tp] = state.next_offset
        return result

    def mark_committed(self, offsets: dict[TopicPartition, int]) -> None:
        self._committed.update(offsets)

    def forget(self, tps: list[TopicPartition]) -> None:
        """Drop state of revoked partitions; unfinished work there will be redone elsewhere."""
        for tp in tps:
            self._parts.pop(tp, None)
            self._committed.pop(tp, None)
