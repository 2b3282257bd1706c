"""Signed control commands cannot be replayed: an old signed swap never downgrades a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.rollout import read_to_end
from bus.settings import KafkaSettings
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.control import SwapModel
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import cli, make_store, stop_all, topics_env, wait_workers

pytestmark = pytest.mark.integration


async def control_records(broker: KafkaSettings, topic: str) -> list[tuple[bytes, bytes]]:
    """(key, value) of every record on the control topic, in order."""
    return [(r.key, r.value) for r in await read_to_end(broker, [topic])]


async def test_a_replayed_signed_swap_does_not_downgrade_running_or_restarted_workers(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")  # news: v1 active, v2
    assert init_model(ModelStore(store), "news", PRESET_LABELS["chinanews"], "tiny", 8) == "v3"
    key = f"key-{uid}"
    topic, env, control = f"news-{uid}", topics_env(uid, key), f"control-{uid}"
    await make_topics(broker, [topic], 2)
    w1 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1", env=env)
    w2 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w2", env=env)
    args = ("--store", str(store), "--wait", "--timeout", "40")
    try:
        w1.start()
        await wait_workers(broker, uid, [w1])
        assert (await cli(broker, env, "models", "swap", "news", "v2", *args))[0] == 0
        old_swap = (await control_records(broker, control))[-1]  # signed, names v2
        assert b'"v2"' in old_swap[1] and b'"signature"' in old_swap[1]
        assert (await cli(broker, env, "models", "swap", "news", "v3", *args))[0] == 0

        # Someone who recorded the signed v2 command publishes it again.
        await produce(broker, control, [old_swap[1]], [old_swap[0]])
        running = await wait_workers(
            broker, uid, [w1], lambda s: s["w1"].rejected_control >= 1, timeout_s=30
        )
        assert running["w1"].versions == {"news": "v3"}
        assert "stale swap" in (running["w1"].last_error or ""), running["w1"]

        # A restarted worker reads the whole topic: the replay is its last record, but the
        # command in force is the one with the highest sequence.
        stop_all([w1])
        w2.start()
        restarted = await wait_workers(broker, uid, [w2])
        await produce(broker, topic, text_events(50, "r"))
        outputs = await collect(broker, [f"{topic}.labelled"], 50, timeout_s=40)
    finally:
        stop_all([w1, w2])
    assert restarted["w2"].versions == {"news": "v3"}
    assert restarted["w2"].control_signed is True
    assert {o["version"] for o in outputs} == {"v3"}


async def test_commands_carry_an_increasing_signed_sequence(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    from schemas.records import decode_control

    store = make_store(tiny_store, tmp_path / "store")
    env = topics_env(uid, f"key-{uid}")
    for version in ("v2", "v1", "v2"):
        code, out, err = await cli(broker, env, "models", "swap", "news", version,
                                   "--store", str(store))  # fmt: skip
        assert code == 0, out + err
    commands = [decode_control(v) for _, v in await control_records(broker, f"control-{uid}")]
    sequences = [c.sequence for c in commands if isinstance(c, SwapModel)]
    assert len(sequences) == 3 and sequences == sorted(set(sequences)), sequences
    assert ModelStore(store).active_record("news").sequence == sequences[-1]
    tampered = commands[0].model_copy(update={"sequence": sequences[-1] + 1})
    assert not tampered.verify(f"key-{uid}"), "the signature must cover the sequence"


async def test_the_cli_warns_loudly_about_workers_without_a_control_key(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    import json

    store = make_store(tiny_store, tmp_path / "store")
    topic, route = f"news-{uid}", [f"news-{uid}=news"]
    await make_topics(broker, [topic], 2)
    signed = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "signed",
                           env=topics_env(uid, f"key-{uid}-0123456789"))  # fmt: skip
    unsigned = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "unsigned",
                             env=topics_env(uid))  # fmt: skip
    try:
        signed.start()
        unsigned.start()
        await wait_workers(broker, uid, [signed, unsigned])
        code, out, err = await cli(broker, topics_env(uid), "status", "--json")
        swap = await cli(broker, topics_env(uid), "models", "swap", "news", "v2",
                         "--store", str(store))  # fmt: skip
    finally:
        stop_all([signed, unsigned])
    assert code == 0, out + err
    rows = {r["worker_id"]: r["control_signed"] for r in json.loads(out)}
    assert rows == {"signed": True, "unsigned": False}
    warning = " ".join(err.split())
    assert "WARNING: 1 live worker(s) run WITHOUT a control key" in warning, err
    assert "UNSIGNED control commands: unsigned." in warning, err
    assert swap[0] == 0 and "WARNING: this command is UNSIGNED" in " ".join(swap[2].split())
    assert "NO CONTROL KEY" in unsigned.log() and "NO CONTROL KEY" not in signed.log()
