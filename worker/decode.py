"""Decode and validate one Kafka record into a TextEvent, or say why it cannot be one."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from schemas.deadletter import ErrorKind
from schemas.events import TextEvent


@dataclass(frozen=True)
class Rejected:
    kind: ErrorKind
    message: str


def decode_event(value: bytes | None, max_bytes: int) -> TextEvent | Rejected:
    """Parse a record value. Never raises: bad input becomes a `Rejected` with a reason."""
    if value is None:
        return Rejected(ErrorKind.TOMBSTONE, "null value (tombstone); nothing to classify")
    if len(value) > max_bytes:
        return Rejected(ErrorKind.TOO_LARGE, f"value is {len(value)} bytes; limit is {max_bytes}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejected(ErrorKind.DECODE, f"not valid UTF-8: {exc}")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        return Rejected(ErrorKind.DECODE, f"not JSON: {exc}")
    if not isinstance(payload, dict):
        return Rejected(ErrorKind.SCHEMA, f"expected a JSON object, got {type(payload).__name__}")
    text_value = payload.get("text")
    if isinstance(text_value, str) and not text_value.strip():
        return Rejected(ErrorKind.EMPTY_TEXT, "text is empty or whitespace only")
    try:
        return TextEvent.model_validate(payload)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
        kind = ErrorKind.EMPTY_TEXT if "text" not in payload else ErrorKind.SCHEMA
        if "text" not in payload:
            errors = "missing field 'text'" + (f"; {errors}" if "id" not in payload else "")
        return Rejected(kind, errors)
