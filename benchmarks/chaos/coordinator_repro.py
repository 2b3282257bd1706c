"""Does the broker's group coordinator answer while a rebalance waits for a slow member?

    python -m benchmarks.chaos.coordinator_repro [--bootstrap HOST:PORT]

Two plain consumers in one group (no worker code): A joins and owns the partitions; A's
`on_partitions_revoked` then does not return for HOLD_S (a member draining slowly); B joins,
which starts a rebalance that waits for A. A Kafka broker waits for A at most A's rebalance
timeout (REBALANCE_TIMEOUT_MS), then completes the rebalance without A, so `b_joined_s` is
about 10. Then both leave. The script prints how long each step took; without --bootstrap it
starts the embedded broker (tansu) that the tests use.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

from bus.clients import make_consumer
from bus.settings import KafkaSettings
from bus.topics import create_topics
from bus.types import ConsumerRebalanceListener, TopicPartition

HOLD_S = 45.0  # how long A's revocation blocks
REBALANCE_TIMEOUT_MS = 10_000  # A's: the broker may wait this long for A to rejoin


class Slow(ConsumerRebalanceListener):
    def __init__(self) -> None:
        self.hold = False
        self.revoking = asyncio.Event()
        self.assigned: set[TopicPartition] | None = None

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.hold:
            self.revoking.set()
            await asyncio.sleep(HOLD_S)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)


async def _poll(consumer: Any) -> None:
    while True:
        await consumer.getmany(timeout_ms=200)


async def repro(kafka: KafkaSettings) -> dict[str, float | None]:
    topic, group = f"repro-{uuid.uuid4().hex[:8]}", f"repro-g-{uuid.uuid4().hex[:8]}"
    await create_topics(kafka, [topic], 2)
    a_listener, b_listener = Slow(), Slow()
    a = make_consumer(kafka, group_id=group, rebalance_timeout_ms=REBALANCE_TIMEOUT_MS)
    b = make_consumer(kafka, group_id=group)
    a.subscribe([topic], listener=a_listener)
    b.subscribe([topic], listener=b_listener)
    await a.start()
    polls = [asyncio.create_task(_poll(a))]
    t0 = time.monotonic()
    while a_listener.assigned is None:
        await asyncio.sleep(0.1)
    figures: dict[str, float | None] = {"a_assigned_s": round(time.monotonic() - t0, 2)}
    a_listener.hold = True
    t1 = time.monotonic()
    # start() returns once B has joined: a Kafka broker lets the rebalance wait for A at most
    # A's rebalance timeout, then completes it without A
    await b.start()
    figures["b_joined_s"] = round(time.monotonic() - t1, 2)
    figures["a_revoking"] = a_listener.revoking.is_set()
    figures["b_partitions"] = len(b_listener.assigned or ())
    polls.append(asyncio.create_task(_poll(b)))
    t2 = time.monotonic()
    try:
        await asyncio.wait_for(b.stop(), 30)
        figures["b_leave_s"] = round(time.monotonic() - t2, 2)
    except TimeoutError:
        figures["b_leave_s"] = None  # not answered in 30 s
    for task in polls:
        task.cancel()
    await asyncio.gather(*polls, return_exceptions=True)
    t3 = time.monotonic()
    try:
        await asyncio.wait_for(a.stop(), 60)
        figures["a_leave_s"] = round(time.monotonic() - t3, 2)
    except TimeoutError:
        figures["a_leave_s"] = None
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos.coordinator_repro")
    p.add_argument("--bootstrap", help="a running broker (default: start the embedded one)")
    args = p.parse_args(argv)
    if args.bootstrap:
        print(asyncio.run(repro(KafkaSettings(bootstrap_servers=args.bootstrap))))
        return 0
    from benchmarks.harness import local_broker

    with local_broker() as broker:
        print(asyncio.run(repro(broker)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
