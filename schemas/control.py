"""Control-topic commands (hot swap, rollback), their HMAC signature and their order.

Every command carries a `sequence` (per model, increasing; handed out by the model store) that
the signature covers. A worker keeps the sequence of the command in force for each model and
ignores any command at or below it, so a recorded signed command cannot be replayed to undo a
later one. Commands published before sequences existed are ordered by `requested_at_ms`.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Annotated, Literal, Self

from pydantic import BaseModel, Field, TypeAdapter


class ControlCommand(BaseModel):
    """Base of every control command; subclasses define `type`, `model`, `requested_at_ms`."""

    signature: str | None = None
    sequence: int | None = None
    if TYPE_CHECKING:  # declared by every subclass, after its `type` (keeps signed payloads)
        model: str
        requested_at_ms: int

    @property
    def order(self) -> int:
        """Where the command stands among this model's commands (higher is newer)."""
        return self.sequence if self.sequence is not None else self.requested_at_ms

    def signing_payload(self) -> bytes:
        # An unset sequence is left out, so signatures made before it existed still verify.
        exclude = {"signature"} | ({"sequence"} if self.sequence is None else set())
        return self.model_dump_json(exclude=exclude).encode()

    def signed(self, key: str) -> Self:
        sig = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"signature": sig})

    def verify(self, key: str) -> bool:
        if not self.signature:
            return False
        expected = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)


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


ControlMessage = Annotated[SwapModel | Rollback, Field(discriminator="type")]
control_adapter: TypeAdapter[SwapModel | Rollback] = TypeAdapter(ControlMessage)
