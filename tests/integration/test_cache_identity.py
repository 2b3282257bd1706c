"""A cached answer always belongs to the weights and settings that would compute it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bus.settings import KafkaSettings
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import topics_env, wait_workers

pytestmark = pytest.mark.integration
N = 12  # the same 12 texts in every round


class Rounds:
    """Each round sends the same texts (ids tagged by round) through a worker and returns them."""

    def __init__(self, broker: KafkaSettings, topic: str, uid: str) -> None:
        self.broker, self.topic, self.uid, self.sent = broker, topic, uid, 0

    async def run(self, worker: WorkerProcess, tag: str) -> list[dict[str, Any]]:
        await produce(self.broker, self.topic, text_events(N, tag))
        self.sent += N
        out = await collect(self.broker, [f"{self.topic}.labelled"], self.sent, timeout_s=60)
        mine = [o for o in out if o["id"].startswith(tag) and o["id"][len(tag) :].isdigit()]
        assert len({o["id"] for o in mine}) == N, f"round {tag}: {len(mine)} outputs"
        return mine


async def test_no_stale_answer_after_top_k_change_or_weights_under_a_reused_name(
    broker, redis_url: str, uid: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    init_model(ModelStore(store), "news", PRESET_LABELS["chinanews"], "tiny-random", seed=1)
    topic = f"ci-{uid}"
    await make_topics(broker, [topic], 1)
    base_env = {**topics_env(uid), "STREAMCLF_REDIS_URL": redis_url,
                "STREAMCLF_CACHE_PREFIX": f"ci-{uid}"}  # fmt: skip
    rounds = Rounds(broker, topic, uid)

    async def worker(name: str, **env: str) -> WorkerProcess:
        w = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, name,
                          env={**base_env, **env}).start()  # fmt: skip
        await wait_workers(broker, uid, [w])
        return w

    w = await worker("k5")
    try:
        computed = await rounds.run(w, "a")
        hits = await rounds.run(w, "b")
    finally:
        assert w.stop() == 0, w.log()
    assert not any(o["cached"] for o in computed) and all(o["cached"] for o in hits)
    assert {len(o["scores"]) for o in hits} == {5}

    w = await worker("k2", STREAMCLF_TOP_K="2")
    try:
        top2 = await rounds.run(w, "c")
    finally:
        assert w.stop() == 0, w.log()
    assert not any(o["cached"] for o in top2), "an answer cached with top-k 5 served for top-k 2"
    assert {len(o["scores"]) for o in top2} == {2}

    # The model is removed from the store by hand and created again: v1 is a name again, with
    # other weights. Its answers must be computed, not taken from the old v1's cache entries.
    shutil.rmtree(store / "news")
    assert (
        init_model(ModelStore(store), "news", PRESET_LABELS["chinanews"], "tiny-random", 9) == "v1"
    )
    w = await worker("k2b", STREAMCLF_TOP_K="2")
    try:
        reborn = await rounds.run(w, "d")
    finally:
        assert w.stop() == 0, w.log()
    assert not any(o["cached"] for o in reborn), "answers of other weights served from cache"
    old = {o["id"][1:]: o["scores"] for o in top2}
    assert any(o["scores"] != old[o["id"][1:]] for o in reborn), "new weights, same answers?"
