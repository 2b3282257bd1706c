"""Trainer-service messages: jobs in, progress and results out, feedback of corrected labels."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.signing import Signed


class TrainJob(Signed):
    """A training job. Paths are relative to the trainer's data root (or inside it). A job
    with `promote: true` must be signed with the control key, like a control command."""

    model_config = ConfigDict(protected_namespaces=())

    job_id: str
    model: str
    train: str
    dev: str
    test: str | None = None
    base_version: str | None = None
    base_dir: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    promote: bool = False


class TrainResult(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    job_id: str
    status: Literal["started", "progress", "succeeded", "failed", "rejected", "invalid"]
    model: str | None = None
    version: str | None = None
    metrics: dict[str, Any] = Field(default_factory=dict)
    promoted: bool = False
    error: str | None = None
    at_ms: int = 0


class Feedback(BaseModel):
    """A corrected label for a text, from a human or a downstream system."""

    model_config = ConfigDict(protected_namespaces=())

    id: str
    model: str | None = None
    text: str = Field(min_length=1)
    text_pair: str | None = None
    label: str | int
    # "review": a person's answer to a review request (`streamclf review`); weighted in rounds
    source: str | None = Field(default=None, max_length=64)
