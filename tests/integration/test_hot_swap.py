"""Hot swap through the admin CLI, against real worker processes, a real broker and tiny models."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from admin.cli import app
from bus.clients import make_producer
from bus.control import publish_control, read_status
from bus.settings import KafkaSettings
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import WEIGHTS_FILE, ModelStore
from schemas.control import SwapModel
from schemas.status import WorkerStatus
from tests.integration.harness import (
    STREAMCLF,
    WorkerProcess,
    collect,
    make_topics,
    produce,
    text_events,
)

pytestmark = pytest.mark.integration


# -- helpers -------------------------------------------------------------------------------
def make_store(tiny_store: Path, root: Path) -> Path:
    """A private copy of the tiny store with `news` v1 active and a second version v2."""
    shutil.copytree(tiny_store, root)
    store = ModelStore(root)
    store.set_active("news", "v1")
    assert init_model(store, "news", PRESET_LABELS["chinanews"], "tiny-random", seed=7) == "v2"
    return root


def corrupt(weights: Path) -> None:
    """Overwrite a stretch in the middle of a safetensors file (header intact)."""
    data = bytearray(weights.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4096] = os.urandom(4096)
    weights.write_bytes(bytes(data))


def topics_env(uid: str, key: str | None = None) -> dict[str, str]:
    env = {
        "STREAMCLF_CONTROL_TOPIC": f"control-{uid}",
        "STREAMCLF_STATUS_TOPIC": f"status-{uid}",
        "STREAMCLF_STATUS_INTERVAL_S": "1",
        "STREAMCLF_MAX_BATCH": "64",
    }
    if key:
        env["STREAMCLF_CONTROL_KEY"] = key
    return env


async def cli(broker: KafkaSettings, env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run `streamclf ARGS` as a subprocess; (exit code, stdout, stderr)."""
    full_env = {**os.environ, "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, **env}
    if "STREAMCLF_CONTROL_KEY" not in env:
        full_env.pop("STREAMCLF_CONTROL_KEY", None)
    proc = await asyncio.create_subprocess_exec(
        STREAMCLF,
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def statuses(
    broker: KafkaSettings, uid: str, window_s: float = 3.0
) -> dict[str, WorkerStatus]:
    since = int((time.time() - window_s) * 1000)
    return await read_status(broker, since, f"status-{uid}")


async def wait_workers(
    broker: KafkaSettings,
    uid: str,
    workers: list[WorkerProcess],
    check: Any = None,
    timeout_s: float = 60.0,
) -> dict[str, WorkerStatus]:
    """Until every worker heartbeats ready (and `check(statuses)` holds)."""
    ids = {w.worker_id for w in workers}
    deadline = time.monotonic() + timeout_s
    latest: dict[str, WorkerStatus] = {}
    while time.monotonic() < deadline:
        for w in workers:
            assert w.alive(), f"worker {w.worker_id} exited:\n{w.log()}"
        latest = await statuses(broker, uid)
        ready = ids <= set(latest) and all(latest[i].ready for i in ids)
        if ready and (check is None or check(latest)):
            return latest
        await asyncio.sleep(0.5)
    logs = "\n".join(w.log() for w in workers)
    raise AssertionError(f"workers not ready in {timeout_s}s: {latest}\n{logs}")


def all_partitions_assigned(n: int) -> Any:
    def check(latest: dict[str, WorkerStatus]) -> bool:
        owned = [set(s.lag) for s in latest.values()]
        return all(owned) and len(set().union(*owned)) == n and sum(map(len, owned)) == n

    return check


class PacedProducer:
    """Produces `events` in chunks with a pause between them; `sent` counts acknowledged ones."""

    def __init__(self, broker: KafkaSettings, topic: str, events: list[bytes]) -> None:
        self.broker, self.topic, self.events = broker, topic, events
        self.sent = 0

    async def run(self, until: int, chunk: int, pause_s: float, stop: Any = None) -> None:
        """Send up to event `until` (or until `stop()` is true)."""
        producer = make_producer(self.broker)
        await producer.start()
        try:
            while self.sent < until and not (stop and stop()):
                part = range(self.sent, min(until, self.sent + chunk))
                futures = [
                    await producer.send(self.topic, self.events[i], key=str(i).encode())
                    for i in part
                ]
                await asyncio.gather(*futures)
                self.sent = part[-1] + 1
                await asyncio.sleep(pause_s)
        finally:
            await producer.stop()


async def first_message(broker: KafkaSettings, topic: str) -> None:
    """Returns once `topic` (partition 0) holds a message."""
    from bus.clients import make_consumer
    from bus.types import TopicPartition

    consumer = make_consumer(broker)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        while not consumer.partitions_for_topic(topic):
            await asyncio.sleep(0.2)
            await consumer._client.force_metadata_update()
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while not (await consumer.getmany(tp, timeout_ms=200)).get(tp):
            pass
    finally:
        await consumer.stop()


def stop_all(workers: list[WorkerProcess]) -> None:
    for w in workers:
        if w.proc is not None:
            assert w.stop() == 0, w.log()


# -- tests ---------------------------------------------------------------------------------
async def test_swap_during_a_10000_event_stream_on_4_partitions_with_2_workers(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")
    topic, env, n = f"news-{uid}", topics_env(uid), 10_000
    await make_topics(broker, [topic], 4)
    workers = [
        WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, w, env=env).start()
        for w in ("w1", "w2")
    ]
    stream = PacedProducer(broker, topic, text_events(n))
    try:
        await wait_workers(broker, uid, workers, all_partitions_assigned(4))
        # 2,000 events; then the swap command while the stream goes on: until the command
        # is on the control topic, 1,500 more while the workers load and switch, and the rest
        # once --wait has returned (at least 1,000: all of them must be classified by v2).
        await stream.run(2000, 250, 0.1)
        published = asyncio.create_task(first_message(broker, f"control-{uid}"))
        swap = asyncio.create_task(cli(
            broker, env, "models", "swap", "news", "v2", "--store", str(store),
            "--wait", "--timeout", "60", "--json",
        ))  # fmt: skip
        await stream.run(n - 2500, 25, 0.1, published.done)
        published_at = stream.sent
        await stream.run(published_at + 1500, 25, 0.1, swap.done)
        code, out, err = await swap
        confirmed_at = stream.sent
        await stream.run(n, 250, 0.05)
        outputs = await collect(broker, [f"{topic}.labelled"], n, timeout_s=60, quiet_s=2)
        after = await statuses(broker, uid)
    finally:
        stop_all(workers)
    assert code == 0, f"swap --wait exited {code}: {out}\n{err}"
    report = json.loads(out)
    assert report["wait"]["state"] == "ok"
    assert {w["worker_id"] for w in report["wait"]["workers"]} == {"w1", "w2"}
    swap_s = [w["swap_s"] for w in report["wait"]["workers"]]
    assert all(s is not None and s > 0 for s in swap_s), report
    print(
        f"\nswap time per worker (tiny model): {swap_s} s; --wait took {report['wait']['waited_s']} s"
    )
    assert {s.versions["news"] for s in after.values()} == {"v2"}

    ids = Counter(o["id"] for o in outputs)
    assert set(ids) == {f"e{i}" for i in range(n)}, f"missing {n - len(ids)}"
    assert max(ids.values()) == 1, "an event was classified twice"
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in outputs:
        by_partition[o["source_partition"]].append(o)
    for partition, items in sorted(by_partition.items()):
        versions = [o["version"] for o in sorted(items, key=lambda o: o["source_offset"])]
        changes = [(a, b) for a, b in itertools.pairwise(versions) if a != b]
        assert changes in ([], [("v1", "v2")]), f"partition {partition}: {changes}"
        assert versions[-1] == "v2", f"partition {partition} never switched"
    late = [o for o in outputs if int(o["id"][1:]) >= confirmed_at]
    assert late and {o["version"] for o in late} == {"v2"}, "v1 answered after --wait returned"
    during = Counter(
        o["version"] for o in outputs if published_at <= int(o["id"][1:]) < confirmed_at
    )
    print(f"swap published after event {published_at}, --wait returned after {confirmed_at}; "
          f"versions of the events sent in between: {dict(during)}")  # fmt: skip
    assert Counter(o["version"] for o in outputs)["v1"] > 0


async def test_swap_to_corrupted_weights_keeps_serving_and_names_the_workers(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    """The admin's copy of v2 is fine; the workers' copy is corrupted (a bad volume)."""
    admin_store = make_store(tiny_store, tmp_path / "admin-store")
    worker_store = tmp_path / "worker-store"
    shutil.copytree(admin_store, worker_store)
    corrupt(worker_store / "news" / "v2" / WEIGHTS_FILE)
    topic, env = f"news-{uid}", topics_env(uid)
    await make_topics(broker, [topic], 2)
    workers = [
        WorkerProcess(broker, worker_store, [f"{topic}=news"], f"g-{uid}", tmp_path, w, env=env)
        for w in ("w1", "w2")
    ]
    try:
        for w in workers:
            w.start()
        await wait_workers(broker, uid, workers)
        await produce(broker, topic, text_events(200, "a"))
        code, out, err = await cli(
            broker, env, "models", "swap", "news", "v2", "--store", str(admin_store),
            "--wait", "--timeout", "60",
        )  # fmt: skip
        await produce(broker, topic, text_events(200, "b"))
        outputs = await collect(broker, [f"{topic}.labelled"], 400, timeout_s=60, quiet_s=1)
        st_code, st_out, st_err = await cli(broker, env, "status", "--json")
    finally:
        stop_all(workers)
    assert code == 1, f"swap --wait exited {code}: {out}\n{err}"
    text = out + err
    assert "w1" in text and "w2" in text and "does not match" in text, text
    assert len({o["id"] for o in outputs}) == 400
    assert {o["version"] for o in outputs} == {"v1"}, "workers stopped serving v1"
    assert st_code == 0, st_out + st_err
    rows = {r["worker_id"]: r for r in json.loads(st_out)}
    assert set(rows) == {"w1", "w2"}
    for row in rows.values():
        assert row["state"] == "ready" and row["versions"] == {"news": "v1"}
        assert row["last_swap"]["ok"] is False and "IntegrityError" in row["last_swap"]["error"]


async def test_late_worker_serves_swapped_version_rollback_and_unsigned_commands(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")
    key = f"key-{uid}"
    topic, env = f"news-{uid}", topics_env(uid, key)
    await make_topics(broker, [topic], 2)
    w1 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1", env=env)
    w2 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w2", env=env)
    try:
        w1.start()
        await wait_workers(broker, uid, [w1])
        swap = await cli(broker, env, "models", "swap", "news", "v2", "--store", str(store),
                         "--wait", "--timeout", "40", "--json")  # fmt: skip
        assert swap[0] == 0, swap

        # A worker started after the swap serves the swapped version, not the store's newest.
        w2.start()
        late = await wait_workers(broker, uid, [w1, w2])
        assert late["w2"].versions == {"news": "v2"}
        await produce(broker, topic, text_events(100, "late"))
        outputs = await collect(broker, [f"{topic}.labelled"], 100, timeout_s=40)
        assert {o["version"] for o in outputs} == {"v2"}

        # Rollback: back to v1 everywhere, and the store's pointer follows.
        back = await cli(broker, env, "models", "rollback", "news", "--store", str(store),
                         "--wait", "--timeout", "40", "--json")  # fmt: skip
        assert back[0] == 0, back
        assert json.loads(back[1])["version"] == "v1"
        assert ModelStore(store).active("news") == "v1"

        # Unsigned and badly signed commands are ignored and reported.
        now = int(time.time() * 1000)
        command = SwapModel(model="news", version="v2", sha256="0" * 64, requested_at_ms=now)
        await publish_control(broker, command, None, f"control-{uid}")
        await publish_control(broker, command, "wrong-key", f"control-{uid}")
        await asyncio.sleep(3)
        final = await wait_workers(broker, uid, [w1, w2], lambda s: all(
            x.rejected_control >= 2 for x in s.values()))  # fmt: skip
    finally:
        stop_all([w1, w2])
    for status in final.values():
        assert status.versions == {"news": "v1"}
        assert status.last_error and "signed" in status.last_error
        engine = status.engines["news"]  # what `auto` chose for v1, measured or cached
        assert engine.backend in ("torch", "onnx") and engine.mode == "auto"
        assert engine.agreement is None or engine.agreement >= 0.99


def test_swap_refuses_before_publishing_and_delete_refuses_the_active_version(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")
    init_model(ModelStore(store), "news", PRESET_LABELS["chinanews"], "tiny-random", seed=9)  # v3
    corrupt(store / "news" / "v3" / WEIGHTS_FILE)
    runner = CliRunner()
    env = {**topics_env(uid), "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}

    def invoke(*args: str) -> Any:
        result = runner.invoke(app, list(args), env=env)
        result.text = " ".join(result.output.split())  # rich wraps long lines
        return result

    unknown = invoke("models", "swap", "news", "v9", "--store", str(store))
    assert unknown.exit_code == 2 and "known: v1, v2, v3" in unknown.text, unknown.output
    bad_name = invoke("models", "swap", "news", "../v1", "--store", str(store))
    assert bad_name.exit_code == 2, bad_name.output
    corrupted = invoke("models", "swap", "news", "v3", "--store", str(store))
    assert corrupted.exit_code == 1 and "nothing published" in corrupted.text, corrupted.output
    (store / "news" / "v2" / WEIGHTS_FILE).unlink()
    missing = invoke("models", "swap", "news", "v2", "--store", str(store))
    assert missing.exit_code == 1 and "safetensors" in missing.text, missing.output
    assert ModelStore(store).active("news") == "v1"
    no_rollback = invoke("models", "rollback", "news", "--store", str(store))
    assert no_rollback.exit_code == 1, no_rollback.output
    # Nothing reached the control topic.
    assert asyncio.run(_control_messages(broker, f"control-{uid}")) == 0

    active = invoke("models", "delete", "news", "v1", "--yes", "--store", str(store))
    assert active.exit_code == 1 and "active" in active.text, active.output
    gone = invoke("models", "delete", "news", "v3", "--yes", "--store", str(store), "--json")
    assert gone.exit_code == 0, gone.output
    assert ModelStore(store).versions("news") == ["v1", "v2"]
    unknown_delete = invoke("models", "delete", "news", "v3", "--yes", "--store", str(store))
    assert unknown_delete.exit_code == 2, unknown_delete.output
    nobody = invoke("status", "--json")
    assert nobody.exit_code == 3 and json.loads(nobody.stdout) == [], nobody.output


async def _control_messages(broker: KafkaSettings, topic: str) -> int:
    from bus.topics import list_topics

    if topic not in await list_topics(broker):
        return 0
    from bus.topics import high_water_marks

    return sum(i.high_water for i in await high_water_marks(broker, topic))
