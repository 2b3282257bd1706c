"""Input and output events of the stream."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class TextEvent(BaseModel):
    """A text to classify. Unknown extra fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: str = Field(min_length=1, max_length=256)
    text: str
    text_pair: str | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty or whitespace only")
        return value


class LabelScore(BaseModel):
    label: str
    label_id: int
    score: float


class Timings(BaseModel):
    """Milliseconds spent per stage for the batch this event was in."""

    queue_ms: float = 0.0
    inference_ms: float = 0.0
    batch_size: int = 1


class LabelledEvent(BaseModel):
    """A classified event: the input id, the winning label and the top-k scores."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    schema_version: int = 1
    id: str
    label: str
    label_id: int
    score: float
    scores: list[LabelScore]
    model: str
    version: str
    cached: bool = False
    truncated: bool = False
    source_topic: str
    source_partition: int
    source_offset: int
    metadata: dict[str, Any] | None = None
    timings: Timings | None = None
    worker_id: str | None = None
    produced_at_ms: int | None = None
