"""One demo run: its names and handles (topics, store, control and status topics) and its
worker process; shared by the run and its phases."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from admin.context import console
from admin.demo import model as demo_model
from admin.demo.model import MODEL
from bus.control import read_status
from bus.settings import KafkaSettings


@dataclass
class Demo:
    """Names and handles of one demo run."""

    kafka: KafkaSettings
    state: Path
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)  # what `record` writes

    @property
    def topic(self) -> str:
        return f"demo.reviews.{self.run_id}"

    @property
    def labelled(self) -> str:
        return f"{self.topic}.labelled"

    @property
    def control(self) -> str:
        return f"demo.{self.run_id}.control"

    @property
    def status(self) -> str:
        return f"demo.{self.run_id}.status"

    @property
    def store(self) -> Path:
        return self.state / "demo" / "store"


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def dev_rows(n: int, offset: int = 0) -> list[tuple[str, str]]:
    """(human label, text) from the shipped dev sample."""
    lines = demo_model.DEV.read_text(encoding="utf-8").split("\n")[1:]
    rows = [line.split("\t", 1) for line in lines if line]
    return [(demo_model.LABELS[int(label)], text) for label, text in rows[offset : offset + n]]


def start_worker(demo: Demo) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": demo.kafka.bootstrap_servers,
        "STREAMCLF_MODEL_STORE": str(demo.store),
        "STREAMCLF_GROUP_ID": f"demo-{demo.run_id}",
        "STREAMCLF_CACHE_PREFIX": f"demo-{demo.run_id}",
        "STREAMCLF_CONTROL_TOPIC": demo.control,
        "STREAMCLF_STATUS_TOPIC": demo.status,
        "STREAMCLF_STATUS_INTERVAL_S": "1",
        "STREAMCLF_LOG_LEVEL": "WARNING",
        "STREAMCLF_WORKER_ID": "demo-worker",
    }
    cmd = [sys.executable, "-m", "admin.cli", "worker", "--route", f"{demo.topic}={MODEL}"]
    console.print("$ streamclf " + " ".join(cmd[3:]), highlight=False)
    log = (demo.state / "demo" / "worker.log").open("wb")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(demo: Demo, worker: subprocess.Popen[bytes], timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            log = (demo.state / "demo" / "worker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the worker exited ({worker.returncode}):\n{log}")
        latest = await read_status(demo.kafka, int((time.time() - 3) * 1000), demo.status)
        if any(s.ready for s in latest.values()):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"the worker was not ready after {timeout_s:.0f}s")
