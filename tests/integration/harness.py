"""Helpers for integration tests: worker subprocesses, producing events, collecting outputs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.producing import produce_many
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from bus.topics import create_topics

STREAMCLF = str(Path(sys.executable).with_name("streamclf"))


@dataclass
class WorkerProcess:
    """A `streamclf worker` subprocess with its log file."""

    broker: KafkaSettings
    store: Path
    routes: list[str]
    group: str
    log_dir: Path
    worker_id: str = "w1"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    signalled_at: float | None = None
    exit_seen_at: float | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"worker-{self.worker_id}.log"

    def start(self) -> WorkerProcess:
        cmd = [
            STREAMCLF,
            "worker",
            "--group",
            self.group,
            "--store",
            str(self.store),
            "-b",
            self.broker.bootstrap_servers,
            "--worker-id",
            self.worker_id,
        ]
        for route in self.routes:
            cmd += ["--route", route]
        env = {
            **os.environ,
            "STREAMCLF_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STREAMCLF_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "STREAMCLF_STATUS_INTERVAL_S": "1",
            "STREAMCLF_TORCH_THREADS": "1",
            **self.env,
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker {self.worker_id} did not stop in {timeout_s}s; log:\n{self.log()}"
            ) from None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def signal_stop(self) -> float:
        """Send one SIGTERM (and no more); returns when, for `exited_within`."""
        assert self.proc is not None
        if self.signalled_at is None:
            self.signalled_at = time.monotonic()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
        return self.signalled_at

    def exited_after_s(self) -> float | None:
        """Seconds from `signal_stop` to the exit as first seen (call it while polling), or
        None while the process lives."""
        assert self.proc is not None and self.signalled_at is not None
        if self.exit_seen_at is None and self.proc.poll() is not None:
            self.exit_seen_at = time.monotonic()
        return None if self.exit_seen_at is None else self.exit_seen_at - self.signalled_at

    def exits_within(self, timeout_s: float, poll_s: float = 0.1) -> tuple[int, float]:
        """SIGTERM, then (exit code, seconds to exit); AssertionError (and SIGKILL) when the
        process is still alive after `timeout_s`."""
        self.signal_stop()
        deadline = time.monotonic() + timeout_s
        while (took := self.exited_after_s()) is None and time.monotonic() < deadline:
            time.sleep(poll_s)
        assert self.proc is not None
        if took is None:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                f"worker {self.worker_id} still alive {timeout_s}s after SIGTERM; log:\n{self.log()}"
            )
        return self.proc.returncode, took

    def log_has(self, text: str) -> bool:
        return self.log_path.exists() and text in self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


async def make_topics(broker: KafkaSettings, names: list[str], partitions: int = 4) -> None:
    await create_topics(broker, names, partitions)


async def produce(
    broker: KafkaSettings, topic: str, values: list[bytes | None], keys: list[bytes] | None = None
) -> list[tuple[int, int]]:
    """Produce raw values (None = tombstone), wait for every acknowledgement and return each
    record's (partition, offset)."""
    keys = keys or [str(i).encode() for i in range(len(values))]
    acks = await produce_many(broker, topic, zip(keys, values, strict=True))
    return [(ack.partition, ack.offset) for ack in acks]


def text_events(n: int, prefix: str = "e", texts: list[str] | None = None) -> list[bytes]:
    samples = texts or [
        "北京上个月召开了两会",
        "这家酒店的服务非常好",
        "国足再次输球，球迷失望",
        "央行宣布降准",
        "质量太差了，不推荐",
        "新电影票房突破十亿",
    ]
    return [
        json.dumps(
            {"id": f"{prefix}{i}", "text": f"{samples[i % len(samples)]}{i}"}, ensure_ascii=False
        ).encode()
        for i in range(n)
    ]


async def collect(
    broker: KafkaSettings,
    topics: list[str],
    expected: int,
    timeout_s: float = 60.0,
    quiet_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Read JSON values from the start of `topics` until `expected` have arrived (and then
    `quiet_s` more quiet seconds, to catch duplicates) or `timeout_s` passes. Output topics
    may be created by the worker a bit later: they are waited for."""
    records = await read_until_quiet(
        broker,
        topics,
        quiet_s=quiet_s,
        expected=expected,
        timeout_s=timeout_s,
        wait_for_topics_s=timeout_s,
    )
    return [{**json.loads(r.value or b"null"), "_topic": r.topic, "_key": r.key} for r in records]


def wait_for(predicate: Any, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


async def committed_offsets(broker: KafkaSettings, topic: str, group: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (0 where nothing is committed)."""
    from bus.topics import high_water_marks

    infos = await high_water_marks(broker, topic, group_id=group)
    return {i.partition: i.committed or 0 for i in infos}


async def committed_equals_high_water(broker: KafkaSettings, topic: str, group: str) -> bool:
    from bus.topics import high_water_marks

    infos = await high_water_marks(broker, topic, group_id=group)
    return all((i.committed or 0) == i.high_water for i in infos)
