"""The offset tracker commits only past contiguously handled offsets."""

from aiokafka import TopicPartition

from worker.offsets import OffsetTracker

TP = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


def test_commit_waits_for_the_lowest_unfinished_offset() -> None:
    t = OffsetTracker()
    for offset in range(5):
        t.track(TP, offset)
    t.done(TP, 1)
    t.done(TP, 2)
    assert t.to_commit() == {}  # 0 is still in flight
    t.done(TP, 0)
    assert t.to_commit() == {TP: 3}
    t.mark_committed({TP: 3})
    assert t.to_commit() == {}
    t.done(TP, 4)
    assert t.to_commit() == {}
    t.done(TP, 3)
    assert t.to_commit() == {TP: 5}
    assert t.in_flight() == 0


def test_partitions_are_independent_and_forgettable() -> None:
    t = OffsetTracker()
    t.track(TP, 10)
    t.track(TP1, 7)
    t.done(TP1, 7)
    assert t.to_commit() == {TP1: 8}
    assert t.in_flight([TP]) == 1
    t.forget([TP])
    t.done(TP, 10)  # late acknowledgement of a revoked partition is ignored
    assert t.in_flight() == 0
    assert TP not in t.to_commit()
