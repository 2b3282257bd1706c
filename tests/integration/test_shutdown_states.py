"""SIGTERM ends a worker process within STREAMCLF_SHUTDOWN_TIMEOUT_S from every state: loading
a model, joining a group, idle without partitions, rebalancing, draining a backlog.

Workers are subprocesses against the real broker. A group member that drains slowly (its
`on_partitions_revoked` does not return) is a consumer in this process: the broker holds every
other member's join until it rejoins, which is how a real slow or stuck peer holds a group.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bus.clients import make_consumer
from bus.settings import KafkaSettings
from bus.types import ConsumerRebalanceListener, TopicPartition
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_offsets,
    make_topics,
    produce,
    text_events,
)

pytestmark = pytest.mark.integration

SHUTDOWN_TIMEOUT_S = 8
EXIT_SLACK_S = 4  # the interpreter's own teardown on a loaded machine


def _env(uid: str, **extra: str) -> dict[str, str]:
    return {
        "STREAMCLF_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
        "STREAMCLF_ENGINE": "torch",
        "STREAMCLF_COMMIT_INTERVAL_MS": "200",
        "STREAMCLF_CONTROL_TOPIC": f"sd-control-{uid}",
        "STREAMCLF_STATUS_TOPIC": f"sd-status-{uid}",
        **extra,
    }


async def _until(worker: WorkerProcess, text: str, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not worker.log_has(text):
        assert worker.alive(), f"{worker.worker_id} exited:\n{worker.log()}"
        assert time.monotonic() < deadline, f"no {text!r} in:\n{worker.log()}"
        await asyncio.sleep(0.2)


async def _stops_in_time(worker: WorkerProcess) -> int:
    code, took = await asyncio.to_thread(worker.exits_within, SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S)
    assert code in (0, 1), f"exit {code}: not a handled SIGTERM\n{worker.log()}"
    assert took <= SHUTDOWN_TIMEOUT_S + EXIT_SLACK_S
    return code


class _SlowPeer(ConsumerRebalanceListener):
    """A group member whose revocation does not return while `hold` is set."""

    def __init__(self) -> None:
        self.hold = asyncio.Event()
        self.revoking = asyncio.Event()
        self.assigned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if self.hold.is_set():
            self.revoking.set()
        while self.hold.is_set():
            await asyncio.sleep(0.1)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)


@contextlib.asynccontextmanager
async def _peer(broker: KafkaSettings, topic: str, group: str) -> AsyncIterator[_SlowPeer]:
    listener = _SlowPeer()
    consumer = make_consumer(broker, group_id=group, rebalance_timeout_ms=120_000)
    consumer.subscribe([topic], listener=listener)
    await consumer.start()
    polling = asyncio.create_task(_poll_forever(consumer))
    try:
        yield listener
    finally:
        listener.hold.clear()
        polling.cancel()
        await asyncio.gather(polling, return_exceptions=True)
        # the embedded broker may answer a LeaveGroup only after a parked join (docs/worker.md)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consumer.stop(), 15)


async def _poll_forever(consumer: Any) -> None:
    while True:  # reads nothing it commits: its partitions stay for the worker to redo
        await consumer.getmany(timeout_ms=200)


async def test_sigterm_while_loading_a_model(broker, uid, tmp_path: Path) -> None:
    from modelstore.labels import PRESET_LABELS
    from modelstore.presets import init_model
    from modelstore.store import ModelStore

    store = tmp_path / "store"  # its own: `auto` measures backends at the version's first load
    init_model(ModelStore(store), "news", PRESET_LABELS["chinanews"], "tiny", seed=3)
    topic = f"sl-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    env = _env(uid, STREAMCLF_ENGINE="auto")
    worker = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "load", env)
    worker.start()
    await _until(worker, "loading news@")
    await _stops_in_time(worker)
    assert not worker.log_has("serving news@"), "the load finished first: nothing was tested"


@pytest.mark.timeout(420)
async def test_sigterm_while_joining_a_group_a_slow_peer_holds(
    broker, tiny_store, uid, tmp_path: Path
) -> None:
    topic, group = f"sj-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 2)
    async with _peer(broker, topic, group) as peer:
        while not peer.assigned:
            await asyncio.sleep(0.2)
        peer.hold.set()
        worker = WorkerProcess(
            broker, tiny_store, [f"{topic}=news"], group, tmp_path, "join", _env(uid)
        ).start()
        await _until(worker, "serving news@")
        await asyncio.wait_for(peer.revoking.wait(), 60)  # the worker's join started it
        await asyncio.sleep(1.0)
        assert not worker.log_has("assigned ["), "the broker did not wait for the peer"
        await _stops_in_time(worker)


async def test_sigterm_while_idle_without_partitions(
    broker, tiny_store, uid, tmp_path: Path
) -> None:
    topic, group = f"si-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    env = _env(uid)
    first = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "a", env)
    second = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "b", env)
    first.start()
    try:
        await _until(first, f"assigned ['{topic}[0]']")
        second.start()
        await _until(second, "assigned [")  # more workers than partitions: one is idle
        deadline = time.monotonic() + 60
        while not (idle := [w for w in (first, second) if w.log_has("assigned []")]):
            assert time.monotonic() < deadline, second.log()
            await asyncio.sleep(0.2)
        assert await _stops_in_time(idle[0]) == 0
        await produce(broker, topic, text_events(20, prefix=f"{uid}-"))
        out = await collect(broker, [f"{topic}.labelled"], 20, timeout_s=120)
        assert {o["id"] for o in out} == {f"{uid}-{i}" for i in range(20)}
    finally:
        for w in (first, second):
            if w.alive():
                w.kill()


@pytest.mark.timeout(420)
async def test_sigterm_while_rebalancing_keeps_every_event(
    broker, tiny_store, uid, tmp_path: Path
) -> None:
    topic, group = f"sr-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    values = text_events(1500, prefix=f"{uid}-")
    env = _env(uid, STREAMCLF_MAX_BATCH="8")
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "r", env)
    other = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "o", env)
    try:
        worker.start()
        await _until(worker, "assigned [")
        await produce(broker, topic, values)
        await collect(broker, [f"{topic}.labelled"], 20, timeout_s=120)  # it is busy
        other.start()  # its join revokes the worker's partitions: a rebalance
        await _until(worker, "revoked ", timeout_s=240)
        await _stops_in_time(worker)  # mid-rebalance: revoked, rejoining
        out = await collect(broker, [f"{topic}.labelled"], len(values), timeout_s=240)
    finally:
        for w in (worker, other):
            if w.alive():
                w.kill()
    assert {o["id"] for o in out} == {f"{uid}-{i}" for i in range(len(values))}


@pytest.mark.timeout(420)
async def test_sigterm_while_draining_commits_only_what_was_published(
    broker, tiny_store, uid, tmp_path: Path
) -> None:
    topic, group = f"sd-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 2)
    values = text_events(3000, prefix=f"{uid}-")
    env = _env(uid, STREAMCLF_MAX_BATCH="8")
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "d", env)
    again = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "d2", env)
    try:
        worker.start()
        await _until(worker, "assigned [")
        await produce(broker, topic, values)
        await collect(broker, [f"{topic}.labelled"], 50, timeout_s=120)  # mid-backlog
        await _stops_in_time(worker)
        done = await collect(broker, [f"{topic}.labelled"], len(values), timeout_s=5)
        committed = sum((await committed_offsets(broker, topic, group)).values())
        assert committed <= len({o["id"] for o in done}), "committed past what was published"
        assert committed < len(values), "the backlog was not mid-way: nothing was drained"
        again.start()
        out = await collect(broker, [f"{topic}.labelled"], len(values), timeout_s=240)
    finally:
        for w in (worker, again):
            if w.alive():
                w.kill()
    assert {o["id"] for o in out} == {f"{uid}-{i}" for i in range(len(values))}
