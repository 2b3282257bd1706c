"""Drift figures: a version's reference (stored with its card) and a worker's window of them.

The same fixed text-length buckets and low-margin rule are used when the reference is made
(trainer: dev texts; init/import: probe texts) and when a worker counts the stream, so the
two distributions compare bucket for bucket.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

# text length in characters: [0,8) [8,16) [16,32) [32,64) [64,128) [128,256) [256,inf)
LENGTH_EDGES: tuple[int, ...] = (8, 16, 32, 64, 128, 256)
LENGTH_BUCKETS = len(LENGTH_EDGES) + 1
LOW_MARGIN = 0.2  # top-1 minus top-2 probability under this is a low-margin answer
# Default alert thresholds (deploy/prometheus/alerts.yml, docs/operations.md): a figure over
# its threshold, with at least MIN_WINDOW_EVENTS answers in the window, is drift.
THRESHOLDS: dict[str, float] = {
    "label_psi": 0.25,
    "length_psi": 0.25,
    "top1_drop": 0.10,
    "low_margin_rise": 0.15,
    "truncated_share": 0.05,
    "dead_letter_share": 0.01,
}
MIN_WINDOW_EVENTS = 200


def length_bucket(chars: int) -> int:
    return bisect_right(LENGTH_EDGES, chars)


def margin(scores: Sequence[tuple[str, int, float]]) -> float:
    """Top-1 minus top-2 probability of a prediction's (label, id, score) list, best first."""
    if len(scores) < 2:
        return 1.0
    return scores[0][2] - scores[1][2]


class DriftReference(BaseModel):
    """What a version's answers look like on the texts it was made for."""

    source: str  # "dev" (trainer) | "probes" (init, import)
    texts: int
    label_shares: list[float]  # per label id
    length_shares: list[float]  # per LENGTH_EDGES bucket
    mean_top1: float
    low_margin_share: float


class DriftSnapshot(BaseModel):
    """One model's drift figures over the worker's window (in heartbeats)."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    window_events: int = 0
    label_psi: float | None = None  # None: the version has no reference
    length_psi: float | None = None
    label_shares: dict[str, float] = Field(default_factory=dict)
    mean_top1: float | None = None
    reference_mean_top1: float | None = None
    low_margin_share: float | None = None
    reference_low_margin_share: float | None = None
    truncated_share: float | None = None
    dead_letter_share: float | None = None
    reference_source: str | None = None

    @property
    def top1_drop(self) -> float | None:
        if self.mean_top1 is None or self.reference_mean_top1 is None:
            return None
        return self.reference_mean_top1 - self.mean_top1

    @property
    def low_margin_rise(self) -> float | None:
        if self.low_margin_share is None or self.reference_low_margin_share is None:
            return None
        return self.low_margin_share - self.reference_low_margin_share

    def figures(self) -> dict[str, float | None]:
        """Every figure that has a default threshold, by the threshold's name."""
        return {name: getattr(self, name) for name in THRESHOLDS}

    def over(self, min_events: int = MIN_WINDOW_EVENTS) -> list[str]:
        """The figures over their default threshold (none while the window is too small)."""
        if self.window_events < min_events:
            return []
        return [k for k, v in self.figures().items() if v is not None and v > THRESHOLDS[k]]


def shares(counts: Sequence[float]) -> list[float]:
    total = sum(counts)
    return [c / total if total else 0.0 for c in counts]


def build_reference(
    source: str,
    num_labels: int,
    label_ids: Sequence[int],
    top1: Sequence[float],
    margins: Sequence[float],
    lengths: Sequence[int],
) -> DriftReference:
    """The reference figures of predictions on known texts."""
    labels = [0.0] * num_labels
    for i in label_ids:
        labels[i] += 1
    buckets = [0.0] * LENGTH_BUCKETS
    for n in lengths:
        buckets[length_bucket(n)] += 1
    count = len(label_ids)
    return DriftReference(
        source=source,
        texts=count,
        label_shares=shares(labels),
        length_shares=shares(buckets),
        mean_top1=sum(top1) / count if count else 0.0,
        low_margin_share=sum(1 for m in margins if m < LOW_MARGIN) / count if count else 0.0,
    )
