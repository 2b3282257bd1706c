"""The checkpoint commits only past contiguously handled offsets, per span, and owns revokes."""

import asyncio

from bus.types import KafkaError, TopicPartition
from worker.checkpoint import Checkpoint

TP = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None) -> tuple[Checkpoint, list[dict[TopicPartition, int]]]:
    commits: list[dict[TopicPartition, int]] = []

    async def commit(offsets: dict[TopicPartition, int]) -> None:
        commits.append(dict(offsets))

    cp = Checkpoint(commit, clock or Clock())
    cp.assign([TP, TP1])
    return cp, commits


def test_commit_waits_for_the_lowest_unfinished_span() -> None:
    cp, commits = make()
    a = cp.begin(TP, 0, 2, 3)  # offsets 0..2 from one poll
    b = cp.begin(TP, 3, 4, 2)
    assert a is not None and b is not None
    cp.ack(b, 2)
    assert cp.to_commit() == {}  # 0..2 still in flight
    cp.ack(a, 2)
    assert cp.to_commit() == {} and cp.in_flight() == 1
    cp.ack(a)
    assert cp.to_commit() == {TP: 5} and cp.in_flight() == 0
    assert asyncio.run(cp.commit()) and commits == [{TP: 5}]
    assert cp.to_commit() == {}
    c = cp.begin(TP, 7, 7, 1)  # a gap in offsets (compaction) is fine
    assert c is not None
    cp.ack(c)
    assert cp.to_commit() == {TP: 8}


def test_partitions_are_independent_and_revoked_ones_never_come_back() -> None:
    cp, _ = make()
    a = cp.begin(TP, 10, 10, 1)
    b = cp.begin(TP1, 7, 7, 1)
    assert a is not None and b is not None
    cp.ack(b)
    assert cp.to_commit() == {TP1: 8}
    assert cp.in_flight([TP]) == 1
    cp.forget([TP])
    cp.ack(a)  # late acknowledgement of a revoked partition is ignored
    assert cp.begin(TP, 11, 11, 1) is None  # records of it are not tracked again
    assert cp.in_flight() == 0 and TP not in cp.to_commit() and cp.partitions == [TP1]


def test_a_refused_commit_is_retried_and_keeps_the_span() -> None:
    clock = Clock()
    calls: list[dict[TopicPartition, int]] = []

    async def flaky(offsets: dict[TopicPartition, int]) -> None:
        calls.append(dict(offsets))
        if len(calls) == 1:
            raise KafkaError("coordinator moved")

    cp = Checkpoint(flaky, clock)
    cp.assign([TP])
    span = cp.begin(TP, 0, 0, 1)
    assert span is not None
    cp.ack(span)
    clock.now += 7
    assert asyncio.run(cp.commit()) is False
    assert cp.oldest_uncommitted_age_s() == {TP: 7.0}  # done but not committed still counts
    assert asyncio.run(cp.commit()) is True and calls == [{TP: 1}, {TP: 1}]
    assert cp.oldest_uncommitted_age_s() == {TP: 0.0}


def test_oldest_uncommitted_age_is_the_oldest_open_span() -> None:
    clock = Clock()
    cp, _ = make(clock)
    first = cp.begin(TP, 0, 0, 1)
    clock.now += 5
    second = cp.begin(TP, 1, 1, 1)
    clock.now += 5
    assert first is not None and second is not None
    cp.ack(second)
    assert cp.oldest_uncommitted_age_s()[TP] == 10.0
    cp.ack(first)
    asyncio.run(cp.commit())
    assert cp.oldest_uncommitted_age_s()[TP] == 0.0


def test_revoke_drain_waits_for_the_in_flight_batches_of_that_partition_only() -> None:
    async def scenario() -> tuple[bool, bool, float]:
        cp = Checkpoint(lambda offsets: asyncio.sleep(0))
        cp.assign([TP, TP1])
        mine = cp.begin(TP, 0, 9, 10)
        other = cp.begin(TP1, 0, 0, 1)  # never finishes: must not hold the revoke of TP
        assert mine is not None and other is not None

        async def pipeline() -> None:
            for _ in range(10):
                await asyncio.sleep(0.05)
                cp.ack(mine)

        loop = asyncio.get_running_loop()
        started = loop.time()
        task = asyncio.create_task(pipeline())
        done = await cp.wait_handled([TP], timeout_s=30)
        took = loop.time() - started
        await task
        gave_up = await cp.wait_handled([TP1], timeout_s=30, give_up=lambda: True)
        return done, gave_up, took

    done, gave_up, took = asyncio.run(scenario())
    assert done and not gave_up
    assert took < 5  # it returned when the batches were done, not at the timeout
