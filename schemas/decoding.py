"""Decode and validate one Kafka record into a TextEvent, or say why it cannot be one.

One validating pass from the record's bytes (`schemas.strictjson`, shared with the decoders of
every other topic kind in `schemas.records`), then the `TextEvent` contract. Refused:
anything UTF-8 cannot carry (invalid bytes, lone surrogate escapes such as ``"\\ud800"``
anywhere: text, text_pair, id, metadata keys and values), NaN/Infinity literals and numbers
that overflow a double, nesting deeper than `MAX_DEPTH`, and text with nothing visible in it
(NUL, zero-width and other format characters, whitespace).

Policies (docs/worker.md, "What the worker refuses"):
- duplicate keys: the last one wins (RFC 8259 §4 leaves it open; orjson, Python's json and
  JavaScript all do this);
- integers beyond the 64-bit range are read as the nearest double (RFC 8259 §6: interoperable
  numbers are IEEE doubles), so every accepted event serialises again.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas.deadletter import ErrorKind
from schemas.events import TextEvent
from schemas.strictjson import MAX_DEPTH, Refused, errors_line, parse_bounded, too_deep

__all__ = ["MAX_DEPTH", "Rejected", "decode_event", "has_visible"]
# Letters that render as nothing (Hangul fillers, braille blank): not in a C* or Z* category.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")


@dataclass(frozen=True, slots=True)
class Rejected:
    kind: ErrorKind
    message: str


def decode_event(value: bytes | None, max_bytes: int) -> TextEvent | Rejected:
    """Parse a record value. Never raises: bad input becomes a `Rejected` with a reason."""
    if value is None:
        return Rejected(ErrorKind.TOMBSTONE, "null value (tombstone); nothing to classify")
    payload = parse_bounded(value, max_bytes)
    if isinstance(payload, Refused):
        return Rejected(ErrorKind(payload.kind), payload.message)
    if not isinstance(payload, dict):
        return Rejected(ErrorKind.SCHEMA, f"expected a JSON object, got {type(payload).__name__}")
    text = payload.get("text")
    if "text" not in payload or (isinstance(text, str) and not has_visible(text)):
        return Rejected(ErrorKind.EMPTY_TEXT, _empty_reason(payload))
    metadata = payload.get("metadata")
    if too_deep(metadata):
        return Rejected(ErrorKind.SCHEMA, f"metadata nests deeper than {MAX_DEPTH} levels")
    try:
        return TextEvent.model_validate(payload)
    except ValidationError as exc:
        return Rejected(ErrorKind.SCHEMA, errors_line(exc))


def has_visible(text: str) -> bool:
    """True when `text` has a character that is not whitespace, control, format (zero-width
    and the like), unassigned, surrogate or an invisible letter. Stops at the first one."""
    for ch in text:
        if ch.isspace() or ch in _INVISIBLE_LETTERS:
            continue
        if unicodedata.category(ch)[0] not in "CZ":
            return True
    return False


def nests_too_deep(value: Any) -> bool:
    """Whether a parsed JSON value nests objects and arrays more than `MAX_DEPTH` levels below
    its top (what `decode_event` refuses in an event's metadata)."""
    return too_deep(value, 0)


def _empty_reason(payload: dict[str, Any]) -> str:
    if "text" not in payload:
        return "missing field 'text'" + ("; id: Field required" if "id" not in payload else "")
    return "text is empty or has no visible character (only whitespace, control or format)"
