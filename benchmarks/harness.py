"""The Kafka side of the end-to-end scenarios: a real broker, a process under test (the
worker or the raw pass-through), and a driver that produces events and times their answers.

Latency is measured in this process: receive time of the labelled event (matched by `id`)
minus the time its input was handed to the producer; both from `time.perf_counter()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.common import REPO_ROOT
from benchmarks.stats import latency_summary_ms
from bus.clients import make_consumer, make_producer
from bus.settings import KafkaSettings
from bus.topics import create_topics, wait_for_topics

PARTITIONS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def local_broker() -> Iterator[KafkaSettings]:
    """A fresh tansu broker on a free port (or STREAMCLF_BENCH_BOOTSTRAP, an existing one)."""
    external = os.environ.get("STREAMCLF_BENCH_BOOTSTRAP")
    if external:
        yield KafkaSettings(bootstrap_servers=external)
        return
    from admin.localstack import LocalBroker

    with tempfile.TemporaryDirectory(prefix="streamclf-bench-") as tmp:
        broker = LocalBroker(Path(tmp), port=free_port())
        broker.start()
        try:
            yield KafkaSettings(bootstrap_servers=broker.address)
        finally:
            broker.stop()


def fresh_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def make_route_topics(settings: KafkaSettings, topic: str) -> str:
    """The input topic, its `.labelled` and `.dlq`; returns the labelled topic."""
    names = [topic, f"{topic}.labelled", f"{topic}.dlq"]
    await create_topics(settings, names, partitions=PARTITIONS)
    await wait_for_topics(settings, names)
    return f"{topic}.labelled"


@dataclass
class Subprocess:
    """A process under test, its output in a log file; stopped with SIGTERM, then SIGKILL."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> Subprocess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process so far (all its threads)."""
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return times.user + times.system

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.argv[2:4]} exited with {self.proc.returncode}:\n{tail}")

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def worker_command() -> list[str]:
    return [sys.executable, "-m", "admin.cli", "worker", "--log-level", "WARNING"]


@dataclass
class RunFigures:
    sent: int
    received: int
    seconds: float  # first send -> last receive
    first_to_last_s: float  # first receive -> last receive
    latencies_s: list[float] = field(repr=False, default_factory=list)
    offered_per_s: float | None = None
    model_busy_s: float | None = None
    cpu_s: float | None = None  # CPU seconds (user + system) of the process under test

    @property
    def cpu_us_per_event(self) -> float | None:
        return (
            self.cpu_s / self.received * 1e6 if self.cpu_s is not None and self.received else None
        )

    @property
    def events_per_s(self) -> float:
        return self.received / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, float]:
        return {
            "events_per_s": self.events_per_s,
            "events_per_s_first_to_last": (self.received - 1) / self.first_to_last_s
            if self.first_to_last_s
            else 0.0,
            **latency_summary_ms(self.latencies_s),
            "model_busy_share": self.model_busy_s / self.seconds
            if self.model_busy_s is not None and self.seconds
            else None,
            "cpu_us_per_event": self.cpu_us_per_event,
        }


def event_json(event_id: str, text: str) -> bytes:
    return json.dumps({"id": event_id, "text": text}, ensure_ascii=False).encode()


class Driver:
    """Produces events to `topic` and waits for their answers on `out_topic`."""

    def __init__(self, settings: KafkaSettings, topic: str, out_topic: str) -> None:
        self.settings = settings
        self.topic = topic
        self.out_topic = out_topic
        self.sent_at: dict[str, float] = {}
        self.received_at: dict[str, float] = {}
        self.cached: dict[str, bool] = {}
        self.timings: dict[str, dict] = {}
        self._producer = make_producer(settings, linger_ms=5)
        self._consumer = make_consumer(settings, out_topic, group_id=None)
        self._reader: asyncio.Task | None = None

    async def __aenter__(self) -> Driver:
        await self._producer.start()
        await self._consumer.start()
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._consumer.stop()
        await self._producer.stop()

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    answer = json.loads(record.value)
                    self.received_at.setdefault(answer["id"], now)
                    self.cached[answer["id"]] = bool(answer.get("cached"))
                    if answer.get("timings"):
                        self.timings[answer["id"]] = answer["timings"]

    async def send(self, items: list[tuple[str, str]]) -> None:
        """Hand events to the producer (not waiting for acks); stamp their send time."""
        futures = []
        for event_id, text in items:
            self.sent_at[event_id] = time.perf_counter()
            futures.append(
                await self._producer.send(
                    self.topic, event_json(event_id, text), key=event_id.encode()
                )
            )
        if futures:
            await asyncio.gather(*futures)

    async def wait_for(
        self, ids: list[str], timeout_s: float, alive: Subprocess | None = None
    ) -> None:
        deadline = time.perf_counter() + timeout_s
        while any(i not in self.received_at for i in ids):
            if alive:
                alive.check_alive()
            if time.perf_counter() > deadline:
                missing = sum(i not in self.received_at for i in ids)
                raise TimeoutError(f"{missing} of {len(ids)} events unanswered after {timeout_s}s")
            await asyncio.sleep(0.05)

    def figures(self, ids: list[str], offered: float | None = None) -> RunFigures:
        got = [i for i in ids if i in self.received_at]
        first_send = min(self.sent_at[i] for i in ids)
        recv = [self.received_at[i] for i in got]
        return RunFigures(
            sent=len(ids),
            received=len(got),
            seconds=max(recv) - first_send,
            first_to_last_s=max(recv) - min(recv),
            latencies_s=[self.received_at[i] - self.sent_at[i] for i in got],
            offered_per_s=offered,
            model_busy_s=self._model_busy_s(got),
        )

    def _model_busy_s(self, ids: list[str]) -> float | None:
        """Inference time the worker reports (each event carries its batch's inference_ms
        and size), summed: the share of the run the model was busy."""
        rows = [self.timings[i] for i in ids if i in self.timings]
        if not rows:
            return None
        return sum(t.get("inference_ms", 0) / max(t.get("batch_size", 1), 1) for t in rows) / 1000

    async def full_load(
        self, texts: list[str], tag: str, timeout_s: float, alive=None
    ) -> RunFigures:
        """Produce everything at once (a backlog), then wait for every answer."""
        items = [(f"{tag}-{i}", t) for i, t in enumerate(texts)]
        await self.send(items)
        ids = [i for i, _ in items]
        await self.wait_for(ids, timeout_s, alive)
        return self.figures(ids)

    async def offered_rate(
        self, texts: list[str], tag: str, rate_per_s: float, timeout_s: float, alive=None
    ) -> RunFigures:
        """Produce at a fixed rate (spread evenly, 10 ms ticks), then wait for every answer."""
        items = [(f"{tag}-{i}", t) for i, t in enumerate(texts)]
        started = time.perf_counter()
        done = 0
        while done < len(items):
            due = min(len(items), int((time.perf_counter() - started) * rate_per_s) + 1)
            if due > done:
                await self.send(items[done:due])
                done = due
            await asyncio.sleep(0.01)
        ids = [i for i, _ in items]
        await self.wait_for(ids, timeout_s, alive)
        return self.figures(ids, offered=rate_per_s)
