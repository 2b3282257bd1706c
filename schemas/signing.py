"""HMAC-SHA256 signatures over a message's JSON (every field but the signature itself)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Self

from pydantic import BaseModel


class Signed(BaseModel):
    """A message that can carry an HMAC-SHA256 `signature` made with a shared key."""

    signature: str | None = None

    def unsigned_fields(self) -> set[str]:
        """Fields left out of the signed payload (always the signature)."""
        return {"signature"}

    def signing_payload(self) -> bytes:
        return self.model_dump_json(exclude=self.unsigned_fields()).encode()

    def signed(self, key: str) -> Self:
        sig = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return self.model_copy(update={"signature": sig})

    def verify(self, key: str) -> bool:
        if not self.signature:
            return False
        expected = hmac.new(key.encode(), self.signing_payload(), hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, self.signature)
