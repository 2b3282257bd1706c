"""Review requests: the events a model is least sure of (or an audit sample), for people."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import LabelScore

ReviewReason = Literal["low_margin", "low_score", "audit"]


class ReviewRequest(BaseModel):
    """One event with the active version's answer and why it is asked about."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    schema_version: int = 1
    id: str
    model: str
    version: str
    text: str
    text_pair: str | None = None
    label: str
    label_id: int
    score: float
    scores: list[LabelScore] = Field(default_factory=list)
    margin: float
    reason: ReviewReason
    source_topic: str
    source_partition: int
    source_offset: int
    worker_id: str | None = None
    at_ms: int = 0


class ReviewAnswer(BaseModel):
    """A reviewer's label for a review request: its `id` (the request's text is looked up) or
    the whole request with a `label` replaced by the right one (`label` may be a name or id)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    id: str = Field(min_length=1, max_length=256)
    label: str | int
    model: str | None = None
    text: str | None = None
    text_pair: str | None = None
