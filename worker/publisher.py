"""Publishing labelled events and dead letters, a batch at a time.

Outputs wait in `pending` until `flush()` hands them to the producer together (one record
batch per output partition, bus/batching.py); their acknowledgements are awaited together and
reported to the checkpoint per span. A record the
broker refuses for good (too large, invalid) becomes a `publish` dead letter; any other failure
is retried `max_attempts` times, then the worker stops with the reason (`PublishFailed`), so
that it restarts and redoes the work instead of leaving a hole that stalls commits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bus.batching import Record, settle
from bus.types import RECORD_REFUSED, TopicPartition
from schemas.deadletter import DeadLetter, ErrorKind
from worker import metrics
from worker.checkpoint import Checkpoint, Span
from worker.routing import Route

log = logging.getLogger(__name__)
DLQ_BYTES_LIMIT = 256 * 1024  # raw value (and key) kept in a dead letter; the rest is cut
DLQ_OVERHEAD = 8192  # what a dead letter holds besides the raw bytes (message, coordinates)
DLQ_MESSAGE_LIMIT = 2000
MAX_SEND_ATTEMPTS = 5
LABELLED = "labelled"


class PublishFailed(RuntimeError):
    """The broker kept refusing an output: the worker must stop without committing it."""


class Sender(Protocol):
    async def send_records(self, records: list[Record]) -> list[Any]: ...


@dataclass(slots=True, eq=False)
class Out:
    """One output on its way: a labelled event (`kind` "labelled") or a dead letter."""

    topic: str
    key: bytes | None
    value: bytes
    tp: TopicPartition
    offset: int
    span: Span | None
    kind: str
    label: str  # model (labelled) or the message (dead letter), for metrics and logs
    timestamp_ms: int = 0
    attempt: int = 1
    raw: bytes | None = None  # the input value, kept for a dead letter if the output is refused
    route: Route | None = None
    event_id: str | None = None
    alone: bool = False  # sent in a batch of its own (after its batch was refused)
    stripped: bool = False  # a dead letter without the raw key and value (it was refused)


class Publisher:
    def __init__(
        self,
        producer: Sender,
        checkpoint: Checkpoint,
        worker_id: str,
        on_fatal: Callable[[BaseException], None],
        max_attempts: int = MAX_SEND_ATTEMPTS,
        retry_base_s: float = 0.2,
        max_record_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.producer = producer
        self.checkpoint = checkpoint
        self.worker_id = worker_id
        self.on_fatal = on_fatal
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        # key and value in base64 (4/3) must fit one record together
        self.keep_bytes = max(0, min(DLQ_BYTES_LIMIT, (max_record_bytes - DLQ_OVERHEAD) * 3 // 8))
        self.pending: list[Out] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self.failed = False
        self.events_out = 0
        self.dead_letters = 0
        self._dead_by_model: dict[str, int] = {}  # dead letters made per model, for drift

    # -- what to publish -------------------------------------------------------------
    def labelled(self, item: Any, value: bytes, model: str) -> None:
        """A labelled event (already serialised) for a pipeline `Item`."""
        self.pending.append(
            Out(
                item.route.out_topic,
                item.key,
                value,
                item.tp,
                item.offset,
                item.span,
                LABELLED,
                model,
                item.timestamp_ms,
                raw=item.value,
                route=item.route,
                event_id=item.event.id,
            )
        )

    def dead_letter(
        self,
        route: Route | None,
        tp: TopicPartition,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        kind: ErrorKind,
        message: str,
        event_id: str | None = None,
        span: Span | None = None,
    ) -> None:
        message = message[:DLQ_MESSAGE_LIMIT]
        if route is not None:
            self._dead_by_model[route.model] = self._dead_by_model.get(route.model, 0) + 1
        letter = DeadLetter(
            kind=kind,
            message=message + self._cut_note("value", value) + self._cut_note("key", key),
            key_b64=DeadLetter.encode_bytes(self._cut(key)),
            value_b64=DeadLetter.encode_bytes(self._cut(value)),
            source_topic=tp.topic,
            source_partition=tp.partition,
            source_offset=offset,
            event_id=event_id,
            worker_id=self.worker_id,
            time_ms=int(time.time() * 1000),
        )
        topic = route.dlq_topic if route else tp.topic + ".dlq"
        out = Out(
            topic,
            self._cut(key),
            letter.model_dump_json().encode(),
            tp,
            offset,
            span,
            kind,
            message,
        )
        self.pending.append(out)

    def take_dead(self, model: str) -> int:
        """Dead letters made for `model`'s events since the last call."""
        return self._dead_by_model.pop(model, 0)

    # -- sending ---------------------------------------------------------------------
    async def flush(self) -> None:
        """Hand every pending output to the producer; the batch is settled in the background."""
        if not self.pending or self.failed:
            return
        outs, self.pending = self.pending, []
        self._log_dead_letters(outs)
        together = [o for o in outs if not o.alone]
        sends = await self.producer.send_records([(o.topic, o.key, o.value) for o in together])
        for o in outs:
            if o.alone:
                together.append(o)
                sends += await self.producer.send_records([(o.topic, o.key, o.value)])
        outs = together
        task = asyncio.get_running_loop().create_task(self._settle(outs, sends))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _settle(self, outs: list[Out], sends: list[Any]) -> None:
        acked: dict[Span, int] = {}
        retry: list[Out] = []
        labelled: dict[tuple[str, str], int] = {}
        oldest: dict[str, int] = {}
        shared: dict[int, int] = {}  # how many outputs share one batch's acknowledgement
        for sent in sends:
            shared[id(sent)] = shared.get(id(sent), 0) + 1
        for out, sent in zip(outs, sends, strict=True):
            exc = await settle(sent)
            if exc is not None:
                self._failed_send(out, exc, retry, shared[id(sent)] > 1)
                continue
            if out.span is not None:
                acked[out.span] = acked.get(out.span, 0) + 1
            if out.kind == LABELLED:
                in_topic = out.tp.topic
                labelled[in_topic, out.label] = labelled.get((in_topic, out.label), 0) + 1
                if out.timestamp_ms and out.timestamp_ms < oldest.get(in_topic, 1 << 62):
                    oldest[in_topic] = out.timestamp_ms
            else:
                self.dead_letters += 1
                metrics.DEAD_LETTERS.labels(out.tp.topic, out.kind).inc()
        self._record(labelled, oldest)
        for span, count in acked.items():
            self.checkpoint.ack(span, count)
        if retry and not self.failed:
            await asyncio.sleep(min(self.retry_base_s * 2 ** retry[0].attempt, 5.0))
            self.pending.extend(retry)
            await self.flush()
        elif self.pending:  # dead letters for refused records
            await self.flush()

    def _failed_send(self, out: Out, exc: BaseException, retry: list[Out], shared: bool) -> None:
        where = f"{out.tp.topic}[{out.tp.partition}]@{out.offset}"
        if isinstance(exc, RECORD_REFUSED) and shared:  # which one? each alone, once more
            out.alone = True
            retry.append(out)
        elif isinstance(exc, RECORD_REFUSED) and out.kind == LABELLED:
            self.dead_letter(
                out.route,
                out.tp,
                out.offset,
                out.key,
                out.raw,
                ErrorKind.PUBLISH,
                f"the broker refused the labelled event for {out.topic}: {_describe(exc)}",
                out.event_id,
                out.span,
            )
        elif isinstance(exc, RECORD_REFUSED) and not out.stripped:
            _strip(out, exc)  # a dead letter refused for its size: once more, without raw bytes
            retry.append(out)
        elif out.attempt >= self.max_attempts or self.failed:
            self.failed = True
            self.on_fatal(
                PublishFailed(
                    f"output of {where} to {out.topic} failed {out.attempt} times: {_describe(exc)}"
                )
            )
        else:
            log.warning(
                "send of %s to %s failed (%s); retry %d", where, out.topic, exc, out.attempt
            )
            out.attempt += 1
            retry.append(out)

    def _record(self, labelled: dict[tuple[str, str], int], oldest: dict[str, int]) -> None:
        """Metrics once per batch: counts per (topic, model), latency of the oldest event."""
        for (in_topic, model), count in labelled.items():
            self.events_out += count
            metrics.EVENTS_OUT.labels(in_topic, model).inc(count)
        now = time.time()
        for in_topic, ts_ms in oldest.items():
            metrics.E2E_LATENCY.labels(in_topic).observe(max(0.0, now - ts_ms / 1000))

    def _cut(self, raw: bytes | None) -> bytes | None:
        return raw if raw is None or len(raw) <= self.keep_bytes else raw[: self.keep_bytes]

    def _cut_note(self, what: str, raw: bytes | None) -> str:
        if raw is None or len(raw) <= self.keep_bytes:
            return ""
        return f" ({what} cut to its first {self.keep_bytes} of {len(raw)} bytes)"

    def _log_dead_letters(self, outs: list[Out]) -> None:
        letters = [o for o in outs if o.kind != LABELLED and o.attempt == 1]
        if letters:
            shown = "; ".join(
                f"{o.tp.topic}[{o.tp.partition}]@{o.offset} {o.kind}: {o.label[:200]}"
                for o in letters[:5]
            )
            more = f" (+{len(letters) - 5} more)" if len(letters) > 5 else ""
            log.warning("%d dead letters: %s%s", len(letters), shown, more)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until every output handed to the producer is settled."""
        await self.flush()
        deadline = time.monotonic() + timeout_s
        while self._inflight and time.monotonic() < deadline and not self.failed:
            await asyncio.wait(set(self._inflight), timeout=max(0.0, deadline - time.monotonic()))
            await self.flush()
        return not self._inflight and not self.pending and not self.failed


def _strip(out: Out, exc: BaseException) -> None:
    letter = DeadLetter.model_validate_json(out.value)
    note = f" (raw key and value left out: the dead letter was refused: {_describe(exc)})"
    letter = letter.model_copy(
        update={"key_b64": None, "value_b64": None, "message": letter.message + note}
    )
    out.key, out.value, out.stripped = None, letter.model_dump_json().encode(), True


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
