"""Dead letters: messages that could not be classified, with the reason and the raw bytes."""

from __future__ import annotations

import base64
from enum import StrEnum

from pydantic import BaseModel


class ErrorKind(StrEnum):
    """The step that failed for this event (docs/worker.md lists what each one means)."""

    DECODE = "decode"  # bytes are not valid UTF-8 / JSON, or hold what UTF-8 cannot carry
    SCHEMA = "schema"  # JSON but not a TextEvent
    EMPTY_TEXT = "empty_text"  # no visible character
    TOO_LARGE = "too_large"
    TOMBSTONE = "tombstone"  # null value
    NO_ROUTE = "no_route"
    CACHE_KEY = "cache_key"  # the cache key could not be computed
    INFERENCE = "inference"  # the model failed on this event alone
    OUTPUT = "output"  # the labelled event could not be built or serialised
    PUBLISH = "publish"  # the broker refused the labelled event for good (e.g. too large)


class DeadLetter(BaseModel):
    schema_version: int = 1
    kind: ErrorKind
    message: str
    key_b64: str | None = None
    value_b64: str | None = None
    source_topic: str
    source_partition: int
    source_offset: int
    event_id: str | None = None
    worker_id: str = ""
    time_ms: int = 0

    @staticmethod
    def encode_bytes(raw: bytes | None) -> str | None:
        return None if raw is None else base64.b64encode(raw).decode("ascii")

    def value_bytes(self) -> bytes | None:
        return None if self.value_b64 is None else base64.b64decode(self.value_b64)

    def key_bytes(self) -> bytes | None:
        return None if self.key_b64 is None else base64.b64decode(self.key_b64)

    @property
    def where(self) -> str:
        return f"{self.source_topic}[{self.source_partition}]@{self.source_offset}"
