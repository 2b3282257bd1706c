"""Tokenization off the inference thread: the next batch is prepared (cache lookup and
tokenization, in its own thread) while the current one runs on the model, and outputs still
leave in batch order."""

import asyncio
import threading
import time
from typing import Any

from tests.unit.test_pipeline_failures import FakeRegistry, RecordingPublisher, _items
from worker.cache import LruCache
from worker.inference import BatchStats, Prediction
from worker.pipeline import ModelPipeline


class SlowEngine:
    """`run` blocks until released; every call is logged with its thread."""

    top_k = 5

    def __init__(self) -> None:
        self.id2label = {0: "x"}  # what cached values are checked against (with top_k)
        self.log: list[tuple[str, str, str]] = []  # (step, first text, thread name)
        self.release = threading.Event()
        self.last_stats = BatchStats()

    def prepare(self, texts: list[str], pairs: list[str | None]) -> list[str]:
        self.log.append(("prepare", texts[0], threading.current_thread().name))
        return list(texts)

    def run(self, prepared: list[str]) -> list[Prediction]:
        self.log.append(("run", prepared[0], threading.current_thread().name))
        if prepared[0] == "a0":
            assert self.release.wait(10), "never released"
        self.log.append(("ran", prepared[0], threading.current_thread().name))
        return [Prediction("x", 0, 0.9, [("x", 0, 0.9)]) for _ in prepared]


def test_the_next_batch_is_tokenized_while_the_current_one_runs() -> None:
    engine = SlowEngine()
    publisher = RecordingPublisher()
    pipe = ModelPipeline(
        "m",
        FakeRegistry(engine),
        LruCache(100),
        publisher,
        "p",
        {"t"},
        "w",
        4,  # type: ignore[arg-type]
    )

    def items(prefix: str) -> list[Any]:
        batch = _items([f"{prefix}{i}" for i in range(3)])
        for n, item in enumerate(batch):
            item.offset = n + (100 if prefix == "b" else 0)
            item.event = item.event.model_copy(update={"id": f"{prefix}{n}"})
        return batch

    async def scenario() -> None:
        await pipe.queue.put(items("a"))
        await pipe.queue.put(items("b"))
        runner = asyncio.create_task(pipe.run())
        deadline = time.monotonic() + 10
        while ("prepare", "b0") not in [(s, t) for s, t, _ in engine.log]:
            assert time.monotonic() < deadline, engine.log
            await asyncio.sleep(0.01)
        assert ("ran", "a0") not in [(s, t) for s, t, _ in engine.log]  # a0 is still running
        engine.release.set()
        while len(publisher.out) < 6:
            assert time.monotonic() < deadline, engine.log
            await asyncio.sleep(0.01)
        runner.cancel()

    asyncio.run(scenario())
    pipe.shutdown()
    steps = [(s, t) for s, t, _ in engine.log]
    assert steps.index(("prepare", "b0")) < steps.index(("ran", "a0"))
    threads = {s: name for s, _, name in engine.log}
    assert threads["prepare"].startswith("prepare-m") and threads["run"].startswith("infer-m")
    assert [e.id for e in publisher.out] == ["a0", "a1", "a2", "b0", "b1", "b2"]
