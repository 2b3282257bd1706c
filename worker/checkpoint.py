"""The checkpoint: the one owner of offsets, acknowledgements and commits (as quix-streams').

Bookkeeping is per span, not per event: a span is the run of offsets one poll returned for one
partition, with a count of its events not yet handled (output or dead letter acknowledged by
the broker). A partition may be committed up to the end of its longest prefix of finished
spans. Partitions exist here from assignment to revocation only: records or acknowledgements
for a partition that is not (or no longer) assigned are ignored, never re-added.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice

from bus.types import CommitFailedError, KafkaError, TopicPartition

log = logging.getLogger(__name__)
CommitFn = Callable[[dict[TopicPartition, int]], Awaitable[None]]


@dataclass(slots=True, eq=False)
class Span:
    """Offsets [first, end) of one partition from one poll; `pending` events unhandled."""

    tp: TopicPartition
    first: int
    end: int
    pending: int
    consumed_at: float


@dataclass(slots=True)
class _Partition:
    spans: deque[Span] = field(default_factory=deque)  # consumed and not yet committed
    finished: int = 0  # spans[:finished] are fully handled
    next_offset: int | None = None  # every offset before it is handled
    committed: int | None = None


class Checkpoint:
    def __init__(self, commit: CommitFn, clock: Callable[[], float] = time.monotonic) -> None:
        self._commit = commit
        self._clock = clock
        self._parts: dict[TopicPartition, _Partition] = {}
        self._progress = asyncio.Event()

    # -- assignment ------------------------------------------------------------------
    def assign(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._parts[tp] = _Partition()

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """Drop revoked partitions: their unfinished work is redone by their next owner."""
        for tp in tps:
            part = self._parts.pop(tp, None)
            if part is not None:
                for span in part.spans:
                    span.pending = -1  # late acknowledgements of it are ignored

    @property
    def partitions(self) -> list[TopicPartition]:
        return list(self._parts)

    # -- bookkeeping -----------------------------------------------------------------
    def begin(self, tp: TopicPartition, first: int, last: int, count: int) -> Span | None:
        """Track `count` events at offsets first..last; None when `tp` is not assigned."""
        part = self._parts.get(tp)
        if part is None:
            return None
        span = Span(tp, first, last + 1, count, self._clock())
        part.spans.append(span)
        return span

    def ack(self, span: Span, count: int = 1) -> None:
        """`count` events of `span` are handled."""
        if span.pending <= 0:  # forgotten partition (or a bug: more acks than events)
            return
        span.pending -= count
        if span.pending > 0:
            return
        part = self._parts.get(span.tp)
        if part is None:
            return
        spans = part.spans
        while part.finished < len(spans) and spans[part.finished].pending <= 0:
            part.next_offset = spans[part.finished].end
            part.finished += 1
        self._progress.set()

    def in_flight(self, tps: Iterable[TopicPartition] | None = None) -> int:
        """Events consumed and not yet handled."""
        parts = self._select(tps)
        return sum(s.pending for p in parts for s in islice(p.spans, p.finished, None))

    def oldest_uncommitted_age_s(self) -> dict[TopicPartition, float]:
        """Per partition: seconds since the oldest consumed but uncommitted event was read."""
        now = self._clock()
        return {
            tp: now - p.spans[0].consumed_at if p.spans else 0.0 for tp, p in self._parts.items()
        }

    # -- commits ---------------------------------------------------------------------
    def to_commit(self, tps: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """Offsets that advanced since the last commit."""
        wanted = None if tps is None else set(tps)
        return {
            tp: p.next_offset
            for tp, p in self._parts.items()
            if (wanted is None or tp in wanted)
            and p.next_offset is not None
            and p.next_offset != p.committed
        }

    async def commit(self, tps: Iterable[TopicPartition] | None = None) -> bool:
        """Commit what advanced; False (and logged) when the broker refused, retried later."""
        offsets = self.to_commit(tps)
        if not offsets:
            return True
        try:
            await self._commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            log.warning("commit of %d partitions failed (%s); will retry", len(offsets), exc)
            return False
        for tp, offset in offsets.items():
            part = self._parts.get(tp)
            if part is None:
                continue
            part.committed = offset
            while part.finished and part.spans[0].end <= offset:
                part.spans.popleft()
                part.finished -= 1
        return True

    async def wait_handled(
        self,
        tps: Iterable[TopicPartition] | None,
        timeout_s: float,
        give_up: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Wait until the given (default: all) partitions have nothing in flight, at most
        `timeout_s`, or until `give_up()` says nothing more will come (a dead pipeline)."""
        selected = None if tps is None else list(tps)
        deadline = self._clock() + timeout_s
        while self.in_flight(selected):
            left = deadline - self._clock()
            if left <= 0 or give_up():
                return False
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), min(left, 0.5))
            except TimeoutError:
                continue
        return True

    def _select(self, tps: Iterable[TopicPartition] | None) -> list[_Partition]:
        if tps is None:
            return list(self._parts.values())
        return [p for tp in tps if (p := self._parts.get(tp)) is not None]
