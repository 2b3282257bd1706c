"""At-least-once delivery: SIGKILL loses nothing and repeats only the uncommitted window,
SIGTERM loses and repeats nothing, and a rebalance mid-stream loses nothing.

Every figure written to benchmarks/results/integration.json is counted from the output topic
(matched to the inputs by partition and offset, and by id), never typed in.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from benchmarks.chaos.ledger import account, uncommitted_window
from bus.topics import high_water_marks
from tests.integration.delivery_record import record
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    committed_offsets,
    make_topics,
    produce,
    text_events,
)

pytestmark = pytest.mark.integration
EVENTS = 5000


async def _count_labelled(broker, topic: str) -> int:
    """Outputs so far, from the high-water marks (instant: a worker on a fast backend must not
    finish the stream while this counts)."""
    return sum(p.high_water for p in await high_water_marks(broker, topic))


def _sent(values: list[bytes], coords: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    return {c: json.loads(v)["id"] for c, v in zip(coords, values, strict=True)}


async def _run_interrupted(
    broker, store: Path, uid: str, tmp_path: Path, sig: int, name: str
) -> dict[str, Any]:
    """Stop a worker mid-stream with `sig`, restart one in the same group; the figures."""
    topic, group = f"d-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    values = text_events(EVENTS)
    sent = _sent(values, await produce(broker, topic, values))
    # fp32 torch: the slowest CPU backend, so that "mid-stream" lasts (auto may pick int8)
    env = {
        "STREAMCLF_MAX_BATCH": "16",
        "STREAMCLF_COMMIT_INTERVAL_MS": "200",
        "STREAMCLF_ENGINE": "torch",
        "STREAMCLF_DTYPE": "fp32",
    }
    first = WorkerProcess(broker, store, [f"{topic}=news"], group, tmp_path, "first", env).start()
    # Interrupt once a good part (but not all) of the stream is out.
    for _ in range(600):
        await asyncio.sleep(0.1)
        done = await _count_labelled(broker, f"{topic}.labelled")
        if done >= 1000:
            break
    assert 0 < done < EVENTS, f"could not interrupt mid-stream (done={done})\n{first.log()}"
    code = first.stop(sig)
    if sig == signal.SIGTERM:
        assert code == 0, first.log()
    # Nobody owns the partitions now: this is what the group will resume from.
    committed = await committed_offsets(broker, topic, group)
    second = WorkerProcess(broker, store, [f"{topic}=news"], group, tmp_path, "second", env).start()
    try:
        out = await collect(
            broker, [f"{topic}.labelled", f"{topic}.dlq"], EVENTS, timeout_s=180, quiet_s=3
        )
        assert await committed_equals_high_water(broker, topic, group)
    finally:
        assert second.stop() == 0, second.log()
    ledger = account(sent, out)
    window = uncommitted_window(out, "first", committed)
    figures = {**ledger.figures(), "uncommitted_window": window, "interrupted_after": done}
    record(name, figures)
    assert not ledger.lost, f"{len(ledger.lost)} inputs lost: {ledger.lost[:10]}\n{second.log()}"
    assert not (ledger.unexpected or ledger.wrong_id or ledger.dead_letters), figures
    # The successor starts at the committed offsets, so it redoes exactly what the first
    # worker had answered past them, and nothing else.
    assert ledger.duplicates == window, figures
    return figures


async def test_sigkill_mid_stream_loses_nothing(broker, tiny_store, uid, tmp_path):
    figures = await _run_interrupted(broker, tiny_store, uid, tmp_path, signal.SIGKILL, "sigkill")
    assert figures["duplicates"] < figures["interrupted_after"], figures


async def test_sigterm_mid_stream_loses_and_repeats_nothing(broker, tiny_store, uid, tmp_path):
    figures = await _run_interrupted(broker, tiny_store, uid, tmp_path, signal.SIGTERM, "sigterm")
    assert figures["uncommitted_window"] == 0 and figures["duplicates"] == 0, figures


async def test_rebalance_while_batches_are_in_flight_loses_nothing(
    broker, tiny_store, uid, tmp_path
):
    topic, group = f"r-{uid}", f"g-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 4)
    values = text_events(3000)
    sent = _sent(values, await produce(broker, topic, values))
    max_batch = 16
    env = {"STREAMCLF_MAX_BATCH": str(max_batch)}
    w1 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w1", env).start()
    for _ in range(600):
        await asyncio.sleep(0.1)
        if await _count_labelled(broker, f"{topic}.labelled") >= 300:
            break
    w2 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w2", env).start()
    try:
        out = await collect(
            broker, [f"{topic}.labelled", f"{topic}.dlq"], 3000, timeout_s=180, quiet_s=3
        )
    finally:
        assert w1.stop() == 0, w1.log()
        assert w2.stop() == 0, w2.log()
    ledger = account(sent, out)
    figures = ledger.figures()
    record("rebalance", figures)
    assert not ledger.lost, f"lost {len(ledger.lost)}: {ledger.lost[:10]}"
    assert not (ledger.unexpected or ledger.wrong_id or ledger.dead_letters), figures
    # Revoked partitions are drained before they are given up: at most an in-flight batch
    # per partition may repeat.
    assert ledger.duplicates <= 4 * max_batch, figures
