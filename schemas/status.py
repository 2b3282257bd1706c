"""Worker heartbeats published on the status topic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.drift import DriftSnapshot
from schemas.engine import EngineChoice


class SwapResult(BaseModel):
    model: str
    version: str
    ok: bool
    error: str | None = None
    duration_s: float = 0.0
    at_ms: int = 0


class RolloutStatus(BaseModel):
    """A shadow or canary in force in one worker, with what it has done so far."""

    model_config = ConfigDict(protected_namespaces=())

    model: str
    kind: str  # shadow | canary
    version: str
    fraction: float
    loaded: bool = True
    error: str | None = None
    events: int = 0  # shadow: events classified by the candidate; canary: events it served
    agreement: float | None = None  # shadow only: share of them where both labels agree
    requested_at_ms: int = 0


class WorkerStatus(BaseModel):
    schema_version: int = 1
    worker_id: str
    host: str
    pid: int
    at_ms: int
    routes: dict[str, str] = Field(default_factory=dict)  # input topic -> model
    versions: dict[str, str] = Field(default_factory=dict)  # model -> active version
    events_in: int = 0
    events_out: int = 0
    dead_letters: int = 0
    batches: int = 0
    mean_batch_size: float = 0.0
    events_per_s: float = 0.0
    cache_hit_ratio: float = 0.0
    cache_state: str = "off"
    lag: dict[str, int] = Field(default_factory=dict)  # "topic[partition]" -> lag
    last_error: str | None = None
    swaps: list[SwapResult] = Field(default_factory=list)
    rejected_control: int = 0
    control_signed: bool | None = None  # False: this worker accepts unsigned control commands
    rollouts: list[RolloutStatus] = Field(default_factory=list)
    ready: bool = False
    # model -> backend/precision of its active version, agreement with fp32, probe speed
    # (added later: old readers ignore it, old heartbeats read as empty)
    engines: dict[str, EngineChoice] = Field(default_factory=dict)
    # model -> drift of its stream from the active version's reference (added later too)
    drift: dict[str, DriftSnapshot] = Field(default_factory=dict)
