"""Issue 17 item 5: values read from Redis are untrusted input (real broker, real Redis).

Forged values under the real keys of a running worker are counted as corrupt, recomputed,
published with `cached: false` and the right fields, and the cache is repaired.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port
from tests.integration.harness import WorkerProcess, collect, make_topics, produce
from worker.cache import normalize

pytestmark = pytest.mark.integration
TEXTS = [
    "北京上个月召开了两会",
    "这家酒店的服务非常好",
    "国足再次输球，球迷失望",
    "央行宣布降准",
    "质量太差了，不推荐",
    "新电影票房突破十亿",
]
FIELDS = ("label", "label_id")


def forgeries(real: dict[str, Any], other_label: str) -> list[bytes]:
    """One forged value per class, built from a real cached value (so only one thing is off)."""
    top = real["scores"][0]
    alien = {"label": "外星", "label_id": 99, "score": 7.5, "scores": [["外星", 99, 7.5]]}
    renamed = {"label": other_label, "scores": [[other_label, *top[1:]], *real["scores"][1:]]}
    return [
        json.dumps({**real, "score": "nan"}).encode(),
        json.dumps({**real, **alien}).encode(),
        json.dumps({**real, "scores": [top] * 200_000}).encode(),
        json.dumps({**real, **renamed}).encode(),
        b"\xff\xfe{not json",
        json.dumps({**real, "padding": "x" * 2_000_000}).encode(),
    ]


def events(tag: str) -> list[bytes]:
    return [
        json.dumps({"id": f"{tag}{i}", "text": t}, ensure_ascii=False).encode()
        for i, t in enumerate(TEXTS)
    ]


async def test_forged_cached_values_are_recomputed_and_published_as_computed(
    broker, tiny_store: Path, redis_url: str, uid: str, tmp_path: Path
) -> None:
    import redis

    topic, prefix, port = f"forge-{uid}", f"forge-{uid}", free_port()
    await make_topics(broker, [topic], 1)
    env = {
        "STREAMCLF_REDIS_URL": redis_url,
        "STREAMCLF_CACHE_PREFIX": prefix,
        "STREAMCLF_ENGINE": "torch",  # fp32 torch: scores compared across batches
        "STREAMCLF_DTYPE": "fp32",
        "STREAMCLF_METRICS_PORT": str(port),
        "STREAMCLF_METRICS_HOST": "127.0.0.1",
    }
    client = redis.Redis.from_url(redis_url)
    out = [f"{topic}.labelled"]
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=env)
    worker.start()
    try:
        await produce(broker, topic, events("a"))
        first = {o["id"][1:]: o for o in await collect(broker, out, 6, 120)}
        keys = client.keys(f"{prefix}:news:*")
        assert len(keys) == 6, keys
        by_text = {}
        for text in TEXTS:
            digest = hashlib.sha256(normalize(text).encode()).hexdigest()
            by_text[text] = next(k for k in keys if k.decode().endswith(digest))
        labels = sorted({json.loads(client.get(k))["label"] for k in keys})
        for text, forged in zip(TEXTS, range(6), strict=True):
            real = json.loads(client.get(by_text[text]))
            other = next(n for n in [*labels, "体育", "财经"] if n != real["label"])
            client.set(by_text[text], forgeries(real, other)[forged], ex=600)
        await produce(broker, topic, events("b"))
        both = await collect(broker, out, 12, 120)
        await produce(broker, topic, events("c"))  # the recomputed values were stored again
        final = await collect(broker, out, 18, 120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
    finally:
        assert worker.stop() == 0, worker.log()
        for key in client.keys(f"{prefix}:*"):
            client.delete(key)
    second = [o for o in both if o["id"].startswith("b")]
    assert len(second) == 6
    for o in second:
        ref = first[o["id"][1:]]
        assert o["cached"] is False, f"a forged value was served: {o}"
        assert {k: o[k] for k in FIELDS} == {k: ref[k] for k in FIELDS}
        assert o["score"] == pytest.approx(ref["score"], abs=1e-5)
        assert [s["label_id"] for s in o["scores"]] == [s["label_id"] for s in ref["scores"]]
        assert len(o["scores"]) == len(ref["scores"]) <= 5
    assert 'streamclf_cache_corrupt_total{model="news"} 6.0' in metrics
    third = [o for o in final if o["id"].startswith("c")]
    assert len(third) == 6 and all(o["cached"] for o in third), "cache not repaired"
    assert {o["id"][1:]: o["label"] for o in third} == {i: o["label"] for i, o in first.items()}
