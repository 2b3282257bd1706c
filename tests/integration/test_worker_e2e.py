"""The worker end to end on the real broker: every id once, routing, consumer groups, parity."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from modelstore.labels import PRESET_LABELS
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
    text_events,
)

pytestmark = pytest.mark.integration


async def test_2000_events_over_4_partitions_come_back_exactly_once(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    topic = f"news-{uid}"
    await make_topics(broker, [topic], 4)
    await produce(broker, topic, text_events(2000))
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path).start()
    try:
        out = await collect(broker, [f"{topic}.labelled"], 2000, timeout_s=120, quiet_s=2)
    finally:
        assert worker.stop() == 0, worker.log()
    ids = Counter(o["id"] for o in out)
    assert len(ids) == 2000, f"missing {2000 - len(ids)}; log:\n{worker.log()}"
    assert max(ids.values()) == 1, "duplicates in steady state"
    labels = set(PRESET_LABELS["chinanews"])
    assert all(o["label"] in labels and o["model"] == "news" and o["version"] == "v1" for o in out)
    assert all(0.0 < o["score"] <= 1.0 and o["scores"][0]["label"] == o["label"] for o in out)
    assert {o["source_partition"] for o in out} == {0, 1, 2, 3}
    # Outputs keep the input's key, and offsets were committed up to the end.
    assert all(o["_key"] == str(int(o["id"][1:])).encode() for o in out)
    assert await committed_equals_high_water(broker, topic, f"g-{uid}")


async def test_two_topics_routed_to_two_models(broker, tiny_store: Path, uid: str, tmp_path: Path):
    news, reviews = f"news-{uid}", f"reviews-{uid}"
    await make_topics(broker, [news, reviews], 2)
    await produce(broker, news, text_events(100, "n"))
    await produce(broker, reviews, text_events(100, "r"))
    worker = WorkerProcess(
        broker, tiny_store, [f"{news}=news", f"{reviews}=sentiment:out-{uid}"], f"g-{uid}", tmp_path
    ).start()
    try:
        out = await collect(broker, [f"{news}.labelled", f"out-{uid}"], 200, timeout_s=90)
    finally:
        assert worker.stop() == 0, worker.log()
    by_topic = {t: [o for o in out if o["_topic"] == t] for t in (f"{news}.labelled", f"out-{uid}")}
    assert len(by_topic[f"{news}.labelled"]) == 100
    assert len(by_topic[f"out-{uid}"]) == 100
    assert all(
        o["model"] == "news"
        and o["id"].startswith("n")
        and o["source_topic"] == news
        and o["label"] in PRESET_LABELS["chinanews"]
        for o in by_topic[f"{news}.labelled"]
    )
    assert all(
        o["model"] == "sentiment"
        and o["id"].startswith("r")
        and o["label"] in PRESET_LABELS["jd-binary"]
        for o in by_topic[f"out-{uid}"]
    )


async def test_two_workers_in_one_group_split_the_partitions(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    topic = f"news-{uid}"
    await make_topics(broker, [topic], 4)
    group = f"g-{uid}"
    w1 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w1").start()
    w2 = WorkerProcess(broker, tiny_store, [f"{topic}=news"], group, tmp_path, "w2").start()
    try:
        # Let both join before the stream starts, then produce continuously.
        import asyncio

        await asyncio.sleep(12)
        for chunk in range(4):
            await produce(broker, topic, text_events(300, f"c{chunk}-"))
            await asyncio.sleep(0.5)
        out = await collect(broker, [f"{topic}.labelled"], 1200, timeout_s=120, quiet_s=2)
    finally:
        assert w1.stop() == 0, w1.log()
        assert w2.stop() == 0, w2.log()
    ids = Counter(o["id"] for o in out)
    assert len(ids) == 1200
    assert max(ids.values()) == 1
    partitions_by_worker: dict[str, set[int]] = {}
    for o in out:
        partitions_by_worker.setdefault(o["worker_id"], set()).add(o["source_partition"])
    assert set(partitions_by_worker) == {"w1", "w2"}, partitions_by_worker
    assert not (partitions_by_worker["w1"] & partitions_by_worker["w2"]), partitions_by_worker


async def test_worker_output_matches_transformers_pipeline(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    """Parity with the seed card's way, through the whole stream (text and text_pair)."""
    from transformers import pipeline

    topic = f"parity-{uid}"
    await make_topics(broker, [topic], 1)
    cases = [
        ("北京上个月召开了两会", None),
        ("这家酒店的服务非常好", "下次还会再来"),
        ("国足再次输球", None),
        ("央行宣布降准", "股市大涨"),
    ]
    events = [
        json.dumps(
            {"id": f"p{i}", "text": t, **({"text_pair": p} if p else {})}, ensure_ascii=False
        ).encode()
        for i, (t, p) in enumerate(cases)
    ]
    await produce(broker, topic, events)
    fp32 = {"STREAMCLF_ENGINE": "torch"}  # the reference; other backends: tests/unit/test_backends
    worker = WorkerProcess(
        broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=fp32
    ).start()
    try:
        out = {o["id"]: o for o in await collect(broker, [f"{topic}.labelled"], len(cases), 90)}
    finally:
        worker.stop()
    model_dir = tiny_store / "news" / "v1"
    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir))
    for i, (text, pair) in enumerate(cases):
        ref = pipe({"text": text, "text_pair": pair} if pair else text)
        ref = ref[0] if isinstance(ref, list) else ref
        assert out[f"p{i}"]["label"] == ref["label"]
        assert abs(out[f"p{i}"]["score"] - ref["score"]) < 1e-4
