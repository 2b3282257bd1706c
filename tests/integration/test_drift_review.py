"""Drift gauges and review routing against the real broker: a worker serving the tiny `news`
model (its reference is its answers on the shipped probe texts) first sees those very texts,
then a stream of long texts with some poison records; review requests are rate-bounded and
never hold the labelled output or the commits."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelstore.probes import read_jsonl, shipped_path
from schemas.records import decode_review
from schemas.review import ReviewRequest
from tests.cli import streamclf
from tests.conftest import free_port
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
)

pytestmark = pytest.mark.integration
RATE, BURST = 2.0, 5


def _gauges(port: int, model: str) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("model") == model and s.name.startswith("streamclf_"):
                key = s.name + (f"[{s.labels['reason']}]" if "reason" in s.labels else "")
                out[key] = out.get(key, 0.0) + s.value
    return out


def _events(texts: list[str], prefix: str) -> list[bytes]:
    return [
        json.dumps({"id": f"{prefix}{i}", "text": t}, ensure_ascii=False).encode()
        for i, t in enumerate(texts)
    ]


def _drift(env: dict[str, str]) -> tuple[int, list[dict]]:
    proc = streamclf("models", "drift", "news", "--json", **env)
    return proc.returncode, json.loads(proc.stdout or "[]")


async def _wait_drift(env: dict[str, str], events: int, timeout_s: float = 90) -> list[dict]:
    """The drift rows once the heartbeat's window holds `events` answers."""
    deadline = time.monotonic() + timeout_s
    rows: list[dict] = []
    while time.monotonic() < deadline:
        _, rows = await asyncio.to_thread(_drift, env)
        if rows and rows[0]["window_events"] >= events:
            return rows
        await asyncio.sleep(1)
    raise AssertionError(f"no heartbeat with {events} answers in the window: {rows}")


async def test_drift_moves_on_a_shifted_stream_and_reviews_are_bounded(
    broker, tiny_store, uid, tmp_path
):
    topic, review = f"d-{uid}", f"d-{uid}.review"
    status_topic = f"status-{uid}"
    await make_topics(broker, [topic], 2)
    port = free_port()
    env = {
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "STREAMCLF_STATUS_TOPIC": status_topic,
        "STREAMCLF_STATUS_INTERVAL_S": "1",
    }
    worker = WorkerProcess(
        broker,
        tiny_store,
        [f"{topic}=news"],
        f"g-{uid}",
        tmp_path,
        env={
            **env,
            "STREAMCLF_METRICS_PORT": str(port),
            "STREAMCLF_METRICS_HOST": "127.0.0.1",
            "STREAMCLF_DRIFT_WINDOW_EVENTS": "400",
            "STREAMCLF_MAX_LENGTH": "64",
            "STREAMCLF_REVIEW_TOPIC": review,
            "STREAMCLF_REVIEW_MARGIN": "0.5",  # the random tiny model is unsure of every text
            "STREAMCLF_REVIEW_RATE_PER_S": str(RATE),
            "STREAMCLF_REVIEW_BURST": str(BURST),
        },
    ).start()
    probes = [row[0] for row in read_jsonl(shipped_path())]
    shifted = [(t * 12)[:400] for t in probes[:300]]
    try:
        # 1) the texts the reference was made on: quiet
        started = time.monotonic()
        await produce(broker, topic, _events(probes, "p"))
        out = await collect(broker, [f"{topic}.labelled"], len(probes), 120)
        assert len(out) == len(probes), worker.log()
        quiet = (await _wait_drift(env, len(probes)))[0]
        assert quiet["label_psi"] == pytest.approx(0.0, abs=0.01)
        assert quiet["length_psi"] == pytest.approx(0.0, abs=0.01)
        assert quiet["top1_drop"] == pytest.approx(0.0, abs=0.01)
        assert quiet["dead_letter_share"] == 0.0
        assert quiet["over"] == []
        assert (await asyncio.to_thread(_drift, env))[0] == 0

        # 2) long texts, cut at max_length, and poison records: the gauges move
        poison = [b"not json"] * 10
        await produce(broker, topic, [*_events(shifted, "s"), *poison])
        out = await collect(broker, [f"{topic}.labelled"], len(probes) + len(shifted), 120)
        assert len(out) == len(probes) + len(shifted)
        moved = (await _wait_drift(env, 300))[0]
        assert moved["length_psi"] > 0.25 > quiet["length_psi"]
        assert moved["truncated_share"] > 0.5 > quiet["truncated_share"]
        assert moved["dead_letter_share"] > 0
        assert {"length_psi", "truncated_share"} <= set(moved["over"])
        code, _ = await asyncio.to_thread(_drift, env)
        assert code == 1
        status = await asyncio.to_thread(streamclf, "status", "--json", **env)
        beat = json.loads(status.stdout)[0]["drift"]["news"]
        assert beat["version"] == "v1" and beat["length_psi"] > 0.25
        gauges = _gauges(port, "news")
        assert gauges["streamclf_drift_length_psi"] == pytest.approx(moved["length_psi"], rel=0.5)

        # 3) review requests: bounded by the token bucket, the rest dropped and counted;
        # every labelled event and every commit went through meanwhile
        for _ in range(60):
            if await committed_equals_high_water(broker, topic, f"g-{uid}"):
                break
            await asyncio.sleep(1)
        assert await committed_equals_high_water(broker, topic, f"g-{uid}"), worker.log()
        reviews = await collect(broker, [review], 10_000, 10, quiet_s=3)
        elapsed = time.monotonic() - started
        assert 1 <= len(reviews) <= BURST + RATE * elapsed + 1
        gauges = _gauges(port, "news")
        assert gauges["streamclf_review_sent_total"] == len(reviews)
        assert gauges["streamclf_review_dropped_total[rate]"] >= 600 - len(reviews) - 10
    finally:
        assert worker.stop() == 0, worker.log()
    ids = {e["id"] for e in out}
    for r in reviews:
        raw = json.dumps({k: v for k, v in r.items() if not k.startswith("_")}).encode()
        request = decode_review(raw)
        assert isinstance(request, ReviewRequest), request
        assert request.id in ids and request.reason == "low_margin"
        assert request.margin < 0.5
    labelled = await collect(broker, [f"{topic}.labelled"], 10_000, 10, quiet_s=2)
    assert len(labelled) == len(probes) + len(shifted)  # reviews never change the output


async def test_review_requests_the_broker_refuses_never_hold_the_output_or_commits(
    broker, tiny_store, uid, tmp_path
):
    """Each review request (the text plus scores) is over the producer's record limit, the
    input and its labelled event are under it: every review send fails, and is counted."""
    topic, review = f"rf-{uid}", f"rf-{uid}.review"
    await make_topics(broker, [topic], 2)
    values = [
        json.dumps({"id": f"big{i}", "text": "长" * 20_000}, ensure_ascii=False).encode()
        for i in range(20)
    ]
    limit = max(len(v) for v in values) + 300  # a review request adds ~700 bytes
    port = free_port()
    worker = WorkerProcess(
        broker,
        tiny_store,
        [f"{topic}=news"],
        f"g-{uid}",
        tmp_path,
        env={
            "STREAMCLF_KAFKA_MAX_MESSAGE_BYTES": str(limit),
            "STREAMCLF_METRICS_PORT": str(port),
            "STREAMCLF_METRICS_HOST": "127.0.0.1",
            "STREAMCLF_REVIEW_TOPIC": review,
            "STREAMCLF_REVIEW_MARGIN": "0.5",
        },
    ).start()
    try:
        await produce(broker, topic, values)
        out = await collect(broker, [f"{topic}.labelled"], len(values), 120)
        assert len(out) == len(values), worker.log()
        for _ in range(60):
            if await committed_equals_high_water(broker, topic, f"g-{uid}"):
                break
            await asyncio.sleep(1)
        assert await committed_equals_high_water(broker, topic, f"g-{uid}"), worker.log()
        for _ in range(30):
            gauges = _gauges(port, "news")
            if gauges.get("streamclf_review_dropped_total[failed]", 0) >= len(values):
                break
            await asyncio.sleep(1)
        assert gauges["streamclf_review_dropped_total[failed]"] == len(values)
        assert gauges.get("streamclf_review_sent_total", 0) == 0
        assert worker.alive()
    finally:
        assert worker.stop() == 0, worker.log()
    assert await collect(broker, [review], 1, 5, quiet_s=1) == []
    assert "review request to" in worker.log()
