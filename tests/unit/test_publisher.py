"""Publishing per batch: a record the broker refuses for good becomes a `publish` dead letter;
one that keeps failing ends the worker with the reason and is never committed past."""

import asyncio
import base64
import json
from typing import Any

from bus.types import KafkaError, MessageSizeTooLargeError, RecordTooLargeError, TopicPartition
from schemas.deadletter import ErrorKind
from schemas.events import TextEvent
from worker.checkpoint import Checkpoint
from worker.items import Item
from worker.publisher import Publisher, PublishFailed
from worker.routing import parse_route

TP = TopicPartition("t", 0)
ROUTE = parse_route("t=m")


class FakeProducer:
    """Acknowledges every send, except that `fail(value)` returns an exception for it."""

    def __init__(self, fail: Any = lambda value, attempt: None) -> None:
        self.fail = fail
        self.sent: list[tuple[str, bytes]] = []
        self.attempts: dict[bytes, int] = {}

    async def send_records(self, records: list[tuple[str, bytes | None, bytes]]) -> list[Any]:
        return [self._one(topic, value) for topic, _, value in records]

    def _one(self, topic: str, value: bytes) -> Any:
        n = self.attempts[value] = self.attempts.get(value, 0) + 1
        exc = self.fail(value, n)
        if isinstance(exc, MessageSizeTooLargeError):
            return exc  # like the client: refused before it is queued
        fut = asyncio.get_running_loop().create_future()
        if exc is None:
            self.sent.append((topic, value))
            fut.set_result(None)
        else:
            fut.set_exception(exc)
        return fut


class OneBatchProducer(FakeProducer):
    """One acknowledgement per call, as one record batch: refused whole if any record is."""

    async def send_records(self, records: list[tuple[str, bytes | None, bytes]]) -> list[Any]:
        fut = asyncio.get_running_loop().create_future()
        bad = [v for _, _, v in records if self.fail(v, 1) is not None]
        if bad:
            fut.set_exception(RecordTooLargeError("batch refused"))
        else:
            self.sent += [(t, v) for t, _, v in records]
            fut.set_result(None)
        return [fut] * len(records)


def run(producer: FakeProducer, n: int = 3) -> tuple[Checkpoint, Publisher, list[BaseException]]:
    fatal: list[BaseException] = []

    async def scenario() -> tuple[Checkpoint, Publisher]:
        cp = Checkpoint(lambda offsets: asyncio.sleep(0))
        cp.assign([TP])
        span = cp.begin(TP, 0, n - 1, n)
        pub = Publisher(producer, cp, "w", fatal.append, max_attempts=3, retry_base_s=0.001)
        for i in range(n):
            item = Item(
                TextEvent(id=f"i{i}", text="x"), ROUTE, TP, i, b"k", b"raw%d" % i, 0, 0.0, span
            )
            pub.labelled(item, json.dumps({"id": f"i{i}"}).encode(), "m")
        await pub.flush()
        await pub.drain(5)
        return cp, pub

    cp, pub = asyncio.run(scenario())
    return cp, pub, fatal


def test_all_acknowledged_in_one_batch_commits_the_span() -> None:
    producer = FakeProducer()
    cp, pub, fatal = run(producer)
    assert not fatal and len(producer.sent) == 3 and pub.events_out == 3
    assert cp.to_commit() == {TP: 3}


def test_a_record_refused_for_good_becomes_a_publish_dead_letter() -> None:
    for refusal in (MessageSizeTooLargeError("too big"), RecordTooLargeError("too big")):
        producer = FakeProducer(lambda v, n, e=refusal: e if v == b'{"id": "i1"}' else None)
        cp, pub, fatal = run(producer)
        assert not fatal
        topics = [t for t, _ in producer.sent]
        assert topics.count("t.labelled") == 2 and topics.count("t.dlq") == 1
        letter = json.loads(next(v for t, v in producer.sent if t == "t.dlq"))
        assert letter["kind"] == ErrorKind.PUBLISH and letter["source_offset"] == 1
        assert base64.b64decode(letter["value_b64"]) == b"raw1"  # the input, not the output
        assert cp.to_commit() == {TP: 3} and pub.dead_letters == 1


def test_a_transient_failure_is_retried_then_passes() -> None:
    producer = FakeProducer(lambda v, n: KafkaError("leader moved") if n < 3 else None)
    cp, _, fatal = run(producer)
    assert not fatal and len(producer.sent) == 3 and cp.to_commit() == {TP: 3}


def test_a_send_that_keeps_failing_is_fatal_and_leaves_no_hole_committed() -> None:
    producer = FakeProducer(lambda v, n: KafkaError("broker gone") if b"i1" in v else None)
    cp, _, fatal = run(producer)
    assert len(fatal) == 1 and isinstance(fatal[0], PublishFailed)
    assert "t[0]@1" in str(fatal[0]) and "3 times" in str(fatal[0])
    assert producer.attempts[b'{"id": "i1"}'] == 3
    assert cp.to_commit() == {}  # offset 1 never acknowledged: nothing past it is committed


def test_a_refused_batch_is_retried_record_by_record_and_only_the_bad_one_is_dead() -> None:
    producer = OneBatchProducer(
        lambda v, n: RecordTooLargeError() if v == b'{"id": "i1"}' else None
    )
    cp, pub, fatal = run(producer)
    assert not fatal
    topics = [t for t, _ in producer.sent]
    assert topics.count("t.labelled") == 2 and topics.count("t.dlq") == 1
    assert cp.to_commit() == {TP: 3} and pub.dead_letters == 1


def test_a_dead_letter_refused_for_its_size_goes_again_without_the_raw_bytes() -> None:
    def fail(value: bytes, n: int) -> Exception | None:
        if value == b'{"id": "i1"}' or b'"value_b64":"' in value:
            return RecordTooLargeError("too big")
        return None

    producer = FakeProducer(fail)
    cp, pub, fatal = run(producer)
    assert not fatal and pub.dead_letters == 1
    letter = json.loads(next(v for t, v in producer.sent if t == "t.dlq"))
    assert letter["kind"] == "publish" and letter["value_b64"] is None and letter["key_b64"] is None
    assert "raw key and value left out" in letter["message"]
    assert cp.to_commit() == {TP: 3}


def test_dead_letters_keep_what_fits_the_record_limit() -> None:
    cp = Checkpoint(lambda offsets: asyncio.sleep(0))
    pub = Publisher(FakeProducer(), cp, "w", print, max_record_bytes=100_000)
    pub.dead_letter(ROUTE, TP, 7, b"k" * 50_000, b"v" * 90_000, ErrorKind.SCHEMA, "bad")
    out = pub.pending[0]
    assert len(out.value) < 100_000
    letter = json.loads(out.value)
    assert len(base64.b64decode(letter["value_b64"])) == pub.keep_bytes < 90_000
    assert "value cut to its first" in letter["message"] and "key cut" in letter["message"]
