"""The Redis cache against a real Redis: hits are identical to computed results, versions are
kept apart, and a Redis outage never stops or loses classification."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.delivery_record import record
from tests.integration.harness import WorkerProcess, collect, make_topics, produce

pytestmark = pytest.mark.integration

STABLE = ("id", "label", "label_id", "score", "scores", "model", "version", "truncated")


def _events(prefix: str, texts: list[str]) -> list[bytes]:
    return [
        json.dumps({"id": f"{prefix}{i}", "text": t}, ensure_ascii=False).encode()
        for i, t in enumerate(texts)
    ]


TEXTS = [f"第{i % 50}条新闻：北京上个月召开了两会" for i in range(200)]  # 50 distinct texts


async def test_repeated_texts_are_served_from_redis(broker, tiny_store, redis_url, uid, tmp_path):
    topic = f"c-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 2)
    env = {
        "STREAMCLF_REDIS_URL": redis_url,
        "STREAMCLF_CACHE_PREFIX": f"test-{uid}",
        # fp32 torch: a reduced-precision backend that `auto` may pick (dynamic int8) shifts
        # scores with a batch's make-up, and this test compares scores exactly.
        "STREAMCLF_ENGINE": "torch",
        "STREAMCLF_DTYPE": "fp32",
    }
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=env)
    worker.start()
    try:
        await produce(broker, topic, _events("a", TEXTS))
        first = await collect(broker, [f"{topic}.labelled"], 200, 90)
        await produce(broker, topic, _events("a", TEXTS))  # same ids and texts again
        both = await collect(broker, [f"{topic}.labelled"], 400, 90)
    finally:
        assert worker.stop() == 0, worker.log()
    second = both[len(first) :]
    assert len(second) == 200
    assert all(o["cached"] for o in second), "second pass is all cache hits"
    computed = {o["id"]: o for o in first if not o["cached"]}
    # Identical texts inside the first pass may already hit (computed once, then cached).
    for o in second:
        ref = computed.get(o["id"]) or next(c for c in first if c["id"] == o["id"])
        assert {k: o[k] for k in STABLE} == {k: ref[k] for k in STABLE}
    import redis

    keys = redis.Redis.from_url(redis_url).keys(f"test-{uid}:news:v1-*")
    assert len(keys) == 50, "one key per distinct normalized text"


async def test_redis_unreachable_at_start_still_classifies(broker, tiny_store, uid, tmp_path):
    topic = f"nc-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    env = {
        "STREAMCLF_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "STREAMCLF_REDIS_REQUIRED_AT_START": "false",  # the default refuses to start
        "STREAMCLF_STATUS_TOPIC": f"status-{uid}",
    }
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=env)
    worker.start()
    try:
        await produce(broker, topic, _events("b", TEXTS[:60]))
        out = await collect(broker, [f"{topic}.labelled"], 60, 90)
        statuses = await collect(broker, [f"status-{uid}"], 10**9, timeout_s=3)
    finally:
        assert worker.stop() == 0, worker.log()
    assert len(out) == 60 and not any(o["cached"] for o in out)
    assert any(s["cache_state"] == "redis-down" for s in statuses), "status says so"
    assert worker.log().count("Redis cache unavailable") <= 3, "logged once per outage"


class RedisServer:
    """A private redis-server on a free port, so the test can stop and restart it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is needed for this test"
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        for _ in range(100):
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("private redis-server did not start")

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait()


async def test_redis_lost_mid_stream_and_back(broker, tiny_store, uid, tmp_path):
    topic = f"rl-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    server = RedisServer(tmp_path)
    server.start()
    env = {
        "STREAMCLF_REDIS_URL": server.url,
        "STREAMCLF_REDIS_RETRY_S": "1",
        "STREAMCLF_REDIS_TIMEOUT_MS": "200",
        "STREAMCLF_MAX_WAIT_MS": "5",
    }
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=env)
    worker.start()
    try:
        await produce(broker, topic, _events("warm", ["预热"]))
        await collect(broker, [f"{topic}.labelled"], 1, 90)
        server.stop()  # Redis goes away mid-stream
        await produce(broker, topic, _events("down", TEXTS[:100]))
        out = await collect(broker, [f"{topic}.labelled"], 101, 60)
        assert len(out) == 101, "nothing lost while Redis is down"
        assert worker.alive()
        server.start()  # Redis is back (empty): trickle one repeated text until it hits
        back_at = time.monotonic()
        seen = 101
        noticed_s = None
        for i in range(100):
            await produce(broker, topic, _events(f"t{i}-", ["恢复以后重复的文本"]))
            out = await collect(broker, [f"{topic}.labelled"], seen + 1, 30)
            seen = len(out)
            if out[-1]["cached"]:
                noticed_s = time.monotonic() - back_at
                break
            await asyncio.sleep(0.1)
    finally:
        assert worker.stop() == 0, worker.log()
        server.stop()
    assert noticed_s is not None, "the worker never used Redis again"
    record(
        "redis_back", {"seconds_until_cache_hit_after_restart": round(noticed_s, 2), "retry_s": 1}
    )
    assert "Redis cache is back" in worker.log()
