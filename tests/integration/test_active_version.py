"""Only promoted versions serve: a stored but unpromoted version, or one the gate refused,
never goes live through a restart or a scale-out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from admin.cli import app
from modelstore.presets import init_model
from modelstore.store import ModelStore
from tests.fixtures.trainer_data import LABELS, make_rows
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import stop_all, topics_env, wait_workers

pytestmark = pytest.mark.integration
FAST = ["--epochs", "1", "--seq-len", "32", "--batch-size", "8", "--warmup", "0", "--seed", "1",
        "--lr", "5e-3"]  # fmt: skip


def one_label_tsv(path: Path, label: int, n: int, seed: int) -> Path:
    """Rows that all carry `label`: a tiny model trained on them always answers it, so on a
    dev set of negatives one trained on negatives scores 1.0 and one on positives 0.0."""
    rows = [f"{label}\t{text}" for _, text in make_rows(n, seed)]
    path.write_text("label\ttext_a\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def models_list(invoke: Any, store: Path) -> tuple[str, list[dict[str, Any]]]:
    table = invoke("models", "list", "sent", "--store", str(store))
    rows = invoke("models", "list", "sent", "--store", str(store), "--json")
    assert table.exit_code == 0 and rows.exit_code == 0, table.output + rows.output
    return table.output, json.loads(rows.stdout)


async def test_unpromoted_and_gate_rejected_versions_never_serve_after_restart_or_scale_out(
    broker, uid: str, tmp_path: Path
) -> None:
    store = tmp_path / "store"
    base = ModelStore(tmp_path / "base")
    init_model(base, "b", LABELS, "tiny-random", seed=3)
    negatives = one_label_tsv(tmp_path / "neg.tsv", 0, 32, seed=1)
    positives = one_label_tsv(tmp_path / "pos.tsv", 1, 32, seed=2)
    dev = one_label_tsv(tmp_path / "dev.tsv", 0, 16, seed=3)
    env = {**topics_env(uid), "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    async def train(*args: str) -> Any:  # in a thread: the CLI runs its own event loop
        common = ["train", "--model", "sent", "--dev", str(dev), "--store", str(store)]
        return await asyncio.to_thread(invoke, *common, *FAST, *args)

    # v1: the model's first version, trained from a base checkpoint: active on creation.
    first = await train("--train", str(negatives), "--base", str(tmp_path / "base" / "b" / "v1"),
                        "--labels", ",".join(LABELS))  # fmt: skip
    assert first.exit_code == 0 and "dev accuracy 1.0000" in first.output, first.output
    assert ModelStore(store).active("sent") == "v1"

    topic = f"sent-{uid}"
    await make_topics(broker, [topic], 2)
    route = [f"{topic}=sent"]
    w1 = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "w1", env=env).start()
    restarted = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "w1b", env=env)
    added = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "w2", env=env)
    try:
        await wait_workers(broker, uid, [w1])
        # v2: trained and stored, never promoted. v3: asked to be promoted, refused by the gate.
        unpromoted = await train("--train", str(negatives))
        assert unpromoted.exit_code == 0 and "sent@v2" in unpromoted.output, unpromoted.output
        rejected = await train("--train", str(positives), "--promote")
        assert rejected.exit_code == 1 and "sent@v3" in rejected.output, rejected.output
        assert "dev accuracy 0.0000" in rejected.output, rejected.output
        assert ModelStore(store).versions("sent") == ["v1", "v2", "v3"]
        before_table, before = models_list(invoke, store)

        stop_all([w1])  # a restart, and a second worker: neither may pick up v2 or v3
        restarted.start()
        added.start()
        latest = await wait_workers(broker, uid, [restarted, added])
        await produce(broker, topic, text_events(40, "s"))
        outputs = await collect(broker, [f"{topic}.labelled"], 40, timeout_s=60, quiet_s=1)
        after_table, after = models_list(invoke, store)
    finally:
        stop_all([w1, restarted, added])
    print(f"\nstreamclf models list sent, before the restart:\n{before_table}")
    print(f"after the restart and scale-out:\n{after_table}")
    assert {w: s.versions for w, s in latest.items() if w in ("w1b", "w2")} == {
        "w1b": {"sent": "v1"},
        "w2": {"sent": "v1"},
    }
    assert len(outputs) == 40 and {o["version"] for o in outputs} == {"v1"}
    for rows in (before, after):
        assert [(r["version"], r["active"]) for r in rows] == [
            ("v1", True),
            ("v2", False),
            ("v3", False),
        ]
