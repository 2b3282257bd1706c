"""A running worker serves /healthz, /readyz and Prometheus /metrics, and its counters move."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import free_port
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_health_readiness_and_metrics(broker, tiny_store, uid, tmp_path):
    topic = f"m-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 2)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    worker = WorkerProcess(
        broker,
        tiny_store,
        [f"{topic}=news"],
        f"g-{uid}",
        tmp_path,
        env={"STREAMCLF_METRICS_PORT": str(port), "STREAMCLF_METRICS_HOST": "127.0.0.1"},
    ).start()
    try:
        for _ in range(300):
            if _get(f"{base}/healthz")[0] == 200:
                break
            await asyncio.sleep(0.1)
        assert _get(f"{base}/healthz") == (200, "ok\n")
        for _ in range(300):  # ready once models are loaded and the group is joined
            if _get(f"{base}/readyz")[0] == 200:
                break
            await asyncio.sleep(0.1)
        assert _get(f"{base}/readyz")[0] == 200, worker.log()
        assert _get(f"{base}/nope")[0] == 404
        before = _samples(_get(f"{base}/metrics")[1])
        await produce(broker, topic, [*text_events(40), b"not json"])
        await collect(broker, [f"{topic}.labelled"], 40, 60)
        await asyncio.sleep(2.5)  # at least one commit (every second) after the last ack
        after = _samples(_get(f"{base}/metrics")[1])
    finally:
        assert worker.stop() == 0, worker.log()

    def value(name: str, **labels: str) -> float:
        return after.get((name, tuple(sorted(labels.items()))), 0.0) - before.get(
            (name, tuple(sorted(labels.items()))), 0.0
        )

    assert value("streamclf_events_in_total", topic=topic) == 41
    assert value("streamclf_events_out_total", topic=topic, model="news") == 40
    assert value("streamclf_dead_letters_total", topic=topic, kind="decode") == 1
    assert value("streamclf_batch_size_count", model="news") >= 1
    assert value("streamclf_inference_seconds_count", model="news") >= 1
    # observed once per published batch (the latency of its oldest event), not per event
    assert value("streamclf_end_to_end_seconds_count", topic=topic) == value(
        "streamclf_batch_size_count", model="news"
    )
    ages = {
        labels: v
        for (name, labels), v in after.items()
        if name == "streamclf_oldest_uncommitted_age_seconds"
    }
    # all committed: nothing uncommitted has any age, on either partition
    assert ages == {(("partition", p), ("topic", topic)): 0.0 for p in ("0", "1")}, ages
    assert after[("streamclf_model_active", (("model", "news"), ("version", "v1")))] == 1
    # The engine `auto` chose (by measurement at load) is exported with its labels.
    engines = {
        dict(labels)["backend"] + " " + dict(labels)["precision"]: v
        for (name, labels), v in after.items()
        if name == "streamclf_engine" and dict(labels)["model"] == "news"
    }
    assert list(engines.values()) == [1.0], engines
    chosen = next(iter(engines))
    backend, precision = chosen.split()
    agreement = after[
        (
            "streamclf_engine_agreement",
            (("backend", backend), ("model", "news"), ("precision", precision)),
        )
    ]
    assert agreement >= 0.99
    assert "streamclf_engine_probe_texts_per_second" in {name for name, _ in after}
