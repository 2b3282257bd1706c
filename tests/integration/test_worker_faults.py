"""A worker that cannot make progress says so and stops cleanly, without a commit past a hole.

The worker runs in this process against the real broker, so that faults can be injected: a
real producer that refuses chosen sends, a pipeline that dies, a pipeline that hangs.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bus.batching import BatchProducer
from bus.settings import KafkaSettings
from bus.topics import high_water_marks
from bus.types import KafkaError
from tests.conftest import free_port
from tests.integration.harness import collect, make_topics, produce, text_events
from worker.app import Worker
from worker.settings import WorkerSettings

pytestmark = pytest.mark.integration


class RefusingProducer:
    """The worker's real producer, except that labelled events of chosen ids are refused."""

    def __init__(self, kafka: KafkaSettings, refuse: set[str]) -> None:
        self.real = BatchProducer.create(kafka)
        self.refuse = [f'"id":"{i}"'.encode() for i in refuse]
        self.refused = 0

    async def start(self) -> None:
        await self.real.start()

    async def stop(self) -> None:
        await self.real.stop()

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> Any:
        return await self.real.send(topic, value, key=key)

    async def send_records(self, records: list[tuple[str, bytes | None, bytes]]) -> list[Any]:
        passed = [r for r in records if not self._refused(r)]
        sent = iter(await self.real.send_records(passed) if passed else [])
        out: list[Any] = []
        for record in records:
            if self._refused(record):
                self.refused += 1
                out.append(KafkaError("injected: broker unavailable for this send"))
            else:
                out.append(next(sent))
        return out

    def _refused(self, record: tuple[str, bytes | None, bytes]) -> bool:
        topic, _, value = record
        return topic.endswith(".labelled") and any(r in value for r in self.refuse)


def _settings(store: Path, topic: str, group: str, **extra: Any) -> WorkerSettings:
    return WorkerSettings(
        routes=[f"{topic}=news"],
        group_id=group,
        model_store=store,
        worker_id="inproc",
        status_interval_s=1,
        torch_threads=1,
        max_batch=8,
        commit_interval_ms=200,
        **extra,
    )


async def _committed(broker: KafkaSettings, topic: str, group: str) -> int:
    return sum((i.committed or 0) for i in await high_water_marks(broker, topic, group_id=group))


async def test_a_send_that_keeps_failing_stops_the_worker_and_a_restart_redoes_it(
    broker, tiny_store, uid
):
    topic, group = f"pf-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    await produce(broker, topic, text_events(60))
    producer: RefusingProducer | None = None

    def factory(kafka: KafkaSettings) -> RefusingProducer:
        nonlocal producer
        producer = RefusingProducer(kafka, {"e30"})
        return producer

    worker = Worker(_settings(tiny_store, topic, group), broker, producer_factory=factory)
    code = await asyncio.wait_for(worker.run(), 120)
    assert code == 1 and producer is not None and producer.refused == 5
    assert "pf-" in (worker.last_error or "") and "@30" in (worker.last_error or "")
    assert await _committed(broker, topic, group) <= 30, "nothing committed past the hole"

    again = Worker(_settings(tiny_store, topic, group), broker)
    task = asyncio.create_task(again.run())
    try:
        out = await collect(broker, [f"{topic}.labelled"], 61, timeout_s=60, quiet_s=1)
    finally:
        again.request_stop()
        assert await asyncio.wait_for(task, 60) == 0
    ids = Counter(o["id"] for o in out)
    assert set(ids) == {f"e{i}" for i in range(60)}, "the restart redid the refused event"
    assert await _committed(broker, topic, group) == 60


async def test_a_dead_pipeline_stops_the_worker_within_the_drain_timeout(broker, tiny_store, uid):
    topic, group = f"pd-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    worker = Worker(_settings(tiny_store, topic, group, shutdown_timeout_s=5), broker)

    async def broken(batch: Any) -> None:
        raise RuntimeError("injected pipeline bug")

    task = asyncio.create_task(worker.run())
    while not worker.ready():
        await asyncio.sleep(0.1)
    worker.pipelines["news"].finish = broken  # type: ignore[method-assign]
    await produce(broker, topic, text_events(200))
    started = time.monotonic()
    code = await asyncio.wait_for(task, 60)
    assert code == 1 and "pipeline news task failed" in (worker.last_error or "")
    assert time.monotonic() - started < 5 + 10  # the drain timeout, plus leaving the group
    assert await _committed(broker, topic, group) == 0


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_a_hung_pipeline_fails_healthz_and_sigterm_still_exits(broker, tiny_store, uid):
    topic, group = f"ph-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    port = free_port()
    settings = _settings(
        tiny_store,
        topic,
        group,
        shutdown_timeout_s=3,
        stall_timeout_s=2,
        metrics_port=port,
        metrics_host="127.0.0.1",
    )
    worker = Worker(settings, broker)
    hang = asyncio.Event()

    async def hung(batch: Any) -> None:
        await hang.wait()  # never set: a batch that never finishes

    task = asyncio.create_task(worker.run())
    while not worker.ready():
        await asyncio.sleep(0.1)
    assert await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")
    worker.pipelines["news"].finish = hung  # type: ignore[method-assign]
    await produce(broker, topic, text_events(200))  # far more than the queue holds
    status, body = 0, ""
    for _ in range(100):
        await asyncio.sleep(0.1)
        status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
        if status == 503:
            break
    assert status == 503 and body.startswith("pipeline news "), body
    worker.request_stop()  # what SIGTERM does
    started = time.monotonic()
    code = await asyncio.wait_for(task, 60)
    assert code == 1  # not drained: the events are redone after a restart
    assert time.monotonic() - started < 3 + 10
    assert await _committed(broker, topic, group) == 0
