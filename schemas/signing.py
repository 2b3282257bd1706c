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


PLACEHOLDER_KEYS = frozenset({"CHANGE-ME", "CHANGEME", "changeme", "change-me"})
MIN_KEY_CHARS = 16


def check_control_key(key: str | None, required: bool) -> None:
    """Raise ValueError when a control key is required and missing, a placeholder or short."""
    if not required:
        return
    if not key or key.strip() in PLACEHOLDER_KEYS:
        raise ValueError(
            "STREAMCLF_REQUIRE_CONTROL_KEY is set but STREAMCLF_CONTROL_KEY is "
            + ("a placeholder" if key else "not set")
            + "; set a random key (openssl rand -hex 32) on every worker, trainer and operator"
        )
    if len(key) < MIN_KEY_CHARS:
        raise ValueError(f"STREAMCLF_CONTROL_KEY is shorter than {MIN_KEY_CHARS} characters")
