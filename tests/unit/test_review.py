"""Review routing (worker/review.py): choice, rate bound, bounded queue, failures counted."""

from __future__ import annotations

import asyncio
from typing import Any

from bus.types import TopicPartition
from schemas.events import TextEvent
from schemas.review import ReviewRequest
from worker.inference import Prediction
from worker.items import Item
from worker.review import ReviewPolicy, ReviewRouter, TokenBucket
from worker.routing import Route

UNSURE = Prediction("pos", 1, 0.52, [("pos", 1, 0.52), ("neg", 0, 0.48)])
SURE = Prediction("pos", 1, 0.97, [("pos", 1, 0.97), ("neg", 0, 0.03)])


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _item(i: int) -> Item:
    event = TextEvent(id=f"e{i}", text=f"文本{i} <[b]red[/b]>")
    route = Route("in", "m", "in.labelled", "in.dlq")
    return Item(event, route, TopicPartition("in", 0), i, b"k", b"{}", 0, 0.0)


def test_token_bucket_bounds_the_rate():
    clock = Clock()
    bucket = TokenBucket(2.0, 3, clock)
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]
    clock.now = 1.0  # two more tokens a second
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now = 100.0  # never more than the burst saved up
    assert sum(bucket.take() for _ in range(10)) == 3


async def test_only_unsure_answers_or_the_audit_sample_are_chosen_and_encoded_as_requests():
    sent: list[bytes] = []

    async def send(topic: str, value: bytes, key: bytes | None) -> Any:
        sent.append(value)
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    router = ReviewRouter(ReviewPolicy("rev", margin=0.2), send, "w1")
    task = asyncio.create_task(router.run())
    router.offer("m", "v1", _item(1), UNSURE, 0.04)
    router.offer("m", "v1", _item(2), SURE, 0.94)
    for _ in range(100):
        if router.counts.sent:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    assert router.counts.sent == 1 and len(sent) == 1
    req = ReviewRequest.model_validate_json(sent[0])
    assert (req.id, req.reason, req.version, req.label, req.source_offset) == (
        "e1",
        "low_margin",
        "v1",
        "pos",
        1,
    )
    audit = ReviewRouter(
        ReviewPolicy("rev", margin=0.0, sample_rate=0.5), send, "w1", rng=lambda: 0.1
    )
    assert audit.reason(SURE, 0.94) == "audit"
    assert ReviewRouter(ReviewPolicy("rev", min_score=0.99), send, "w").reason(SURE, 0.94) == (
        "low_score"
    )


async def test_a_blocked_review_producer_never_blocks_offer_and_drops_are_counted():
    never: asyncio.Event = asyncio.Event()

    async def blocked(topic: str, value: bytes, key: bytes | None) -> Any:
        await never.wait()

    clock = Clock()
    policy = ReviewPolicy("rev", rate_per_s=1000.0, burst=1000, queue_size=5)
    router = ReviewRouter(policy, blocked, "w1", clock=clock)
    task = asyncio.create_task(router.run())
    for i in range(50):  # returns at once each time although nothing is ever sent
        router.offer("m", "v1", _item(i), UNSURE, 0.04)
    await asyncio.sleep(0)
    task.cancel()
    assert router.counts.sent == 0
    assert router.counts.dropped_queue >= 50 - 5 - 1


async def test_a_failing_review_producer_is_counted_and_the_router_keeps_going():
    async def failing(topic: str, value: bytes, key: bytes | None) -> Any:
        raise RuntimeError("broker says no")

    router = ReviewRouter(ReviewPolicy("rev"), failing, "w1")
    task = asyncio.create_task(router.run())
    for i in range(3):
        router.offer("m", "v1", _item(i), UNSURE, 0.04)
    for _ in range(100):
        if router.counts.failed == 3:
            break
        await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    assert router.counts.failed == 3


def test_review_records_are_read_through_the_strict_decoder():
    from schemas.records import REVIEW_MAX_BYTES, Reason, Rejection, decode_answer, decode_review

    good = ReviewRequest(
        id="r", model="m", version="v1", text="t", label="a", label_id=0, score=0.5,
        margin=0.0, reason="audit", source_topic="in", source_partition=0, source_offset=1,
    ).model_dump_json().encode()  # fmt: skip
    assert isinstance(decode_review(good), ReviewRequest)
    cases = {
        None: Reason.TOMBSTONE,
        b"x" * (REVIEW_MAX_BYTES + 1): Reason.TOO_LARGE,
        b"\xff{": Reason.DECODE,
        b"[" * 100_000: Reason.DECODE,
        b'{"id": "r"}': Reason.SCHEMA,
        b"[1]": Reason.SCHEMA,
    }
    for value, reason in cases.items():
        got = decode_review(value)
        assert isinstance(got, Rejection) and got.reason == reason, (
            value[:20] if value else value,
            got,
        )
    assert isinstance(decode_answer(b'{"id": "r", "label": 1}'), object)
    assert isinstance(decode_answer(b'{"id": "", "label": 1}'), Rejection)
