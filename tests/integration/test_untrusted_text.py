"""Untrusted strings are text: what the CLI reads from topics and files is shown literally,
`--json` never depends on rendering, `status` fits 80 columns, and a heartbeat from the future
neither revives a dead worker nor hides it (issue 17 item 3, issue 19 item 3)."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from bus.control import read_status
from modelstore.presets import init_model
from modelstore.store import CARD_FILE, ModelStore
from schemas.deadletter import DeadLetter, ErrorKind
from schemas.rollout import ShadowResult
from schemas.status import WorkerStatus
from tests.cli import one_line_error, streamclf
from tests.integration.harness import WorkerProcess, make_topics, produce

pytestmark = pytest.mark.integration

TEN_YEARS_MS = 10 * 365 * 86400 * 1000


def now_ms() -> int:
    return int(time.time() * 1000)


async def publish_heartbeats(broker, topic: str, statuses: list[WorkerStatus]) -> None:
    await produce(
        broker,
        topic,
        [s.model_dump_json().encode() for s in statuses],
        [s.worker_id.encode() for s in statuses],
    )


def status_cli(broker, topic: str, *args: str, columns: int = 200) -> Any:
    return streamclf(
        "status", "--status-topic", topic, "-b", broker.bootstrap_servers, *args,
        COLUMNS=str(columns),
    )  # fmt: skip


def assert_fits(stdout: str, columns: int = 80) -> None:
    long = [line for line in stdout.splitlines() if len(line) > columns]
    assert not long, "\n".join(long)
    assert "…" not in stdout, stdout


async def test_a_heartbeat_with_markup_breaks_no_status_output(broker, uid: str) -> None:
    topic = f"status-{uid}"
    await make_topics(broker, [topic], 1)
    evil = WorkerStatus(
        worker_id="[/]evil", host="[bold]h", pid=7, at_ms=now_ms(), ready=True,
        versions={"news": "[/]v1"}, last_error="[/]boom \x1b[2J", control_signed=False,
    )  # fmt: skip
    await publish_heartbeats(broker, topic, [evil])

    table = status_cli(broker, topic, "--stale-after", "300")
    assert table.returncode == 0, table.stdout + table.stderr
    assert "[/]evil" in table.stdout and "news@[/]v1" in table.stdout, table.stdout
    assert "[/]boom \\x1b[2J" in table.stdout, table.stdout  # the escape made visible
    assert "\x1b" not in table.stdout + table.stderr
    assert "UNSIGNED control commands: [/]evil." in " ".join(table.stderr.split()), table.stderr

    as_json = status_cli(broker, topic, "--stale-after", "300", "--json")
    assert as_json.returncode == 0, as_json.stderr
    [row] = json.loads(as_json.stdout)
    assert (row["worker_id"], row["host"], row["state"]) == ("[/]evil", "[bold]h", "ready")
    assert row["last_error"] == "[/]boom \x1b[2J"  # JSON keeps the value exactly

    wide = status_cli(broker, topic, "--stale-after", "300", "--wide", columns=80)
    assert wide.returncode == 0, wide.stdout + wide.stderr
    assert "[bold]h:7" in wide.stdout and "[/]boom \\x1b[2J" in wide.stdout, wide.stdout


async def test_status_fits_80_columns_with_key_fields_whole(broker, uid: str) -> None:
    topic = f"status-{uid}"
    await make_topics(broker, [topic], 1)
    ids = ["vm-31337", "streamclf-worker-0-12345", "node-7.example.org-4242"]
    beats = [
        WorkerStatus(
            worker_id=worker_id,
            host="node-7.example.org",
            pid=4242,
            at_ms=now_ms(),
            ready=True,
            routes={"news-in": "news", "reviews-in": "sentiment"},
            versions={"news": "v12", "sentiment": "v3"},
            lag={"news-in[0]": 12345},
            events_in=1_234_567,
            events_out=1_234_500,
            dead_letters=67,
            events_per_s=812.5,
            cache_hit_ratio=0.42,
            cache_state="redis",
            control_signed=True,
        )
        for worker_id in ids
    ]
    await publish_heartbeats(broker, topic, beats)
    shown = status_cli(broker, topic, "--stale-after", "300", columns=80)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert_fits(shown.stdout)
    for worker_id in ids:
        assert worker_id in shown.stdout, shown.stdout
    assert shown.stdout.count("ready") == 3, shown.stdout
    assert shown.stdout.count("news@v12") == 3 and shown.stdout.count("sentiment@v3") == 3
    wide = status_cli(broker, topic, "--stale-after", "300", "--wide", columns=80)
    assert wide.returncode == 0 and "…" not in wide.stdout, wide.stdout
    assert "1234567/1234500/67" in wide.stdout and "42% redis" in wide.stdout, wide.stdout


async def test_a_heartbeat_from_the_future_neither_revives_nor_hides_a_killed_worker(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    shutil.copytree(tiny_store, store)
    topic, status_topic, worker_id = f"news-{uid}", f"status-{uid}", f"w-{uid}"
    await make_topics(broker, [topic], 1)
    env = {"STREAMCLF_STATUS_TOPIC": status_topic, "STREAMCLF_CONTROL_TOPIC": f"control-{uid}"}
    worker = WorkerProcess(
        broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, worker_id, env=env
    ).start()
    try:
        real = await ready_heartbeat(broker, status_topic, worker, timeout_s=120)
        shown = status_cli(broker, status_topic, "--stale-after", "60", columns=80)
        worker.kill()
    finally:
        if worker.alive():
            worker.kill()
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert_fits(shown.stdout)
    assert worker_id in shown.stdout and "ready" in shown.stdout and "news@v1" in shown.stdout

    forged = real.model_copy(update={"at_ms": now_ms() + TEN_YEARS_MS, "ready": True})
    await publish_heartbeats(broker, status_topic, [forged])
    deadline = time.monotonic() + 90
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:  # until the real heartbeat is older than --stale-after
        proc = status_cli(broker, status_topic, "--stale-after", "3", "--json")
        rows = [r for r in json.loads(proc.stdout) if r["worker_id"] == worker_id]
        if any(r["state"] == "stale" for r in rows):
            break
        time.sleep(1)
    assert sorted(r["state"] for r in rows) == ["clock-skew", "stale"], rows
    assert proc.returncode == 3, proc.stderr  # no live worker
    ahead = next(r for r in rows if r["state"] == "clock-skew")
    assert ahead["age_s"] < -TEN_YEARS_MS / 1000 + 3600, ahead
    table = status_cli(broker, status_topic, "--stale-after", "3", columns=80)
    assert table.returncode == 3 and "clock-skew" in table.stdout and "stale" in table.stdout
    assert "ready" not in table.stdout, table.stdout


async def ready_heartbeat(
    broker, topic: str, worker: WorkerProcess, timeout_s: float
) -> WorkerStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.alive(), worker.log()
        latest = await read_status(broker, now_ms() - 10_000, topic)
        status = latest.get(worker.worker_id)
        if status is not None and status.ready:
            return status
        await asyncio.sleep(0.5)
    raise AssertionError(f"worker not ready in {timeout_s}s:\n{worker.log()}")


async def test_dlq_inspect_shows_markup_in_dead_letters_literally(broker, uid: str) -> None:
    dlq = f"in-{uid}.dlq"
    await make_topics(broker, [dlq], 1)
    letter = DeadLetter(
        kind=ErrorKind.DECODE, message="[/]evil \x1b[2J", source_topic="in", source_partition=0,
        source_offset=3, key_b64=DeadLetter.encode_bytes(b"[/]k"),
        value_b64=DeadLetter.encode_bytes(b"[/]value [bold]x"),
    )  # fmt: skip
    await produce(broker, dlq, [letter.model_dump_json().encode()], [b"[/]k"])
    shown = streamclf("dlq", "inspect", dlq, "-b", broker.bootstrap_servers)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "[/]evil \\x1b[2J" in shown.stdout and "[/]value [bold]x" in shown.stdout
    assert "\x1b" not in shown.stdout and "decode: 1" in shown.stdout
    as_json = streamclf("dlq", "inspect", dlq, "--json", "-b", broker.bootstrap_servers)
    assert json.loads(as_json.stdout)[0]["message"] == "[/]evil \x1b[2J"


async def test_models_compare_shows_markup_in_label_names_literally(broker, uid: str) -> None:
    shadow = f"in-{uid}.shadow"
    await make_topics(broker, [shadow], 1)
    results = [
        ShadowResult(
            id=f"e{i}", model="news", active_version="v1", candidate_version="v2",
            active_label="[/]a", active_label_id=0, active_score=0.9,
            candidate_label="[bold]b" if i % 2 else "[/]a", candidate_label_id=i % 2,
            candidate_score=0.8, agree=not i % 2, active_ms=2.0, active_batch=1,
            candidate_ms=3.0, candidate_batch=1, source_topic=f"in-{uid}", source_partition=0,
            source_offset=i, worker_id="w1", at_ms=now_ms(),
        ).model_dump_json().encode()
        for i in range(4)
    ]  # fmt: skip
    await produce(broker, shadow, results)
    args = ("models", "compare", "news", "v2", "--topic", shadow, "-b", broker.bootstrap_servers)
    shown = streamclf(*args)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "[/]a" in shown.stdout and "[bold]b" in shown.stdout, shown.stdout
    assert "agreement 50.00%" in shown.stdout
    report = json.loads(streamclf(*args, "--json").stdout)
    assert report["confusion"] == {"[/]a": {"[/]a": 2, "[bold]b": 2}}


def test_models_list_and_predict_show_markup_from_store_files_literally(
    tiny_store: Path, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    shutil.copytree(tiny_store, root)
    card_path = ModelStore(root).version_dir("news", "v1") / CARD_FILE
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card_path.write_text(
        json.dumps(card | {"parent": "[/]evil", "source": "[bold]x\x1b[2J"}), encoding="utf-8"
    )
    listed = streamclf("models", "list", "--store", str(root))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "[/]evil" in listed.stdout and "[bold]x\\x1b[2J" in listed.stdout, listed.stdout
    assert "\x1b" not in listed.stdout
    as_json = json.loads(streamclf("models", "list", "--store", str(root), "--json").stdout)
    assert {r["parent"] for r in as_json if r["model"] == "news"} >= {"[/]evil"}

    init_model(ModelStore(root), "marked", ["[/]neg", "[bold]pos"], "tiny", seed=3)
    predicted = streamclf("predict", "marked", "这家酒店的服务非常好", "--store", str(root))
    assert predicted.returncode == 0, predicted.stdout + predicted.stderr
    assert "[/]neg" in predicted.stdout and "[bold]pos" in predicted.stdout, predicted.stdout


def test_an_error_quoting_markup_is_one_literal_line(tmp_path: Path) -> None:
    proc = streamclf("models", "show", "[/]x\x1b[2J", "--store", str(tmp_path))
    assert proc.returncode == 1
    assert "invalid model name '[/]x\\x1b[2J'" in one_line_error(proc)
