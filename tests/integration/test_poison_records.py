"""One bad record on the control, jobs or feedback topic stops nothing (issue 17, items 1-2).

`[`×2000 + `]`×2000 used to make every worker exit (`control task failed: RecursionError`) and
every restart die on the same record, and `trainer serve` crash-loop on it. Real broker, real
worker and trainer processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bus.producing import produce_many
from bus.reading import StopWhen, iter_records
from bus.settings import KafkaSettings
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.signing import SIGNATURE_HEADER
from schemas.training import TrainJob
from tests.conftest import free_port
from tests.fixtures.trainer_data import LABELS, write_splits
from tests.integration.harness import (
    STREAMCLF,
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
    text_events,
)
from tests.integration.test_hot_swap import cli, make_store, stop_all, topics_env, wait_workers

pytestmark = pytest.mark.integration
BRACKETS = b"[" * 2000 + b"]" * 2000
FAST = {"epochs": 1, "max_seq_len": 32, "batch_size": 8, "learning_rate": 1e-3, "warmup": 0.0}


# -- helpers shared with test_full_domain_topics -------------------------------------------------
def metric(port: int, name: str, **labels: str) -> float:
    """The value of one sample on a process's /metrics (0 when absent or unreachable)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Any = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if alive is not None:
            assert alive.alive(), f"{what}: the process exited\n{alive.log()}"
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


@dataclass
class TrainerProcess:
    """A `streamclf trainer serve` subprocess on private topics, with its log and metrics."""

    broker: KafkaSettings
    store: Path
    data_root: Path
    uid: str
    log_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def jobs(self) -> str:
        return f"jobs-{self.uid}"

    @property
    def feedback(self) -> str:
        return f"feedback-{self.uid}"

    @property
    def results(self) -> str:
        return f"results-{self.uid}"

    @property
    def group(self) -> str:
        return f"trainer-{self.uid}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"trainer-{self.uid}.log"

    def start(self) -> TrainerProcess:
        env = {
            **os.environ,
            "STREAMCLF_TRAINER_JOBS_TOPIC": self.jobs,
            "STREAMCLF_TRAINER_RESULTS_TOPIC": self.results,
            "STREAMCLF_TRAINER_FEEDBACK_TOPIC": self.feedback,
            "STREAMCLF_TRAINER_GROUP_ID": self.group,
            "STREAMCLF_TRAINER_DATA_ROOT": str(self.data_root),
            "STREAMCLF_TRAINER_METRICS_PORT": str(self.port),
            "STREAMCLF_TRAINER_FEEDBACK_THRESHOLD": "1000000",
            "STREAMCLF_TRAINER_PROGRESS_INTERVAL_S": "60",
            "STREAMCLF_CONTROL_TOPIC": f"control-{self.uid}",
            "STREAMCLF_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STREAMCLF_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            **self.env,
        }
        cmd = [STREAMCLF, "trainer", "serve", "-b", self.broker.bootstrap_servers]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd += ["--store", str(self.store)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


async def read_results(
    broker: KafkaSettings, topic: str, done: Callable[[list[dict]], bool], timeout_s: float
) -> list[dict]:
    """JSON values of the results topic from the start until `done(values)`."""
    values: list[dict] = []
    reader = iter_records(
        broker, [topic], stop=StopWhen(quiet_s=None, timeout_s=timeout_s), wait_for_topics_s=60
    )
    async with contextlib.aclosing(reader):
        async for record in reader:
            values.append(json.loads(record.value or b"null"))
            if done(values):
                return values
    raise AssertionError(f"timed out; results so far: {values}")


def final(values: list[dict], job_id: str) -> dict | None:
    ends = ("succeeded", "failed", "rejected", "invalid")
    return next((v for v in values if v["job_id"] == job_id and v["status"] in ends), None)


def trainer_store(root: Path) -> Path:
    init_model(ModelStore(root), "sent", LABELS, "tiny", seed=0)
    return root


# -- (a) the worker --------------------------------------------------------------------------
async def test_a_bracket_bomb_on_the_control_topic_stops_no_worker(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")  # news: v1 active, v2
    key = f"key-{uid}-0123456789"
    topic, control = f"news-{uid}", f"control-{uid}"
    port = free_port()
    env = topics_env(uid, key) | {"STREAMCLF_METRICS_PORT": str(port)}
    await make_topics(broker, [topic], 2)
    route = [f"{topic}=news"]
    w1 = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "w1", env=env)
    w2 = WorkerProcess(broker, store, route, f"g-{uid}", tmp_path, "w2", env=topics_env(uid, key))
    try:
        w1.start()
        await wait_workers(broker, uid, [w1])
        # Keyed apart from every model, so compaction keeps it for every later start; once as
        # it is, once with a forged signature header.
        await produce(broker, control, [BRACKETS], [b"poison"])
        forged = [(SIGNATURE_HEADER, b"0" * 64)]
        await produce_many(broker, control, [(b"poison2", BRACKETS)], forged)
        seen = await wait_workers(
            broker, uid, [w1], lambda s: s["w1"].rejected_control >= 2, timeout_s=60
        )
        assert "signed" in (seen["w1"].last_error or ""), seen["w1"]
        decode = metric(port, "streamclf_rejected_records_total", topic_kind="control",
                        reason="decode")  # fmt: skip
        bad_sig = metric(port, "streamclf_rejected_records_total", topic_kind="control",
                         reason="bad_signature")  # fmt: skip
        assert (decode, bad_sig) == (1.0, 1.0), w1.log()

        w2.start()  # reads the topic from the start: both records are on it
        await wait_workers(broker, uid, [w1, w2], timeout_s=90)
        args = ("--store", str(store), "--wait", "--timeout", "60")
        code, out, err = await cli(broker, topics_env(uid, key), "models", "swap", "news", "v2",
                                   *args)  # fmt: skip
        assert code == 0, f"{out}\n{err}"
        swapped = await wait_workers(
            broker, uid, [w1, w2], lambda s: all(x.versions == {"news": "v2"} for x in s.values())
        )
        await produce(broker, topic, text_events(40, "after"))
        outputs = await collect(broker, [f"{topic}.labelled"], 40, timeout_s=60)
        assert w1.alive() and w2.alive()
    finally:
        stop_all([w1, w2])
    assert swapped["w2"].rejected_control >= 2  # the new worker skipped both at start
    assert {o["version"] for o in outputs} == {"v2"} and len(outputs) == 40
    assert "control record skipped (decode)" in w2.log_path.read_text()


# -- (b) the trainer -------------------------------------------------------------------------
async def test_trainer_serve_skips_a_bracket_bomb_on_jobs_and_feedback_and_goes_on(
    broker, uid: str, tmp_path: Path
) -> None:
    store = trainer_store(tmp_path / "store")
    data = tmp_path / "data"
    write_splits(data, train=32, dev=16)
    trainer = TrainerProcess(broker, store, data, uid, tmp_path)
    await make_topics(broker, [trainer.jobs, trainer.feedback, trainer.results], 1)
    job = TrainJob(job_id="job-ok", model="sent", train="train.tsv", dev="dev.tsv",
                   hyperparameters=FAST)  # fmt: skip
    good_feedback = {"id": "f-ok", "model": "sent", "text": "服务很好，推荐。", "label": "positive"}
    try:
        trainer.start()
        await produce(broker, trainer.jobs, [BRACKETS])
        await produce(broker, trainer.feedback, [BRACKETS])
        await produce(broker, trainer.feedback, [json.dumps(good_feedback).encode()])
        await produce(broker, trainer.jobs, [job.model_dump_json().encode()])
        results = await read_results(
            broker, trainer.results, lambda v: final(v, "job-ok") is not None, timeout_s=240
        )
        assert trainer.alive(), trainer.log()
        for topic in (trainer.jobs, trainer.feedback):
            await asyncio.to_thread(
                wait_until,
                lambda t=topic: asyncio.run(committed_equals_high_water(broker, t, trainer.group)),
                60,
                f"the trainer's commits on {topic}",
                trainer,
            )
        counts = {
            kind: metric(
                trainer.port, "streamclf_rejected_records_total", topic_kind=kind, reason="decode"
            )
            for kind in ("job", "feedback")
        }
        assert trainer.alive(), trainer.log()
    finally:
        trainer.stop()
    ok = final(results, "job-ok")
    assert ok is not None and ok["status"] == "succeeded" and ok["version"] == "v2", ok
    invalid = {r["job_id"]: r["error"] for r in results if r["status"] == "invalid"}
    assert set(invalid) == {f"{trainer.jobs}[0]@0", f"{trainer.feedback}[0]@0"}, invalid
    assert "malformed training job: not valid UTF-8 JSON" in invalid[f"{trainer.jobs}[0]@0"]
    assert "malformed feedback: not valid UTF-8 JSON" in invalid[f"{trainer.feedback}[0]@0"]
    assert counts == {"job": 1.0, "feedback": 1.0}, trainer.log()
    lines = (store / ".feedback" / "sent" / "feedback.jsonl").read_text(encoding="utf-8")
    assert [json.loads(line)["id"] for line in lines.splitlines()] == ["f-ok"]
