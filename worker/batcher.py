"""Micro-batching: up to `max_batch` items or `max_wait_ms` after the first, within a token budget.

Knows nothing of Kafka, models or Redis; the clock is injected so tests do not sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class Batcher(Generic[T]):
    max_batch: int
    max_wait_ms: float
    max_tokens: int
    clock: Callable[[], float] = time.monotonic
    _items: list[T] = field(default_factory=list)
    _tokens: int = 0
    _first_at: float | None = None

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, tokens: int) -> None:
        if not self._items:
            self._first_at = self.clock()
        self._items.append(item)
        self._tokens += tokens

    def would_overflow(self, tokens: int) -> bool:
        """Adding this item would exceed the token budget of a non-empty batch."""
        return bool(self._items) and self._tokens + tokens > self.max_tokens

    def deadline(self) -> float | None:
        if self._first_at is None:
            return None
        return self._first_at + self.max_wait_ms / 1000.0

    def ready(self) -> bool:
        """Full (count or tokens), or the deadline after the first item has passed."""
        if not self._items:
            return False
        if len(self._items) >= self.max_batch or self._tokens >= self.max_tokens:
            return True
        deadline = self.deadline()
        return deadline is not None and self.clock() >= deadline

    def waited_s(self) -> float:
        return 0.0 if self._first_at is None else self.clock() - self._first_at

    def take(self) -> list[T]:
        items, self._items, self._tokens, self._first_at = self._items, [], 0, None
        return items


def estimate_tokens(text: str, pair: str | None, max_length: int) -> int:
    """Cheap token estimate for budgeting: BERT-Chinese splits CJK text about one token per
    character; capped at the model's max length (inputs are truncated there)."""
    return min(len(text) + (len(pair) + 1 if pair else 0) + 2, max_length)
