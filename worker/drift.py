"""Drift of one model's stream from its active version's reference, over a sliding window.

Counted, not stored: each event adds to the current batch's counters (O(1), no allocation);
`end_batch` appends them as one chunk and drops the oldest chunks once the window holds more
than `window_events` without them. The window counts events, not time (tests need no clock).

Distributions (labels, text-length buckets) are compared with the population stability index,
PSI = sum((p - q) * ln(p / q)) over the bins, q the reference share, p the window's, both
floored at `EPSILON`: it is additive per class (a class's own term says which one moved), has
the widely used rule of thumb (< 0.1 stable, 0.1-0.25 moderate, > 0.25 shifted) and needs no
second model.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from schemas.drift import (
    LENGTH_BUCKETS,
    LOW_MARGIN,
    DriftReference,
    DriftSnapshot,
    length_bucket,
)

EPSILON = 1e-4
WINDOW_EVENTS = 1000


def psi(observed: list[float], expected: list[float]) -> float:
    """Population stability index of two share vectors of the same length."""
    total = 0.0
    for p, q in zip(observed, expected, strict=True):
        p, q = max(p, EPSILON), max(q, EPSILON)
        total += (p - q) * math.log(p / q)
    return total


@dataclass(slots=True)
class Counts:
    """Counters of one batch (a chunk of the window) or of the whole window."""

    labels: list[int]
    lengths: list[int] = field(default_factory=lambda: [0] * LENGTH_BUCKETS)
    events: int = 0
    top1: float = 0.0
    low_margin: int = 0
    truncated: int = 0
    dead: int = 0

    @classmethod
    def empty(cls, num_labels: int) -> Counts:
        return cls([0] * num_labels)

    def add(self, other: Counts, sign: int = 1) -> None:
        for i, n in enumerate(other.labels):
            self.labels[i] += sign * n
        for i, n in enumerate(other.lengths):
            self.lengths[i] += sign * n
        self.events += sign * other.events
        self.top1 += sign * other.top1
        self.low_margin += sign * other.low_margin
        self.truncated += sign * other.truncated
        self.dead += sign * other.dead


class DriftWindow:
    """One model version's window; a new version starts a new window (`reset`)."""

    def __init__(
        self,
        labels: list[str],
        version: str,
        reference: DriftReference | None,
        window_events: int = WINDOW_EVENTS,
        low_margin: float = LOW_MARGIN,
    ) -> None:
        self.window_events = window_events
        self.low_margin = low_margin
        self.reset(labels, version, reference)

    def reset(self, labels: list[str], version: str, reference: DriftReference | None) -> None:
        if reference is not None and len(reference.label_shares) != len(labels):
            reference = None  # a reference of other labels compares with nothing
        self.labels, self.version, self.reference = labels, version, reference
        self.total = Counts.empty(len(labels))
        self.batch = Counts.empty(len(labels))
        self.chunks: deque[Counts] = deque()

    def observe(
        self, label_id: int, top1: float, margin: float, chars: int, truncated: bool
    ) -> None:
        """One answered event (O(1))."""
        b = self.batch
        if 0 <= label_id < len(b.labels):
            b.labels[label_id] += 1
        b.lengths[length_bucket(chars)] += 1
        b.events += 1
        b.top1 += top1
        b.low_margin += margin < self.low_margin
        b.truncated += truncated

    def dead_letter(self, count: int = 1) -> None:
        """Events of this model that became dead letters (count in the denominator too)."""
        self.batch.dead += count

    def end_batch(self) -> None:
        """Close the batch's chunk and slide the window."""
        chunk = self.batch
        if not chunk.events and not chunk.dead:
            return
        self.batch = Counts.empty(len(self.labels))
        self.chunks.append(chunk)
        self.total.add(chunk)
        while (
            len(self.chunks) > 1 and self._size() - self._size(self.chunks[0]) >= self.window_events
        ):
            self.total.add(self.chunks.popleft(), -1)

    def _size(self, counts: Counts | None = None) -> int:
        c = counts or self.total
        return c.events + c.dead

    def snapshot(self) -> DriftSnapshot:
        t, ref = self.total, self.reference
        n = t.events
        seen = n + t.dead
        snap = DriftSnapshot(version=self.version, window_events=n)
        if seen:
            snap.dead_letter_share = t.dead / seen
        if not n:
            return snap
        label_shares = [c / n for c in t.labels]
        snap.label_shares = dict(zip(self.labels, label_shares, strict=True))
        snap.mean_top1 = t.top1 / n
        snap.low_margin_share = t.low_margin / n
        snap.truncated_share = t.truncated / n
        if ref is not None:
            snap.label_psi = psi(label_shares, ref.label_shares)
            snap.length_psi = psi([c / n for c in t.lengths], ref.length_shares)
            snap.reference_mean_top1 = ref.mean_top1
            snap.reference_low_margin_share = ref.low_margin_share
            snap.reference_source = ref.source
        return snap
