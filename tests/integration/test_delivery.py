"""At-least-once delivery: SIGKILL loses nothing, SIGTERM loses and repeats nothing, and a
rebalance mid-stream loses nothing."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.delivery_record import record
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
    text_events,
)

pytestmark = pytest.mark.integration


async def _count_labelled(broker, topic: str) -> int:
    return len(await collect(broker, [topic], 10**9, timeout_s=1.0))


async def _run_interrupted(broker, store: Path, uid: str, tmp_path: Path, sig: int) -> Counter:
    topic, group = f"d-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    await produce(broker, topic, text_events(5000))
    env = {"STREAMCLF_MAX_BATCH": "16", "STREAMCLF_COMMIT_INTERVAL_MS": "200"}
    first = WorkerProcess(broker, store, [f"{topic}=news"], group, tmp_path, "first", env).start()
    # Interrupt once a good part (but not all) of the stream is out.
    for _ in range(600):
        await asyncio.sleep(0.1)
        done = await _count_labelled(broker, f"{topic}.labelled")
        if done >= 1000:
            break
    assert 0 < done < 5000, f"could not interrupt mid-stream (done={done})\n{first.log()}"
    code = first.stop(sig)
    if sig == signal.SIGTERM:
        assert code == 0, first.log()
    second = WorkerProcess(broker, store, [f"{topic}=news"], group, tmp_path, "second", env).start()
    try:
        out = await collect(broker, [f"{topic}.labelled"], 5000, timeout_s=180, quiet_s=3)
        ids = Counter(o["id"] for o in out)
        assert await committed_equals_high_water(broker, topic, group)
    finally:
        assert second.stop() == 0, second.log()
    missing = 5000 - len(ids)
    assert missing == 0, f"{missing} ids lost\n{second.log()}"
    return ids


async def test_sigkill_mid_stream_loses_nothing(broker, tiny_store, uid, tmp_path):
    ids = await _run_interrupted(broker, tiny_store, uid, tmp_path, signal.SIGKILL)
    dups = sum(n - 1 for n in ids.values())
    record("sigkill", {"events": 5000, "lost": 0, "duplicates": dups})
    # At-least-once: duplicates are allowed after a crash, but only for uncommitted work.
    assert dups < 5000


async def test_sigterm_mid_stream_loses_and_repeats_nothing(broker, tiny_store, uid, tmp_path):
    ids = await _run_interrupted(broker, tiny_store, uid, tmp_path, signal.SIGTERM)
    dups = sum(n - 1 for n in ids.values())
    record("sigterm", {"events": 5000, "lost": 0, "duplicates": dups})
    assert dups == 0


async def test_rebalance_while_batches_are_in_flight_loses_nothing(
    broker, tiny_store, uid, tmp_path
):
    topic, group = f"r-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    await produce(broker, topic, text_events(3000))
    env = {"STREAMCLF_MAX_BATCH": "16"}
    w1 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w1", env).start()
    for _ in range(600):
        await asyncio.sleep(0.1)
        if await _count_labelled(broker, f"{topic}.labelled") >= 300:
            break
    w2 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w2", env).start()
    try:
        out = await collect(broker, [f"{topic}.labelled"], 3000, timeout_s=180, quiet_s=3)
    finally:
        assert w1.stop() == 0, w1.log()
        assert w2.stop() == 0, w2.log()
    ids = Counter(o["id"] for o in out)
    assert len(ids) == 3000, f"lost {3000 - len(ids)}"
    dups = sum(n - 1 for n in ids.values())
    record("rebalance", {"events": 3000, "lost": 0, "duplicates": dups})
    # Revoked partitions are drained before they are given up: at most an in-flight batch
    # per partition may repeat.
    assert dups <= 4 * 16
