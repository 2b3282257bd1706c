"""The trainer service against the real broker: jobs, malformed input, feedback rounds, swaps."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bus.producing import produce_many
from bus.reading import StopWhen, iter_records
from bus.settings import KafkaSettings
from bus.topics import create_topics
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.control import SwapModel
from schemas.training import TrainJob, TrainResult
from tests.fixtures.trainer_data import LABELS, make_rows, write_splits
from trainer.service import TrainerService
from trainer.settings import TrainerSettings

pytestmark = pytest.mark.integration
FAST = {"epochs": 1, "max_seq_len": 32, "batch_size": 8, "learning_rate": 1e-3, "warmup": 0.0}


async def send(broker: KafkaSettings, topic: str, values: list[bytes]) -> None:
    await produce_many(broker, topic, [(None, value) for value in values])


async def read_until(
    broker: KafkaSettings, topic: str, done: Callable[[list[dict]], bool], timeout_s: float = 120
) -> list[dict]:
    """JSON values of `topic` from the start until `done(values)` or the timeout."""
    values: list[dict] = []
    stop = StopWhen(quiet_s=None, timeout_s=timeout_s)
    reader = iter_records(broker, [topic], stop=stop, wait_for_topics_s=timeout_s)
    async with contextlib.aclosing(reader):
        async for record in reader:
            values.append(json.loads(record.value or b"null"))
            if done(values):
                return values
    raise AssertionError(f"timed out; got {values}")


def finished(values: list[dict], job_id: str) -> dict | None:
    final = ("succeeded", "failed", "rejected", "invalid")
    return next((v for v in values if v["job_id"] == job_id and v["status"] in final), None)


async def test_service_jobs_feedback_and_swap(broker: KafkaSettings, uid: str, tmp_path: Path):
    store = ModelStore(tmp_path / "store")
    init_model(store, "sent", LABELS, "tiny-random", seed=0)
    splits = write_splits(tmp_path / "data", train=32, dev=16)
    settings = TrainerSettings(
        jobs_topic=f"jobs-{uid}",
        results_topic=f"results-{uid}",
        feedback_topic=f"feedback-{uid}",
        control_topic=f"control-{uid}",
        group_id=f"trainer-{uid}",
        model_store=store.root,
        data_root=tmp_path / "data",
        control_key="signing-key",
        feedback_threshold=6,
        replay_sample=10,
        feedback_epochs=1,
        progress_interval_s=0.0,
    )
    topics = [settings.jobs_topic, settings.results_topic, settings.feedback_topic]
    await create_topics(broker, topics, partitions=1)  # one partition: a deterministic order
    stop = asyncio.Event()
    service = asyncio.create_task(TrainerService(settings, broker).run(stop))
    try:
        job = TrainJob(job_id="job-1", model="sent", train="train.tsv",
                       dev=str(splits["dev"]), hyperparameters=FAST, promote=True)  # fmt: skip
        job = job.signed("signing-key")
        bad_hp = job.model_copy(update={"job_id": "job-2", "hyperparameters": {"epochz": 1}})
        missing = job.model_copy(update={"job_id": "job-3", "train": "nope.tsv", "promote": False})
        await send(broker, settings.jobs_topic, [
            b"this is not json", b'{"job_id": "job-0"}', job.model_dump_json().encode(),
            bad_hp.model_dump_json().encode(), missing.model_dump_json().encode(),
        ])  # fmt: skip
        results = await read_until(
            broker, settings.results_topic, lambda v: finished(v, "job-3") is not None
        )
        invalid = [r for r in results if r["status"] == "invalid"]
        assert {r["job_id"] for r in invalid} == {f"jobs-{uid}[0]@0", "job-0", "job-2"}
        assert all(r["error"].startswith(f"jobs-{uid}[0]@") for r in invalid)
        assert "epochz" in finished(results, "job-2")["error"]
        assert "nope.tsv: no such file" in finished(results, "job-3")["error"]
        ok = TrainResult.model_validate(finished(results, "job-1"))
        assert ok.status == "succeeded" and ok.promoted and ok.version == "v2"
        assert ok.metrics["dev_accuracy"] is not None and ok.metrics["examples_per_s"] > 0
        assert any(r["job_id"] == "job-1" and r["status"] == "progress" for r in results)
        assert store.exists("sent", "v2") and store.active("sent") == "v2"

        swaps = await read_until(broker, settings.control_topic, lambda v: len(v) >= 1)
        swap = SwapModel.model_validate(swaps[0])
        assert (swap.model, swap.version) == ("sent", "v2")
        assert swap.sha256 == store.weights_sha256("sent", "v2")

        feedback = [
            json.dumps(
                {"id": f"f{i}", "model": "sent", "text": text, "label": LABELS[label]},
                ensure_ascii=False,
            ).encode()
            for i, (label, text) in enumerate(make_rows(6, seed=9))
        ]
        feedback.insert(2, b'{"id": "x", "model": "sent", "text": "ok", "label": "meh"}')
        await send(broker, settings.feedback_topic, feedback)
        results = await read_until(
            broker, settings.results_topic,
            lambda v: finished(v, "feedback-sent-1") is not None,
        )  # fmt: skip
        bad = [r for r in results if r["status"] == "invalid" and "meh" in (r["error"] or "")]
        assert len(bad) == 1 and bad[0]["error"].startswith(f"feedback-{uid}[0]@2")
        round_ = TrainResult.model_validate(finished(results, "feedback-sent-1"))
        assert round_.status in ("succeeded", "rejected"), round_
        assert round_.version == "v3" and store.card("sent", "v3").parent == "v2"
        assert round_.metrics["feedback_examples"] == 6 and round_.metrics["replay_examples"] == 10
        log = store.root / ".feedback" / "sent" / "feedback.jsonl"
        assert len(log.read_text(encoding="utf-8").splitlines()) == 6
        assert store.active("sent") == ("v3" if round_.promoted else "v2")
    finally:
        stop.set()
        await asyncio.wait_for(service, 30)
