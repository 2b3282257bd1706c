"""Result cache: Redis (one MGET per batch, one pipelined SET EX for misses) or in-process LRU.

Keys are `prefix:model:identity:sha256(normalized text, text_pair)`, where the identity
(`cache_identity`) names the version and hashes the sha256 of every file of the version
(weights, config.json, tokenizer, graphs: `VerifiedVersion.digest`) and every setting that
changes an answer (top-k, max length, backend, precision, device type). A new version, other
files under a reused name, or another top-k never meet an answer cached for something else.
Values read back are untrusted: `worker/cached.py` checks them before they are served. Redis
failures never stop classification: a circuit breaker bypasses Redis for `retry_s` after an
error, then tries again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import unicodedata
from collections import OrderedDict
from typing import Any, Protocol

import orjson

log = logging.getLogger(__name__)
# A real value holds top-k (label, id, score) entries: far below this for any label map.
MAX_VALUE_BYTES = 64 * 1024


def normalize(text: str) -> str:
    """NFC and outer whitespace stripped: changes nothing the tokenizer would see."""
    return unicodedata.normalize("NFC", text).strip()


def cache_identity(version: str, files_sha256: str, **settings: Any) -> str:
    """`VERSION-HASH`: HASH covers the version's files (`files_sha256`, a digest over every
    file's sha256) and the output-changing `settings`."""
    payload = json.dumps({"files": files_sha256, **settings}, sort_keys=True, default=str)
    return f"{version}-{hashlib.sha256(payload.encode()).hexdigest()[:16]}"


def engine_identity(engine: Any, version: str) -> str:
    """The cache identity of a loaded engine: its files' digest (`files_digest`) and the
    settings that change its answers (`identity_fields()`: backend, precision, top-k, ...;
    otherwise top-k, max length, dtype and device type)."""
    fields = getattr(engine, "identity_fields", None)
    if callable(fields):
        settings = dict(fields())
    else:
        settings = {
            "top_k": getattr(engine, "top_k", None),
            "max_length": getattr(engine, "max_length", None),
            "dtype": str(getattr(engine, "torch_dtype", getattr(engine, "dtype", None))),
            "device": getattr(getattr(engine, "torch_device", None), "type", None),
        }
    return cache_identity(version, str(engine.files_digest), **settings)


def cache_key(prefix: str, model: str, identity: str, text: str, pair: str | None) -> str:
    """`identity` is `engine_identity(...)` of the engine that would compute the answer."""
    digest = hashlib.sha256(normalize(text).encode())
    if pair is not None:
        digest.update(b"\x00pair\x00" + normalize(pair).encode())
    return f"{prefix}:{model}:{identity}:{digest.hexdigest()}"


class ResultCache(Protocol):
    @property
    def state(self) -> str: ...

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]: ...

    async def set_many(self, items: dict[str, dict[str, Any]]) -> None: ...

    async def close(self) -> None: ...


class NoCache:
    state = "off"

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        return [None] * len(keys)

    async def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        return None

    async def close(self) -> None:
        return None


class LruCache:
    """In-process LRU: used when no Redis URL is configured."""

    state = "lru"

    def __init__(self, max_items: int) -> None:
        self.max_items = max_items
        self._data: OrderedDict[str, dict[str, Any]] = OrderedDict()

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        out = []
        for key in keys:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            out.append(value)
        return out

    async def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        for key, value in items.items():
            self._data[key] = value
            self._data.move_to_end(key)
        while len(self._data) > self.max_items:
            self._data.popitem(last=False)

    async def close(self) -> None:
        self._data.clear()


class RedisCache:
    """Redis with bounded timeouts and a circuit breaker (closed → open → half-open probe)."""

    def __init__(
        self,
        url: str,
        ttl_s: int,
        timeout_ms: int = 200,
        retry_s: float = 2.0,
        clock: Any = time.monotonic,
    ) -> None:
        import redis.asyncio as aioredis

        timeout = timeout_ms / 1000.0
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry_on_timeout=False
        )
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self._clock = clock
        self._open_until = 0.0
        self._up = True
        self.errors = 0
        self.last_error: str | None = None
        self.recovered_at: float | None = None

    @property
    def state(self) -> str:
        return "redis" if self._up else "redis-down"

    def _available(self) -> bool:
        return self._up or self._clock() >= self._open_until

    def _failed(self, exc: Exception) -> None:
        from worker import metrics

        self.errors += 1
        metrics.CACHE_ERRORS.inc()
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self._up:
            log.warning("Redis cache unavailable (%s); classifying without cache", self.last_error)
        self._up = False
        metrics.CACHE_UP.set(0)
        self._open_until = self._clock() + self.retry_s

    def _succeeded(self) -> None:
        from worker import metrics

        if not self._up:
            log.info("Redis cache is back")
            self.recovered_at = self._clock()
        self._up = True
        metrics.CACHE_UP.set(1)

    async def get_many(self, keys: list[str]) -> list[dict[str, Any] | None]:
        if not keys or not self._available():
            return [None] * len(keys)
        try:
            raw = await self._client.mget(keys)
        except Exception as exc:  # any Redis or socket error: bypass, never fail the batch
            self._failed(exc)
            return [None] * len(keys)
        self._succeeded()
        return [None if r is None else _loads(r) for r in raw]

    async def set_many(self, items: dict[str, dict[str, Any]]) -> None:
        if not items or not self._available():
            return
        try:
            async with self._client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(key, orjson.dumps(value), ex=self.ttl_s)
                await pipe.execute()
        except Exception as exc:
            self._failed(exc)
            return
        self._succeeded()

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a dead connection
            await self._client.aclose()


def _loads(raw: bytes | str) -> dict[str, Any]:
    """A cached value; `{}` (no prediction: the pipeline counts it as corrupt) if it is over
    `MAX_VALUE_BYTES` (checked before parsing) or not a JSON object."""
    if len(raw) > MAX_VALUE_BYTES:
        return {}
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def make_cache(
    redis_url: str | None, enabled: bool, ttl_s: int, lru_size: int, timeout_ms: int, retry_s: float
) -> ResultCache:
    if not enabled:
        return NoCache()
    if redis_url:
        return RedisCache(redis_url, ttl_s, timeout_ms, retry_s)
    return LruCache(lru_size)
