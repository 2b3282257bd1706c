"""HMAC-SHA256 signatures of messages made with the shared control key.

Two places carry one (docs/operations.md, "Signing"):
- the record header `streamclf-signature`: the hex HMAC of the record's value bytes exactly as
  stored, checked before anything of the value is parsed (`sign_value`, `verify_value`);
- the `signature` field: the HMAC of the message's JSON without that field (`Signed`), the
  older form, still written for readers that know only it and accepted without a header.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Self

from pydantic import BaseModel

SIGNATURE_HEADER = "streamclf-signature"


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


def sign_value(key: str, value: bytes) -> bytes:
    """The `streamclf-signature` header value of a record value: its hex HMAC-SHA256."""
    return hmac.new(key.encode(), value, hashlib.sha256).hexdigest().encode()


def verify_value(key: str, value: bytes, signature: bytes) -> bool:
    """True when `signature` (a header value) is the HMAC of `value` under `key`."""
    return hmac.compare_digest(sign_value(key, value), signature)


def header_signature(headers: Iterable[tuple[str, bytes | None]] | None) -> bytes | None:
    """The value of the last `streamclf-signature` header (None: the record has none)."""
    found = None
    for name, value in headers or ():
        if name == SIGNATURE_HEADER:
            found = value if isinstance(value, bytes) else b""
    return found


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
