"""A batch whose inference fails is split in halves; an event failing alone is a dead letter."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from schemas.deadletter import ErrorKind
from schemas.events import TextEvent
from worker.cache import LruCache
from worker.inference import BatchStats, Prediction
from worker.pipeline import Item, ModelPipeline
from worker.routing import parse_route


class PoisonEngine:
    """Fails any batch that contains the text 'poison' (like an OOM on one huge input)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.last_stats = BatchStats()

    def prepare(self, texts: list[str], pairs: list[str | None]) -> list[str]:
        return list(texts)

    def run(self, prepared: list[str]) -> list[Prediction]:
        return self.predict(prepared, [None] * len(prepared))

    def predict(self, texts: list[str], pairs: list[str | None]) -> list[Prediction]:
        self.calls.append(list(texts))
        if "poison" in texts:
            raise RuntimeError("CUDA out of memory")
        return [Prediction("a", 0, 0.9, [("a", 0, 0.9)]) for _ in texts]


@dataclass
class Active:
    version: str
    engine: Any
    identity: str = "v1-0123456789abcdef"


@dataclass
class FakeRegistry:
    engine: PoisonEngine

    def current(self, model: str) -> Active:
        return Active("v1", self.engine)

    def take_retired(self, model: str) -> list[Any]:
        return []


@dataclass
class RecordingPublisher:
    out: list[Any] = field(default_factory=list)
    dead: list[tuple[int, ErrorKind, str]] = field(default_factory=list)

    def labelled(self, item: Item, event: Any) -> None:
        self.out.append(event)

    def dead_letter(self, route, tp, offset, key, value, kind, message, event_id=None) -> None:
        self.dead.append((offset, kind, message))


def _items(texts: list[str]) -> list[Item]:
    route = parse_route("t=m")
    tp = TopicPartition("t", 0)
    return [
        Item(TextEvent(id=f"i{n}", text=t), route, tp, n, None, b"", 0, 0.0)
        for n, t in enumerate(texts)
    ]


def test_failed_batch_is_split_until_the_bad_event_is_isolated() -> None:
    engine = PoisonEngine()
    publisher = RecordingPublisher()
    pipe = ModelPipeline("m", FakeRegistry(engine), LruCache(100), publisher, "p", {"t"}, "w", 2)
    texts = ["a", "b", "c", "poison", "e", "f", "g", "h"]
    asyncio.run(pipe.process(_items(texts)))
    pipe.shutdown()
    assert [d[0] for d in publisher.dead] == [3]
    assert publisher.dead[0][1] == ErrorKind.INFERENCE and "out of memory" in publisher.dead[0][2]
    assert sorted(e.id for e in publisher.out) == [f"i{n}" for n in range(8) if n != 3]
    assert ["poison"] in engine.calls  # it was tried alone before it became a dead letter


def test_identical_texts_in_a_batch_are_computed_once_and_cached() -> None:
    engine = PoisonEngine()
    publisher = RecordingPublisher()
    cache = LruCache(100)
    pipe = ModelPipeline("m", FakeRegistry(engine), cache, publisher, "p", {"t"}, "w", 2)
    asyncio.run(pipe.process(_items(["same", " same ", "other", "same"])))
    assert engine.calls == [["same", "other"]]
    assert [e.cached for e in publisher.out] == [False] * 4
    asyncio.run(pipe.process(_items(["same", "other"])))
    pipe.shutdown()
    assert len(engine.calls) == 1  # second batch served from cache
    assert [e.cached for e in publisher.out[4:]] == [True, True]
