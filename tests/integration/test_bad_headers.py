"""A record whose header name is not UTF-8 stops no consumer (issue 17, header finding).

aiokafka decodes header names while fetching: such a record made `getmany()` raise
`UnicodeDecodeError` at the same offset forever. Written to the real broker with
`tests.integration.bad_headers`; read with real consumers, workers, the trainer and the CLI.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bus.clients import make_consumer
from bus.fetching import Unreadable, fetch
from bus.settings import KafkaSettings
from bus.topics import create_topics
from bus.types import TopicPartition
from tests.cli import streamclf
from tests.conftest import free_port
from tests.integration.bad_headers import produce_batch
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
    text_events,
)
from tests.integration.test_hot_swap import stop_all, topics_env, wait_workers
from tests.integration.test_poison_records import (
    TrainerProcess,
    metric,
    read_results,
    trainer_store,
    wait_until,
)

pytestmark = pytest.mark.integration
REJECTED = "streamclf_rejected_records_total"


def _rows(values: Sequence[str]) -> list[tuple[bytes | None, bytes | None, bool]]:
    """'bad' marks a record with a non-UTF-8 header name; anything else is a good value."""
    return [(v.encode(), v.encode(), v.startswith("bad")) for v in values]


async def _fetch_all(
    broker: KafkaSettings, topic: str, parts: int, expected: int, **kw: Any
) -> tuple[dict[int, list[bytes]], list[Unreadable]]:
    consumer = make_consumer(broker)
    await consumer.start()
    values: dict[int, list[bytes]] = {}
    unreadable: list[Unreadable] = []
    try:
        tps = [TopicPartition(topic, p) for p in range(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while sum(map(len, values.values())) + len(unreadable) < expected:
            assert loop.time() < deadline, (values, unreadable)
            fetched = await fetch(consumer, timeout_ms=300, **kw)
            for tp, records in fetched.records.items():
                values.setdefault(tp.partition, []).extend(r.value for r in records)
            unreadable += fetched.unreadable
    finally:
        await consumer.stop()
    return values, unreadable


@pytest.mark.parametrize("max_records", [None, 2])
async def test_fetch_returns_every_readable_record_and_skips_the_bad_one(
    broker: KafkaSettings, uid: str, max_records: int | None
) -> None:
    topic = f"hdr.{uid}"
    await create_topics(broker, [topic], partitions=2)
    await produce_batch(broker, topic, _rows(["p1a", "p1b", "p1c"]), partition=1)
    for batch in (["bad0"], ["a", "b"], ["bad3"], ["c", "d", "bad6", "e"], ["f"]):
        await produce_batch(broker, topic, _rows(batch), partition=0)
    await produce_batch(broker, topic, _rows(["p1d"]), partition=1)
    values, unreadable = await _fetch_all(broker, topic, 2, 13, max_records=max_records)
    assert values == {0: [b"a", b"b", b"c", b"d", b"f"], 1: [b"p1a", b"p1b", b"p1c", b"p1d"]}
    # the client parses a batch from its start: what follows a bad record in its batch is
    # unreadable too, and reported (never silently skipped)
    assert [(u.partition, u.offset) for u in unreadable] == [(0, 0), (0, 3), (0, 6), (0, 7)]
    assert all("header name is not UTF-8" in u.reason for u in unreadable)
    assert unreadable[1].where == f"{topic}[0]@3"


# -- (a) the input topic: a dead letter, committed past --------------------------------------
async def test_a_worker_dead_letters_an_unreadable_input_record_and_commits_past_it(
    broker: KafkaSettings, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    topic = f"hin-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 2)
    good = text_events(12, f"g{uid}-")
    rows = [(str(i).encode(), v, False) for i, v in enumerate(good)]
    bad = (b"bad", b'{"id": "bad", "text": "unreadable"}', True)
    # partition 0: 4 good | bad | 3 good, bad (the good ones before it are read) | 1 good
    for batch in (rows[0:4], [bad], [*rows[4:7], bad], rows[7:8]):
        await produce_batch(broker, topic, batch, partition=0)
    await produce_batch(broker, topic, rows[8:12], partition=1)
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path).start()
    try:
        out = await collect(broker, [f"{topic}.labelled", f"{topic}.dlq"], 14, 120, 2)
        await asyncio.to_thread(
            wait_until,
            lambda: asyncio.run(committed_equals_high_water(broker, topic, f"g-{uid}")),
            60,
            "committed offsets at the high-water marks",
            worker,
        )
        assert worker.alive(), worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
    labelled = sorted(o["id"] for o in out if o["_topic"] == f"{topic}.labelled")
    assert labelled == sorted(f"g{uid}-{i}" for i in range(12))
    letters = [o for o in out if o["_topic"] == f"{topic}.dlq"]
    assert sorted((o["source_partition"], o["source_offset"]) for o in letters) == [(0, 4), (0, 8)]
    for letter in letters:
        assert letter["kind"] == "decode" and letter["source_topic"] == topic, letter
        assert letter["message"].startswith("record header name is not UTF-8"), letter
        assert letter["value_b64"] is None and letter["key_b64"] is None, letter


# -- (b) the control topic: the worker keeps running, a later worker starts -------------------
async def test_b_an_unreadable_control_record_stops_no_worker_at_start_or_running(
    broker: KafkaSettings, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    topic, control = f"hctl-{uid}", f"control-{uid}"
    port = free_port()
    await make_topics(broker, [topic], 2)
    route = [f"{topic}=news"]
    env = topics_env(uid) | {"STREAMCLF_METRICS_PORT": str(port)}
    w1 = WorkerProcess(broker, tiny_store, route, f"g-{uid}", tmp_path, "w1", env=env)
    w2 = WorkerProcess(broker, tiny_store, route, f"g-{uid}", tmp_path, "w2", env=topics_env(uid))
    try:
        w1.start()
        await wait_workers(broker, uid, [w1])
        await produce_batch(broker, control, [(b"poison", b"{}", True)])
        await asyncio.to_thread(
            wait_until,
            lambda: metric(port, REJECTED, topic_kind="control", reason="header") == 1.0,
            60,
            "the control record counted as unreadable",
            w1,
        )
        w2.start()  # reads the control topic from the start: the record is on it
        seen = await wait_workers(broker, uid, [w1, w2], timeout_s=120)
        await produce(broker, topic, text_events(20, "after"))
        outputs = await collect(broker, [f"{topic}.labelled"], 20, timeout_s=90)
        assert w1.alive() and w2.alive(), w1.log() + w2.log()
    finally:
        stop_all([w1, w2])
    assert len(outputs) == 20
    assert seen["w2"].rejected_control >= 1, seen
    assert "control record skipped (header)" in w2.log_path.read_text()


# -- (c) the trainer's jobs topic --------------------------------------------------------------
async def test_c_trainer_serve_answers_an_unreadable_job_and_keeps_serving(
    broker: KafkaSettings, uid: str, tmp_path: Path
) -> None:
    store = trainer_store(tmp_path / "store")
    trainer = TrainerProcess(broker, store, tmp_path / "data", uid, tmp_path)
    await make_topics(broker, [trainer.jobs, trainer.feedback, trainer.results], 1)
    try:
        trainer.start()
        await produce_batch(broker, trainer.jobs, [(None, b"{}", True)])
        await produce(broker, trainer.jobs, [b"not a job"])
        where = {f"{trainer.jobs}[0]@0", f"{trainer.jobs}[0]@1"}
        results = await read_results(
            broker,
            trainer.results,
            lambda v: where <= {r["job_id"] for r in v if r["status"] == "invalid"},
            timeout_s=120,
        )
        await asyncio.to_thread(
            wait_until,
            lambda: asyncio.run(committed_equals_high_water(broker, trainer.jobs, trainer.group)),
            60,
            "the trainer's commits on the jobs topic",
            trainer,
        )
        counted = metric(trainer.port, REJECTED, topic_kind="job", reason="header")
        assert trainer.alive(), trainer.log()
    finally:
        trainer.stop()
    errors = {r["job_id"]: r["error"] for r in results if r["status"] == "invalid"}
    assert "record header name is not UTF-8" in errors[f"{trainer.jobs}[0]@0"], errors
    assert counted == 1.0, trainer.log()


# -- (d) the CLI -----------------------------------------------------------------------------
async def test_d_tail_prints_the_readable_records_and_exits_0(
    broker: KafkaSettings, uid: str
) -> None:
    topic = f"htail-{uid}"
    await create_topics(broker, [topic], partitions=1)
    for batch in (["one", "two"], ["bad"], ["three"]):
        rows = [(v.encode(), json.dumps({"v": v}).encode(), v == "bad") for v in batch]
        await produce_batch(broker, topic, rows)
    proc = await asyncio.to_thread(
        streamclf, "tail", topic, "--timeout", "3", "-b", broker.bootstrap_servers
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if f"{topic}[0]@2" in line]
    assert len(warned) == 1 and "header name is not UTF-8" in warned[0], proc.stderr
    assert [json.loads(line)["v"] for line in proc.stdout.splitlines()] == ["one", "two", "three"]
