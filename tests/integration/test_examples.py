"""examples/ against the embedded broker and a real worker: kafka-python in, kafka-python and
faust-streaming out, repeats dropped by id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from bus.producing import produce_many
from bus.settings import KafkaSettings
from modelstore.labels import PRESET_LABELS
from tests.integration.harness import WorkerProcess, collect, make_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TEXTS = ["北京上个月召开了两会", "国足世预赛客场两球不敌对手", "央行宣布下调存款准备金率"] * 4


def examples_python() -> str:
    """The interpreter of examples/ (`make examples-env`): kafka-python and faust-streaming,
    nothing of streamclf."""
    default = ROOT / ".venv-examples" / "bin" / "python"
    python = os.environ.get("STREAMCLF_EXAMPLES_PYTHON") or (
        str(default) if default.exists() else sys.executable
    )
    if os.sep in python:  # a path relative to where pytest started, used from other cwds
        python = str(Path(python).absolute())
    probe = subprocess.run([python, "-c", "import kafka, faust"], capture_output=True)
    if probe.returncode != 0:
        reason = f"{python} lacks kafka-python/faust-streaming: run `make examples-env`"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI builds the environment: a missing one is a failure
        pytest.skip(reason)
    return python


def _example(
    name: str, *args: str, cwd: Path, env: dict[str, str] | None = None, timeout_s: float = 120
):
    return subprocess.run(
        [examples_python(), str(EXAMPLES / name), *args],
        capture_output=True, text=True, timeout=timeout_s, cwd=cwd, env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def labelled(
    broker: KafkaSettings, tiny_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[dict]]:
    """TEXTS sent by the kafka-python producer, classified by a worker; 4 repeats added."""
    uid, tmp_path = uuid.uuid4().hex[:10], tmp_path_factory.mktemp("examples")
    topic = f"ex.{uid}"
    asyncio_run(make_topics(broker, [topic], 2))
    proc = _example(
        "kafka_python_producer.py", "--bootstrap", broker.bootstrap_servers, "--topic", topic,
        "--id-prefix", "x", *TEXTS, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert [line.split("\t")[0] for line in proc.stdout.splitlines()] == [
        f"x{i}" for i in range(12)
    ]
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path).start()
    try:
        out = asyncio_run(collect(broker, [f"{topic}.labelled"], len(TEXTS), 120))
    finally:
        worker.stop()
    assert sorted(o["id"] for o in out) == sorted(f"x{i}" for i in range(12)), worker.log()
    repeats = [
        (
            o["id"].encode(),
            json.dumps({k: v for k, v in o.items() if not k.startswith("_")}).encode(),
        )
        for o in out[:4]
    ]
    asyncio_run(produce_many(broker, f"{topic}.labelled", repeats))  # as after a worker crash
    return f"{topic}.labelled", out


def asyncio_run(coro):
    import asyncio

    return asyncio.run(coro)


def test_kafka_python_consumer_prints_each_id_once(
    broker: KafkaSettings, labelled: tuple[str, list[dict]], uid: str, tmp_path: Path
) -> None:
    topic, out = labelled
    proc = _example(
        "kafka_python_consumer.py", "--bootstrap", broker.bootstrap_servers, "--topic", topic,
        "--group", f"c-{uid}", "--idle-s", "4", "--session-timeout-ms", "6000",
        "--heartbeat-interval-ms", "1000", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(e["id"] for e in lines) == sorted(o["id"] for o in out)
    assert {e["label"] for e in lines} <= set(PRESET_LABELS["chinanews"])
    assert "12 events, 4 repeats dropped" in proc.stderr


def test_faust_app_decodes_labelled_events_into_records(
    broker: KafkaSettings, labelled: tuple[str, list[dict]], uid: str, tmp_path: Path
) -> None:
    topic, out = labelled
    env = {
        **os.environ,
        "STREAMCLF_EXAMPLE_BOOTSTRAP": broker.bootstrap_servers,
        "STREAMCLF_EXAMPLE_TOPIC": topic,
        "STREAMCLF_EXAMPLE_APP": f"faust-{uid}",
    }
    cmd = [
        examples_python(),
        str(EXAMPLES / "faust_labelled.py"),
        "worker",
        "--without-web",
        "-l",
        "warn",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path, env=env
    )
    seen: list[dict] = []
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        assert proc.stdout is not None
        while len(seen) < len(out) + 4 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if '{"id"' in line:
                seen.append(json.loads(line[line.index("{") :]))
    finally:
        proc.terminate()
        proc.wait(60)
    by_id = {o["id"]: o for o in out}
    assert len(seen) == len(out) + 4, "".join(
        lines[-30:]
    )  # faust sees the repeats too: ids make them harmless
    assert {e["id"] for e in seen} == set(by_id)
    for e in seen:
        assert (e["label"], e["version"]) == (by_id[e["id"]]["label"], by_id[e["id"]]["version"])
        assert e["score"] == pytest.approx(by_id[e["id"]]["scores"][0]["score"])
