"""Review routing: the events a model is least sure of, or a random audit sample, go to a
review topic at a bounded rate, beside the labelled output and never in its way.

`offer` is called in the pipeline's batch loop and never waits: an event is chosen (margin or
top-1 score under its threshold, else the audit sample rate), must take a token from a token
bucket (`rate_per_s`, `burst`), and is put on a bounded queue; over the rate or with the queue
full it is dropped and counted. One task sends the queue; acknowledgements are counted when
they come. Review records are not part of the checkpoint: a slow or failing review topic
never holds a commit, and it never changes what goes to the labelled topic.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from schemas.review import ReviewReason, ReviewRequest
from worker import metrics
from worker.inference import Prediction

if TYPE_CHECKING:
    from worker.items import Item

log = logging.getLogger(__name__)
Send = Callable[[str, bytes, bytes | None], Awaitable[Any]]  # (topic, value, key) -> ack future
SEND_TIMEOUT_S = 10.0
SCHEMA_VERSION = ReviewRequest.model_fields["schema_version"].default


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up; the clock is injectable."""

    def __init__(
        self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate_per_s
        self.burst = float(max(1, burst))
        self.clock = clock
        self.tokens = self.burst
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(frozen=True)
class ReviewPolicy:
    topic: str
    margin: float = 0.2  # top-1 minus top-2 under this: review
    min_score: float = 0.0  # top-1 under this: review
    sample_rate: float = 0.0  # share of the other events sent for a random audit
    rate_per_s: float = 5.0
    burst: int = 50
    queue_size: int = 1000


@dataclass
class ReviewCounts:
    offered: int = 0
    sent: int = 0
    dropped_rate: int = 0
    dropped_queue: int = 0
    failed: int = 0


class ReviewRouter:
    """Chooses, bounds and sends review requests for every model of a worker."""

    def __init__(
        self,
        policy: ReviewPolicy,
        send: Send,
        worker_id: str,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self.send = send
        self.worker_id = worker_id
        self.rng = rng
        self.bucket = TokenBucket(policy.rate_per_s, policy.burst, clock)
        self.counts = ReviewCounts()
        self.queue: asyncio.Queue[tuple[str, bytes, bytes | None]] = asyncio.Queue(
            policy.queue_size
        )
        self._acks: set[asyncio.Future[Any]] = set()

    def reason(self, pred: Prediction, margin: float) -> ReviewReason | None:
        p = self.policy
        if margin < p.margin:
            return "low_margin"
        if pred.score < p.min_score:
            return "low_score"
        if p.sample_rate and self.rng() < p.sample_rate:
            return "audit"
        return None

    def offer(self, model: str, version: str, item: Item, pred: Prediction, margin: float) -> None:
        """Queue a review request for an answered event if it is chosen; never waits."""
        why = self.reason(pred, margin)
        if why is None:
            return
        self.counts.offered += 1
        if not self.bucket.take():
            self.counts.dropped_rate += 1
            metrics.REVIEW_DROPPED.labels(model, "rate").inc()
            return
        value = _encode(model, version, item, pred, margin, why, self.worker_id)
        try:
            self.queue.put_nowait((model, value, item.key))
        except asyncio.QueueFull:
            self.counts.dropped_queue += 1
            metrics.REVIEW_DROPPED.labels(model, "queue").inc()

    async def run(self) -> None:
        """Send the queue, one record at a time; a failure is counted, never raised."""
        while True:
            model, value, key = await self.queue.get()
            try:
                ack = await asyncio.wait_for(
                    self.send(self.policy.topic, value, key), SEND_TIMEOUT_S
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(model, exc)
                continue
            fut = asyncio.ensure_future(ack)
            self._acks.add(fut)
            fut.add_done_callback(lambda f, m=model: self._acked(m, f))

    def _acked(self, model: str, fut: asyncio.Future[Any]) -> None:
        self._acks.discard(fut)
        exc = None if fut.cancelled() else fut.exception()
        if fut.cancelled() or exc is not None:
            self._failed(model, exc)
            return
        self.counts.sent += 1
        metrics.REVIEW_SENT.labels(model).inc()

    def _failed(self, model: str, exc: BaseException | None) -> None:
        self.counts.failed += 1
        metrics.REVIEW_DROPPED.labels(model, "failed").inc()
        if self.counts.failed in (1, 10, 100) or self.counts.failed % 1000 == 0:
            log.warning(
                "review request to %s not sent (%d so far): %s",
                self.policy.topic,
                self.counts.failed,
                exc,
            )


def _encode(
    model: str,
    version: str,
    item: Item,
    pred: Prediction,
    margin: float,
    reason: ReviewReason,
    worker_id: str,
) -> bytes:
    """A `ReviewRequest` as JSON (tests/unit/test_review.py checks it parses as one)."""
    tp = item.tp
    return orjson.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "id": item.event.id,
            "model": model,
            "version": version,
            "text": item.event.text,
            "text_pair": item.event.text_pair,
            "label": pred.label,
            "label_id": pred.label_id,
            "score": pred.score,
            "scores": [{"label": s[0], "label_id": s[1], "score": s[2]} for s in pred.scores],
            "margin": margin,
            "reason": reason,
            "source_topic": tp.topic,
            "source_partition": tp.partition,
            "source_offset": item.offset,
            "worker_id": worker_id,
            "at_ms": int(time.time() * 1000),
        }
    )
