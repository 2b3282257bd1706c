"""Trainer jobs are confined and quiet: files only inside the data root, errors that name line
and column but never quote a file, promotion only for signed jobs, no secret in any result."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bus.topics import create_topics
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.training import TrainJob
from tests.fixtures.trainer_data import LABELS
from tests.integration.harness import STREAMCLF
from tests.integration.test_trainer_service import FAST, finished, read_until, send
from trainer.exceptions import JobError
from trainer.jobs import check_promotion

pytestmark = pytest.mark.integration
KEY, KAFKA_PW = "control-key-4f0c2b", "sasl-pw-81d3e7"


def test_promotion_through_the_jobs_topic_needs_a_key_and_a_signature() -> None:
    job = TrainJob(job_id="j", model="m", train="t.tsv", dev="d.tsv", promote=True)
    with pytest.raises(JobError, match="no control key is configured"):
        check_promotion(job, None)
    with pytest.raises(JobError, match="unsigned"):
        check_promotion(job, KEY)
    with pytest.raises(JobError, match="badly signed"):
        check_promotion(job.signed("another key"), KEY)
    check_promotion(job.signed(KEY), KEY)
    forged = job.signed(KEY).model_copy(update={"model": "other"})
    with pytest.raises(JobError, match="badly signed"):
        check_promotion(forged, KEY)


async def test_jobs_cannot_read_outside_the_data_root_nor_leak_what_they_read(
    broker, uid: str, tmp_path: Path
) -> None:
    """The trainer runs as its own process with the control key and a SASL password in its
    environment, so /proc/self/environ (what a job may name) holds both."""
    store = ModelStore(tmp_path / "store")
    init_model(store, "sent", LABELS, "tiny-random", seed=0)
    root, outside = tmp_path / "data", tmp_path / "private"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.tsv").write_text(f"label\ttext_a\n0\t{KAFKA_PW}\n", encoding="utf-8")
    (root / "environ.tsv").symlink_to("/proc/self/environ")
    (root / "private.tsv").symlink_to(outside / "secret.tsv")
    (root / "header.tsv").write_text(f"token={KEY}\n0\tok\n", encoding="utf-8")
    (root / "label.tsv").write_text(f"label\ttext_a\n0\t好\n{KEY}\t坏\n", encoding="utf-8")
    (root / "dev.tsv").write_text("label\ttext_a\n0\t好\n1\t坏\n", encoding="utf-8")
    jobs_topic, results_topic = f"jobs-{uid}", f"results-{uid}"
    env = {
        **os.environ,
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "STREAMCLF_KAFKA_SASL_PASSWORD": KAFKA_PW,
        "STREAMCLF_CONTROL_KEY": KEY,
        "STREAMCLF_CONTROL_TOPIC": f"control-{uid}",
        "STREAMCLF_MODEL_STORE": str(store.root),
        "STREAMCLF_TRAINER_DATA_ROOT": str(root),
        "STREAMCLF_TRAINER_JOBS_TOPIC": jobs_topic,
        "STREAMCLF_TRAINER_RESULTS_TOPIC": results_topic,
        "STREAMCLF_TRAINER_FEEDBACK_TOPIC": f"fb-{uid}",
        "STREAMCLF_TRAINER_GROUP_ID": f"trainer-{uid}",
    }
    await create_topics(broker, [jobs_topic, results_topic], partitions=1)
    jobs = {
        "environ": "/proc/self/environ",
        "absolute": str(outside / "secret.tsv"),
        "dotdot": "../private/secret.tsv",
        "symlink-environ": "environ.tsv",
        "symlink-out": "private.tsv",
        "header": "header.tsv",
        "label": "label.tsv",
    }
    values = [
        TrainJob(job_id=name, model="sent", train=path, dev="dev.tsv", hyperparameters=FAST)
        .model_dump_json()
        .encode()
        for name, path in jobs.items()
    ]
    promote = TrainJob(job_id="promote-unsigned", model="sent", train="dev.tsv", dev="dev.tsv",
                       hyperparameters=FAST, promote=True)  # fmt: skip
    values += [promote.model_dump_json().encode()]
    log = (tmp_path / "trainer.log").open("wb")
    trainer = subprocess.Popen([STREAMCLF, "trainer", "serve"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    try:
        await send(broker, jobs_topic, values)
        results = await read_until(
            broker, results_topic, lambda v: finished(v, "promote-unsigned") is not None
        )
    finally:
        trainer.terminate()
        trainer.wait(30)
    final = {name: finished(results, name) for name in [*jobs, "promote-unsigned"]}
    for name in ("environ", "absolute", "symlink-environ", "symlink-out"):
        assert final[name]["status"] == "invalid", final[name]
        assert "outside the trainer's data root" in final[name]["error"], final[name]
    assert final["dotdot"]["status"] == "invalid" and "'..'" in final["dotdot"]["error"]
    assert final["header"]["status"] == "failed"
    assert "header.tsv:1: the header must name the columns" in final["header"]["error"]
    assert final["label"]["status"] == "failed"
    assert "label.tsv:3: column label: not an integer id" in final["label"]["error"]
    assert final["promote-unsigned"]["status"] == "invalid"
    assert "unsigned" in final["promote-unsigned"]["error"]
    assert store.versions("sent") == ["v1"], "no job trained anything"
    published = json.dumps(results, ensure_ascii=False)
    for secret in (KEY, KAFKA_PW, os.environ.get("PATH", "PATH=")):
        assert secret not in published, f"a result carries {secret[:12]}…"
    assert KEY not in (tmp_path / "trainer.log").read_text(errors="replace")
    fields = {"job_id", "status", "model", "version", "metrics", "promoted", "error", "at_ms"}
    assert all(set(r) <= fields and not r["metrics"] for r in results), results
