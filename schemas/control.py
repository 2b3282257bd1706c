"""Control-topic commands (hot swap, rollback) and their optional HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter


class _Signed(BaseModel):
    signature: str | None = None

    def signing_payload(self) -> bytes:
        return self.model_dump_json(exclude={"signature"}).encode()

    def signed(self, key: str) -> _Signed:
        sig = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"signature": sig})

    def verify(self, key: str) -> bool:
        if not self.signature:
            return False
        expected = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)


class SwapModel(_Signed):
    """Make `version` the active version of `model` in every worker."""

    type: Literal["swap"] = "swap"
    schema_version: int = 1
    model: str
    version: str
    sha256: str
    requested_at_ms: int
    requested_by: str = ""
    previous: str | None = None


class Rollback(_Signed):
    """Return `model` to the version active before the last swap."""

    type: Literal["rollback"] = "rollback"
    schema_version: int = 1
    model: str
    requested_at_ms: int
    requested_by: str = ""


ControlMessage = Annotated[SwapModel | Rollback, Field(discriminator="type")]
control_adapter: TypeAdapter[SwapModel | Rollback] = TypeAdapter(ControlMessage)
