"""Checks before a worker starts, so the common mistakes end in one line that says the fix.

Broker unreachable, an input topic missing, a model (or its active version) missing, a Redis
URL that does not answer: each raises `PreflightError` with the command that fixes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bus.exceptions import BusError
from bus.reading import require_topics
from bus.settings import KafkaSettings
from modelstore.exceptions import ModelStoreError
from modelstore.store import ModelStore


class PreflightError(Exception):
    """Something the worker needs is missing; the message says how to fix it."""


def check_models(store_root: Path, models: Iterable[str]) -> dict[str, str]:
    """The version each model would start with; raises when a model has none."""
    store = ModelStore(store_root)
    found = {}
    for model in models:
        try:
            version = store.default_version(model)
            store.require(model, version)
        except ModelStoreError as exc:
            raise PreflightError(str(exc)) from exc
        found[model] = version
    return found


def check_redis(url: str, timeout_s: float = 2.0) -> None:
    """A configured Redis must answer at start (later outages are bridged by the breaker)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
    except redis.RedisError as exc:
        where = url.split("@")[-1]  # never print the password
        raise PreflightError(
            f"Redis at {where} does not answer ({exc}): start it, fix STREAMCLF_REDIS_URL / "
            "--redis-url, or leave it unset to use the in-process cache"
        ) from exc
    finally:
        client.close()


async def check_topics(kafka: KafkaSettings, topics: list[str]) -> None:
    """The broker answers and every input topic exists."""
    try:
        await require_topics(kafka, topics)
    except BusError as exc:
        raise PreflightError(str(exc)) from exc
