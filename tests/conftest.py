"""Shared fixtures. Integration fixtures start a real tansu broker and use the real Redis."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.settings import KafkaSettings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaSettings]:
    """A real Kafka-protocol broker for this test session (or STREAMCLF_TEST_BOOTSTRAP)."""
    external = os.environ.get("STREAMCLF_TEST_BOOTSTRAP")
    if external:
        yield KafkaSettings(
            bootstrap_servers=external, session_timeout_ms=6000, heartbeat_interval_ms=1000
        )
        return
    from admin.localstack import LocalBroker

    local = LocalBroker(tmp_path_factory.mktemp("broker"), port=free_port())
    local.start()
    try:
        yield KafkaSettings(
            bootstrap_servers=local.address, session_timeout_ms=6000, heartbeat_interval_ms=1000
        )
    finally:
        local.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis (STREAMCLF_TEST_REDIS_URL, default 127.0.0.1:6379 db 0)."""
    url = os.environ.get("STREAMCLF_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} does not answer: {exc}")
    return url


@pytest.fixture
def uid() -> str:
    """A fresh suffix for topic and group names, so tests never share state."""
    return uuid.uuid4().hex[:10]


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with two tiny classifiers: `news` (chinanews labels) and `sentiment`."""
    from modelstore.labels import PRESET_LABELS
    from modelstore.presets import init_model
    from modelstore.store import ModelStore

    root = tmp_path_factory.mktemp("store")
    store = ModelStore(root)
    init_model(store, "news", PRESET_LABELS["chinanews"], "tiny-random", seed=1)
    init_model(store, "sentiment", PRESET_LABELS["jd-binary"], "tiny-random", seed=2)
    return root
