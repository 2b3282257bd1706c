"""Secrets stay secret: SASL and Redis passwords and the control key never reach a repr, a log
line or a heartbeat; producers are idempotent wherever the broker allows it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bus.clients import make_producer
from bus.control import read_status
from bus.exceptions import IdempotenceRefused
from bus.settings import KafkaSettings
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import stop_all, topics_env, wait_workers
from worker.settings import WorkerSettings

pytestmark = pytest.mark.integration
KAFKA_PW, REDIS_PW, CONTROL_KEY = "kafka-pw-5d1e9", "redis-pw-7c2a4", "control-key-93be1"


def test_settings_never_show_passwords(redis_url: str) -> None:
    kafka = KafkaSettings(sasl_username="svc", sasl_password=KAFKA_PW)
    worker = WorkerSettings(
        redis_url=redis_url.replace("redis://", f"redis://:{REDIS_PW}@"), control_key=CONTROL_KEY
    )
    for text in (repr(kafka), str(kafka), kafka.model_dump_json(), repr(worker), str(worker),
                 worker.model_dump_json()):  # fmt: skip
        assert KAFKA_PW not in text and REDIS_PW not in text and CONTROL_KEY not in text
    sasl = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_password=KAFKA_PW)
    assert sasl.client_kwargs()["sasl_plain_password"] == KAFKA_PW  # still reaches the client


async def test_a_worker_start_logs_and_heartbeats_no_secret(
    broker, tiny_store: Path, redis_url: str, uid: str, tmp_path: Path
) -> None:
    topic = f"sec-{uid}"
    await make_topics(broker, [topic], 1)
    env = {
        **topics_env(uid, CONTROL_KEY),
        "STREAMCLF_LOG_LEVEL": "DEBUG",
        "STREAMCLF_KAFKA_SASL_USERNAME": "svc",
        "STREAMCLF_KAFKA_SASL_PASSWORD": KAFKA_PW,
        # The shared Redis takes any password (default user, nopass): it reaches Redis.
        "STREAMCLF_REDIS_URL": redis_url.replace("redis://", f"redis://:{REDIS_PW}@"),
        "STREAMCLF_CACHE_PREFIX": f"sec-{uid}",
    }
    w = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, "ws", env=env)
    try:
        w.start()
        await wait_workers(broker, uid, [w])
        await produce(broker, topic, text_events(10, "s"))
        outputs = await collect(broker, [f"{topic}.labelled"], 10, timeout_s=60)
        statuses = await read_status(broker, 0, f"status-{uid}")
    finally:
        stop_all([w])
    log = w.log_path.read_text(errors="replace")
    assert "DEBUG" in log and len(outputs) == 10
    beats = json.dumps([s.model_dump() for s in statuses.values()])
    assert statuses["ws"].cache_state == "redis", "the URL with the password was not used"
    for secret in (KAFKA_PW, REDIS_PW, CONTROL_KEY):
        assert secret not in log, f"{secret} in the worker's log"
        assert secret not in beats, f"{secret} in a heartbeat"
        assert not any(secret in json.dumps(o, default=str) for o in outputs)


async def test_producers_are_idempotent_unless_the_broker_cannot(
    broker: KafkaSettings, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idempotence is on by default; the embedded broker (tansu 0.6) refuses InitProducerId,
    so its clients turn it off (admin/localstack.py). If this test starts failing because
    tansu accepted it, drop that exception."""
    assert KafkaSettings.model_fields["enable_idempotence"].default is True
    monkeypatch.delenv("STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE", raising=False)
    assert make_producer(KafkaSettings())._txn_manager is not None
    monkeypatch.undo()
    await make_topics(broker, [f"idem-{uid}"], 1)
    idempotent = make_producer(broker.model_copy(update={"enable_idempotence": True}))
    try:
        if os.environ.get("STREAMCLF_TEST_BOOTSTRAP"):  # a real Kafka: it must just work
            await idempotent.start()
            assert (await idempotent.send_and_wait(f"idem-{uid}", b"x")).offset == 0
        else:
            assert broker.enable_idempotence is False
            with pytest.raises(IdempotenceRefused, match="ENABLE_IDEMPOTENCE=false"):
                await idempotent.start()
    finally:
        await idempotent.stop()
    plain = make_producer(broker)
    await plain.start()
    try:
        assert (await plain.send_and_wait(f"idem-{uid}", b"y")).offset >= 0
    finally:
        await plain.stop()
