"""First contact: one-line errors that say the fix, and `tail` as people use it (real broker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bus.settings import KafkaSettings
from tests.cli import ROOT, cli_env, one_line_error, streamclf
from tests.conftest import free_port
from tests.integration.harness import make_topics, produce, text_events

pytestmark = pytest.mark.integration


def _worker(broker: str, store: Path, route: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return streamclf("worker", "-b", broker, "--store", str(store), "--route", route, *extra)


def test_worker_without_a_broker(tiny_store: Path) -> None:
    proc = _worker(f"127.0.0.1:{free_port()}", tiny_store, "in=news")
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert "no Kafka broker answers" in line and "streamclf stack up" in line


async def test_worker_with_a_missing_input_topic(
    broker: KafkaSettings, tiny_store: Path, uid: str
) -> None:
    proc = _worker(broker.bootstrap_servers, tiny_store, f"absent.{uid}=news")
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert f"topic absent.{uid} does not exist" in line
    assert f"streamclf topics create absent.{uid}" in line


async def test_worker_with_a_missing_model(broker: KafkaSettings, tmp_path: Path, uid: str) -> None:
    await make_topics(broker, [f"in.{uid}"], 1)
    proc = _worker(broker.bootstrap_servers, tmp_path, f"in.{uid}=ghost")
    assert proc.returncode == 2
    assert "streamclf models init ghost" in one_line_error(proc)


def test_worker_with_an_unreachable_redis(tiny_store: Path) -> None:
    url = f"redis://:secret@127.0.0.1:{free_port()}/0"
    proc = _worker("127.0.0.1:1", tiny_store, "in=news", "--redis-url", url)
    assert proc.returncode == 3
    line = one_line_error(proc)
    assert "does not answer" in line and "STREAMCLF_REDIS_URL" in line
    assert "secret" not in line


def test_tail_or_produce_of_a_missing_topic(broker: KafkaSettings, uid: str) -> None:
    proc = streamclf("tail", f"absent.{uid}", "-b", broker.bootstrap_servers)
    assert proc.returncode == 3
    assert f"streamclf topics create absent.{uid}" in one_line_error(proc)
    file = ROOT / "README.md"  # any text file: it must not be sent
    proc = streamclf("produce", f"absent.{uid}", "-f", str(file), "-b", broker.bootstrap_servers)
    assert proc.returncode == 3
    assert f"streamclf topics create absent.{uid}" in one_line_error(proc)
    proc = streamclf("tail", f"absent.{uid}", "-b", broker.bootstrap_servers)
    assert proc.returncode == 3, "produce created the topic"


@pytest.mark.parametrize("events", [1, 2000])  # nothing more to write, or far more than fits
async def test_tail_into_a_closed_pipe_exits_quietly(
    broker: KafkaSettings, uid: str, events: int
) -> None:
    topic = f"tail.{uid}"
    await make_topics(broker, [topic], 1)
    await produce(broker, topic, text_events(events, "p"))
    tail = f"{sys.executable} -m admin.cli tail {topic} -b {broker.bootstrap_servers} --follow"
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {tail} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,  # a following tail must notice the closed pipe, not wait for an event
        env=cli_env(),
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["id"] == "p0"
    assert proc.stderr == ""


async def test_tail_group_and_from_end(broker: KafkaSettings, uid: str) -> None:
    topic, group = f"tail.{uid}", f"g.{uid}"
    await make_topics(broker, [topic], 1)
    await produce(broker, topic, text_events(5, "a"))
    b = ["-b", broker.bootstrap_servers, "--timeout", "2"]
    quick = {
        "STREAMCLF_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "STREAMCLF_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
    }
    first = streamclf("tail", topic, "--group", group, "--max", "2", *b, **quick)
    rest = streamclf("tail", topic, "--group", group, *b, **quick)
    assert [json.loads(x)["id"] for x in first.stdout.splitlines()] == ["a0", "a1"]
    assert [json.loads(x)["id"] for x in rest.stdout.splitlines()] == ["a2", "a3", "a4"]
    assert streamclf("tail", topic, "--from-end", *b).stdout == ""
