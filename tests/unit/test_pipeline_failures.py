"""Every per-event step of a pipeline fails per event: the event becomes a dead letter naming
the step, the rest of its batch is published. A batch whose inference fails is split in halves."""

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from bus.types import TopicPartition
from schemas.deadletter import ErrorKind
from schemas.events import LabelledEvent, TextEvent
from worker import metrics
from worker import pipeline as pipeline_mod
from worker.cache import LruCache, cache_key
from worker.inference import BatchStats, Prediction
from worker.items import Item
from worker.pipeline import ModelPipeline
from worker.routing import parse_route


class PoisonEngine:
    """Fails any batch that contains the text 'poison' (like an OOM on one huge input)."""

    top_k = 5

    def __init__(self) -> None:
        self.id2label = {0: "a"}  # what cached values are checked against (with top_k)
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
    out: list[LabelledEvent] = field(default_factory=list)
    dead: list[tuple[int, ErrorKind, str]] = field(default_factory=list)
    flushes: int = 0

    def labelled(self, item: Item, value: bytes, model: str) -> None:
        self.out.append(LabelledEvent.model_validate_json(value))

    def dead_letter(self, route, tp, offset, key, value, kind, message, event_id=None, span=None):
        self.dead.append((offset, kind, message))

    async def flush(self) -> None:
        self.flushes += 1


def _items(texts: list[str], metadata: dict[str, Any] | None = None) -> list[Item]:
    route = parse_route("t=m")
    tp = TopicPartition("t", 0)
    return [
        Item(TextEvent(id=f"i{n}", text=t, metadata=metadata), route, tp, n, None, b"", 0, 0.0)
        for n, t in enumerate(texts)
    ]


def _pipe(engine: PoisonEngine, publisher: RecordingPublisher, cache: Any = None) -> ModelPipeline:
    return ModelPipeline(
        "m", FakeRegistry(engine), cache or LruCache(100), publisher, "p", {"t"}, "w", 2
    )  # type: ignore[arg-type]


def _published_ids(publisher: RecordingPublisher) -> list[str]:
    return sorted(e.id for e in publisher.out)


def test_failed_batch_is_split_until_the_bad_event_is_isolated() -> None:
    engine = PoisonEngine()
    publisher = RecordingPublisher()
    pipe = _pipe(engine, publisher)
    texts = ["a", "b", "c", "poison", "e", "f", "g", "h"]
    asyncio.run(pipe.process(_items(texts)))
    pipe.shutdown()
    assert [d[0] for d in publisher.dead] == [3]
    assert publisher.dead[0][1] == ErrorKind.INFERENCE and "out of memory" in publisher.dead[0][2]
    assert _published_ids(publisher) == [f"i{n}" for n in range(8) if n != 3]
    assert ["poison"] in engine.calls  # it was tried alone before it became a dead letter
    assert publisher.flushes == 1  # the pipeline flushes its own outputs


def test_identical_texts_in_a_batch_are_computed_once_and_cached() -> None:
    engine = PoisonEngine()
    publisher = RecordingPublisher()
    cache = LruCache(100)
    pipe = _pipe(engine, publisher, cache)
    asyncio.run(pipe.process(_items(["same", " same ", "other", "same"])))
    assert engine.calls == [["same", "other"]]
    assert [e.cached for e in publisher.out] == [False] * 4
    asyncio.run(pipe.process(_items(["same", "other"])))
    pipe.shutdown()
    assert len(engine.calls) == 1  # second batch served from cache
    assert [e.cached for e in publisher.out[4:]] == [True, True]


def test_a_cache_key_that_cannot_be_computed_fails_its_event_only(monkeypatch) -> None:
    def key(prefix: str, model: str, version: str, text: str, pair: str | None) -> str:
        if text == "bad":
            raise UnicodeEncodeError("utf-8", text, 0, 1, "surrogates not allowed")
        return cache_key(prefix, model, version, text, pair)

    monkeypatch.setattr(pipeline_mod, "cache_key", key)
    publisher = RecordingPublisher()
    pipe = _pipe(PoisonEngine(), publisher)
    asyncio.run(pipe.process(_items(["a", "bad", "c"])))
    pipe.shutdown()
    assert [(d[0], d[1]) for d in publisher.dead] == [(1, ErrorKind.CACHE_KEY)]
    assert _published_ids(publisher) == ["i0", "i2"]


@pytest.mark.parametrize("corrupt", [{}, {"label": "a"}, {"scores": "x", "label": 1}, [1]])
def test_a_corrupt_cached_value_is_a_counted_miss(corrupt: Any) -> None:
    engine = PoisonEngine()
    publisher = RecordingPublisher()
    cache = LruCache(100)
    pipe = _pipe(engine, publisher, cache)
    bad_key = cache_key("p", "m", Active.identity, "b", None)
    asyncio.run(cache.set_many({bad_key: corrupt}))
    counter = metrics.CACHE_CORRUPT.labels("m")
    before = counter._value.get()
    asyncio.run(pipe.process(_items(["a", "b", "c"])))
    pipe.shutdown()
    assert counter._value.get() == before + 1
    assert publisher.dead == [] and _published_ids(publisher) == ["i0", "i1", "i2"]
    assert engine.calls == [["a", "b", "c"]]  # recomputed, and the cache repaired
    assert asyncio.run(cache.get_many([bad_key]))[0]["label"] == "a"


def test_an_output_that_cannot_be_serialised_fails_its_event_only() -> None:
    publisher = RecordingPublisher()
    pipe = _pipe(PoisonEngine(), publisher)
    items = _items(["a", "b", "c"], metadata={"ok": 1})
    items[1].event.metadata["bad"] = {1, 2}  # a set: no JSON for it (validation bypassed)
    asyncio.run(pipe.process(items))
    pipe.shutdown()
    assert [(d[0], d[1]) for d in publisher.dead] == [(1, ErrorKind.OUTPUT)]
    assert _published_ids(publisher) == ["i0", "i2"]


def test_inference_returning_the_wrong_number_of_results_fails_per_event() -> None:
    class ShortEngine(PoisonEngine):
        def predict(self, texts: list[str], pairs: list[str | None]) -> list[Prediction]:
            preds = super().predict(texts, pairs)
            return preds[:-1] if "x" in texts and len(texts) > 1 else preds

    publisher = RecordingPublisher()
    pipe = _pipe(ShortEngine(), publisher)
    asyncio.run(pipe.process(_items(["a", "x", "c", "d"])))
    pipe.shutdown()
    assert publisher.dead == [] and _published_ids(publisher) == ["i0", "i1", "i2", "i3"]
