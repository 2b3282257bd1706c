"""Control-topic commands (hot swap, rollback, shadow, canary), their HMAC signature and order.

Every command carries a `sequence` (per model, increasing; handed out by the model store) that
the signature covers. A worker keeps the sequence of the command in force for each model and
ignores any command at or below it, so a recorded signed command cannot be replayed to undo a
later one. Commands published before sequences existed are ordered by `requested_at_ms`.

Every command has a `type`; a reader that meets a type it does not know (a newer writer's)
skips it with a log line (`schemas.records.decode_control`: reason `unknown_type`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, TypeAdapter

from schemas.signing import Signed


class ControlCommand(Signed):
    """Base of every control command; subclasses define `type`, `model`, `requested_at_ms`."""

    sequence: int | None = None
    if TYPE_CHECKING:  # declared by every subclass, after its `type` (keeps signed payloads)
        model: str
        requested_at_ms: int

    @property
    def order(self) -> int:
        """Where the command stands among this model's commands (higher is newer)."""
        return self.sequence if self.sequence is not None else self.requested_at_ms

    def unsigned_fields(self) -> set[str]:
        # An unset sequence is left out, so signatures made before it existed still verify.
        return {"signature"} | ({"sequence"} if self.sequence is None else set())

    def record_key(self) -> str:
        """The control topic's record key: compaction keeps the latest command per key."""
        return self.model


class SwapModel(ControlCommand):
    """Make `version` the active version of `model` in every worker."""

    type: Literal["swap"] = "swap"
    schema_version: int = 1
    model: str
    version: str
    sha256: str
    requested_at_ms: int
    requested_by: str = ""
    previous: str | None = None


class Rollback(ControlCommand):
    """Return `model` to the version active before the last swap."""

    type: Literal["rollback"] = "rollback"
    schema_version: int = 1
    model: str
    requested_at_ms: int
    requested_by: str = ""


class _Rollout(ControlCommand):
    """Start (or with `stop`, end) a rollout of `version` beside the active version of `model`."""

    schema_version: int = 1
    model: str
    version: str = ""
    sha256: str = ""
    fraction: float = Field(default=0.0, ge=0.0, le=1.0)
    stop: bool = False
    requested_at_ms: int
    requested_by: str = ""

    def record_key(self) -> str:
        return f"{self.model}:{self.type}"  # type: ignore[attr-defined]


class ShadowModel(_Rollout):
    """Classify the sampled `fraction` of events (by hash of id) with `version` too; the
    results go to `IN.shadow`, never to the labelled topic."""

    type: Literal["shadow"] = "shadow"


class CanaryModel(_Rollout):
    """Serve `version` for the `fraction` of keys whose hash falls under it (events without a
    key by id); a newer swap of the model completes it, a stop ends it."""

    type: Literal["canary"] = "canary"


RolloutCommand = ShadowModel | CanaryModel
RolloutKind = Literal["shadow", "canary"]  # a rollout command's `type`
AnyControl = SwapModel | Rollback | ShadowModel | CanaryModel
ControlMessage = Annotated[AnyControl, Field(discriminator="type")]
control_adapter: TypeAdapter[AnyControl] = TypeAdapter(ControlMessage)
CONTROL_TYPES = frozenset({"swap", "rollback", "shadow", "canary"})
