"""`streamclf produce` and `streamclf tail` at their edges: a JSON line nested too deep, and a
topic that does not exist yet (real broker)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bus.settings import KafkaSettings
from schemas.decoding import MAX_DEPTH
from tests.cli import ROOT, cli_env, one_line_error, streamclf
from tests.integration.harness import make_topics, produce, text_events, wait_for

pytestmark = pytest.mark.integration


def _nested(depth: int) -> str:
    return '{"id": "deep", "text": "x", "metadata": ' + '{"a": ' * depth + "1" + "}" * depth + "}"


@pytest.mark.parametrize("depth", [MAX_DEPTH + 5, 5000])  # within orjson's limit, and beyond
async def test_produce_refuses_a_deeply_nested_line(
    broker: KafkaSettings, uid: str, tmp_path: Path, depth: int
) -> None:
    topic = f"deep.{uid}"
    await make_topics(broker, [topic], 1)
    lines = ["北京上个月召开了两会", json.dumps({"id": "ok", "text": "国足输球"}), _nested(depth)]
    file = tmp_path / "lines.txt"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    proc = streamclf("produce", topic, "-f", str(file), "-b", broker.bootstrap_servers)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc)
    assert "line 3" in line and f"deeper than {MAX_DEPTH} levels" in line, line
    shown = streamclf("tail", topic, "--timeout", "2", "-b", broker.bootstrap_servers)
    assert shown.returncode == 0 and shown.stdout == "", "nothing is produced from a bad file"
    # the same lines without the deep one go through
    file.write_text("\n".join(lines[:2]) + "\n", encoding="utf-8")
    proc = streamclf("produce", topic, "-f", str(file), "-b", broker.bootstrap_servers)
    assert proc.returncode == 0 and "produced 2 events" in proc.stdout, proc.stderr


async def test_tail_with_a_timeout_waits_for_a_topic_about_to_exist(
    broker: KafkaSettings, uid: str, tmp_path: Path
) -> None:
    topic = f"later.{uid}.labelled"
    err = tmp_path / "tail.err"
    cmd = [sys.executable, "-m", "admin.cli", "tail", topic, "--max", "5", "--timeout", "90"]
    with err.open("w") as err_file:
        tail = subprocess.Popen(
            [*cmd, "-b", broker.bootstrap_servers],
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
            env=cli_env(),
            cwd=ROOT,
        )
    try:
        wait_for(lambda: "waiting for topic" in err.read_text(), 60, "tail to say it waits")
        assert tail.poll() is None, err.read_text()
        await make_topics(broker, [topic], 2)
        await produce(broker, topic, text_events(5, "t"))
        out, _ = tail.communicate(timeout=120)
    finally:
        if tail.poll() is None:
            tail.kill()
            tail.wait()
    assert tail.returncode == 0, err.read_text()
    assert sorted(json.loads(line)["id"] for line in out.splitlines()) == [
        f"t{i}" for i in range(5)
    ]
    said = [line for line in err.read_text().splitlines() if line.strip()]
    assert said == [f"waiting for topic {topic} to exist, up to 90 s"], said


def test_tail_without_a_timeout_refuses_a_missing_topic_at_once(
    broker: KafkaSettings, uid: str
) -> None:
    proc = streamclf("tail", f"absent.{uid}", "-b", broker.bootstrap_servers, timeout_s=60)
    assert proc.returncode == 3
    line = one_line_error(proc)  # no "waiting" line either
    assert f"topic absent.{uid} does not exist" in line
