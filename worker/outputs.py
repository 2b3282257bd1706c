"""Labelled events serialised without a pydantic object per event.

`LabelledEvent` (schemas/events.py) stays the contract: the bytes built here parse to the same
`LabelledEvent` as `labelled_event(...).model_dump_json()` would give (tests/unit/test_outputs.py
checks it, odd text and metadata included). What is the same for a whole batch (model,
version, worker, timings) is built once per batch; what is the same for one prediction (label,
scores) once per prediction, and each event adds only its own fields.
"""

from __future__ import annotations

from typing import Any

import orjson

from schemas.events import LabelledEvent, LabelScore, Timings
from worker.inference import Prediction

SCHEMA_VERSION = LabelledEvent.model_fields["schema_version"].default


class BatchEncoder:
    """Serialises the labelled events of one batch."""

    def __init__(self, model: str, version: str, worker_id: str, timings: Timings) -> None:
        self.model = model
        self.version = version
        self.worker_id = worker_id
        self.timings = timings.model_dump()
        self._scores: dict[int, list[dict[str, Any]]] = {}

    def encode(
        self,
        event_id: str,
        pred: Prediction,
        cached: bool,
        tp_topic: str,
        partition: int,
        offset: int,
        metadata: dict[str, Any] | None,
        produced_at_ms: int | None,
    ) -> bytes:
        scores = self._scores.get(id(pred))
        if scores is None:
            scores = [{"label": s[0], "label_id": s[1], "score": s[2]} for s in pred.scores]
            self._scores[id(pred)] = scores
        return orjson.dumps(
            {
                "schema_version": SCHEMA_VERSION,
                "id": event_id,
                "label": pred.label,
                "label_id": pred.label_id,
                "score": pred.score,
                "scores": scores,
                "model": self.model,
                "version": self.version,
                "cached": cached,
                "truncated": pred.truncated,
                "source_topic": tp_topic,
                "source_partition": partition,
                "source_offset": offset,
                "metadata": metadata,
                "timings": self.timings,
                "worker_id": self.worker_id,
                "produced_at_ms": produced_at_ms,
            }
        )

    def event(self, item: Any, pred: Prediction, cached: bool) -> LabelledEvent:
        """The same output as a pydantic object, for the few places that want one (shadows)."""
        tp = item.tp
        return labelled_event(
            item.event.id,
            pred,
            cached,
            self.model,
            self.version,
            self.worker_id,
            Timings(**self.timings),
            (tp.topic, tp.partition, item.offset),
            item.event.metadata,
            item.timestamp_ms,
        )


def labelled_event(
    event_id: str,
    pred: Prediction,
    cached: bool,
    model: str,
    version: str,
    worker_id: str,
    timings: Timings,
    source: tuple[str, int, int],
    metadata: dict[str, Any] | None,
    produced_at_ms: int | None,
) -> LabelledEvent:
    """The pydantic path: the reference the fast path is tested against."""
    return LabelledEvent(
        id=event_id,
        label=pred.label,
        label_id=pred.label_id,
        score=pred.score,
        scores=[LabelScore(label=s[0], label_id=s[1], score=s[2]) for s in pred.scores],
        model=model,
        version=version,
        cached=cached,
        truncated=pred.truncated,
        source_topic=source[0],
        source_partition=source[1],
        source_offset=source[2],
        metadata=metadata,
        timings=timings,
        worker_id=worker_id,
        produced_at_ms=produced_at_ms,
    )
