"""Cache keys, the in-process LRU, and the Redis circuit breaker (no server needed)."""

import asyncio

from tests.conftest import free_port
from worker.cache import LruCache, RedisCache, cache_identity, cache_key, make_cache


def test_keys_separate_models_versions_pairs_and_ignore_outer_whitespace() -> None:
    base = cache_key("p", "news", "v1", "北京", None)
    assert base == cache_key("p", "news", "v1", "  北京\n", None)
    assert base != cache_key("p", "news", "v2", "北京", None)
    assert base != cache_key("p", "other", "v1", "北京", None)
    assert base != cache_key("p", "news", "v1", "北京", "")
    assert cache_key("p", "m", "v", "ab", None) != cache_key("p", "m", "v", "a", "b")
    assert base.startswith("p:news:v1:")


def test_identity_covers_weights_and_every_output_setting() -> None:
    base = cache_identity("v1", "a" * 64, top_k=5, max_length=512, dtype="fp32")
    assert base.startswith("v1-")
    assert base == cache_identity("v1", "a" * 64, max_length=512, dtype="fp32", top_k=5)
    assert base != cache_identity("v1", "b" * 64, top_k=5, max_length=512, dtype="fp32")
    assert base != cache_identity("v1", "a" * 64, top_k=2, max_length=512, dtype="fp32")
    assert base != cache_identity("v1", "a" * 64, top_k=5, max_length=128, dtype="fp32")
    assert base != cache_identity("v1", "a" * 64, top_k=5, max_length=512, dtype="bf16")


def test_lru_evicts_least_recently_used() -> None:
    async def run() -> None:
        lru = LruCache(max_items=2)
        await lru.set_many({"a": {"x": 1}, "b": {"x": 2}})
        assert await lru.get_many(["a"]) == [{"x": 1}]  # a is now fresh
        await lru.set_many({"c": {"x": 3}})
        assert await lru.get_many(["a", "b", "c"]) == [{"x": 1}, None, {"x": 3}]

    asyncio.run(run())


def test_make_cache_choices() -> None:
    assert make_cache(None, False, 1, 1, 100, 1.0).state == "off"
    assert make_cache(None, True, 1, 1, 100, 1.0).state == "lru"


def test_circuit_breaker_bypasses_a_dead_redis_and_retries_later() -> None:
    clock = [0.0]

    async def run() -> None:
        cache = RedisCache(
            f"redis://127.0.0.1:{free_port()}/0",
            ttl_s=60,
            timeout_ms=100,
            retry_s=5.0,
            clock=lambda: clock[0],
        )
        assert await cache.get_many(["k"]) == [None]  # connection refused → miss, no raise
        assert cache.state == "redis-down" and cache.errors == 1
        await cache.get_many(["k"])  # circuit open: not even tried
        await cache.set_many({"k": {"v": 1}})
        assert cache.errors == 1
        clock[0] = 6.0  # half-open: one probe, fails again
        await cache.get_many(["k"])
        assert cache.errors == 2
        await cache.close()

    asyncio.run(run())
