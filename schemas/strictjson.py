"""One bounded pass from a record's bytes to JSON values, shared by every decoder.

The size is checked before parsing; orjson refuses what UTF-8 cannot carry (invalid bytes,
lone surrogate escapes), NaN/Infinity, numbers that overflow a double and a byte order mark,
and stops at 1024 levels without Python recursion; `too_deep` then bounds nesting to
`MAX_DEPTH` (its own recursion stops there). Integers beyond 64 bits are read as the nearest
double (RFC 8259 §6), so whatever is accepted serialises again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ValidationError

MAX_DEPTH = 32  # nesting of objects and arrays; orjson itself stops at 1024
_CONTAINERS = (dict, list)  # what orjson.loads builds for objects and arrays


@dataclass(frozen=True, slots=True)
class Refused:
    """Why bytes are not JSON we accept: `too_large` or `decode` (dead-letter kinds too)."""

    kind: Literal["too_large", "decode"]
    message: str


def parse_bounded(value: bytes, max_bytes: int) -> Any:
    """The JSON value of `value`, or a `Refused`. Never raises."""
    if len(value) > max_bytes:
        return Refused("too_large", f"value is {len(value)} bytes; limit is {max_bytes}")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return Refused("decode", f"not valid UTF-8 JSON: {exc}")


def too_deep(value: Any, depth: int = 1) -> bool:
    """True when objects and arrays in `value` nest deeper than `MAX_DEPTH` (a scalar: 0)."""
    if type(value) not in _CONTAINERS:
        return False
    if depth > MAX_DEPTH:
        return True
    for child in value.values() if type(value) is dict else value:
        if type(child) in _CONTAINERS and too_deep(child, depth + 1):
            return True
    return False


def printable(text: str, limit: int = 500) -> str:
    """`text` safe for one log line: non-printable characters escaped, cut at `limit`."""
    out = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def errors_line(exc: ValidationError, limit: int = 500) -> str:
    """A pydantic error as one line: `field.path: message; ...` (input values left out)."""
    return printable(
        "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        ),
        limit,
    )
