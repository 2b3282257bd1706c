"""Shadow results: one per sampled event, on `IN.shadow` (never on the labelled topic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ShadowResult(BaseModel):
    """The active and the candidate version's answer for one event, side by side.

    `*_ms` is the model time of the batch the event was in and `*_batch` that batch's size, so
    a reader can compute both the latency an event saw and the throughput of each version.
    """

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    schema_version: int = 1
    id: str
    model: str
    active_version: str
    candidate_version: str
    active_label: str
    active_label_id: int
    active_score: float
    candidate_label: str
    candidate_label_id: int
    candidate_score: float
    agree: bool
    active_ms: float
    active_batch: int
    active_cached: bool = False
    candidate_ms: float
    candidate_batch: int
    source_topic: str
    source_partition: int
    source_offset: int
    worker_id: str | None = None
    at_ms: int = 0
