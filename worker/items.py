"""`Item`: a decoded event waiting for its model, with where it came from. A leaf shared by
the intake, the pipeline and its side outputs (shadow, rollout, review)."""

from __future__ import annotations

from dataclasses import dataclass

from bus.types import TopicPartition
from schemas.events import TextEvent
from worker.checkpoint import Span
from worker.routing import Route


@dataclass(slots=True)
class Item:
    """A decoded event waiting for its model, with where it came from."""

    event: TextEvent
    route: Route
    tp: TopicPartition
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int
    received: float
    span: Span | None = None
