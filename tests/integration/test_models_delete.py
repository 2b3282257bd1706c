"""`models delete` asks the live workers (their heartbeats) and never frees a name for reuse."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from admin.cli import app
from bus.control import publish_control
from modelstore.exceptions import VersionRetired
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.control import SwapModel
from tests.integration.harness import WorkerProcess, make_topics
from tests.integration.test_hot_swap import make_store, stop_all, topics_env, wait_workers

pytestmark = pytest.mark.integration


def cli(broker, uid: str, *args: str):
    env = {**topics_env(uid), "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    result = CliRunner().invoke(app, list(args), env=env)
    result.text = " ".join(result.output.split())  # rich wraps long lines
    return result


async def test_delete_refuses_a_version_a_live_worker_serves_though_the_pointer_moved_on(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")  # news: v1 active, v2
    topic = f"news-{uid}"
    await make_topics(broker, [topic], 1)
    w1 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1",
                       env=topics_env(uid)).start()  # fmt: skip
    try:
        await wait_workers(broker, uid, [w1])
        # Another operator's store copy swapped the workers to v2; this store still says v1.
        ms = ModelStore(store)
        swap = SwapModel(model="news", version="v2", sha256=ms.weights_sha256("news", "v2"),
                         requested_at_ms=int(time.time() * 1000))  # fmt: skip
        await publish_control(broker, swap, None, f"control-{uid}")
        await wait_workers(broker, uid, [w1], lambda s: s["w1"].versions == {"news": "v2"})
        assert ms.active("news") == "v1"
        refused = await asyncio.to_thread(  # the CLI runs its own event loop
            cli, broker, uid, "models", "delete", "news", "v2", "--yes", "--store", str(store)
        )
    finally:
        stop_all([w1])
    assert refused.exit_code == 1 and "w1" in refused.text, refused.output
    assert ms.exists("news", "v2")


def test_a_deleted_version_name_is_never_reused(broker, uid: str, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    for seed in (1, 2):
        init_model(store, "news", PRESET_LABELS["chinanews"], "tiny-random", seed=seed)
    deleted_sha = store.weights_sha256("news", "v2")
    gone = cli(broker, uid, "models", "delete", "news", "v2", "--yes", "--store", str(store.root))
    assert gone.exit_code == 0, gone.output
    assert store.tombstones("news")["v2"]["weights_sha256"] == deleted_sha
    with pytest.raises(VersionRetired):
        store.add_version("news", lambda tmp: pytest.fail("never written"), version="v2")
    assert init_model(store, "news", PRESET_LABELS["chinanews"], "tiny-random", seed=3) == "v3"
    assert store.versions("news") == ["v1", "v3"]
