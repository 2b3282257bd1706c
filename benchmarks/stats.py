"""Small statistics helpers shared by the scenarios (pure Python, no torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation, as numpy's default."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_summary_ms(latencies_s: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    return {
        "p50_ms": percentile(latencies_s, 50) * 1000,
        "p95_ms": percentile(latencies_s, 95) * 1000,
        "p99_ms": percentile(latencies_s, 99) * 1000,
        "max_ms": max(latencies_s) * 1000 if latencies_s else math.nan,
    }


def padding_fraction(batches: Sequence[Sequence[int]]) -> float:
    """Share of padded positions when each batch (a list of token lengths) is padded to its
    longest row."""
    real = sum(sum(batch) for batch in batches)
    padded = sum(len(batch) * max(batch) for batch in batches if batch)
    return 1.0 - real / padded if padded else 0.0


def fifo_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Arrival order, `batch_size` rows each."""
    return [list(lengths[i : i + batch_size]) for i in range(0, len(lengths), batch_size)]


def sorted_budget_batches(
    lengths: Sequence[int], batch_size: int, max_batch_tokens: int
) -> list[list[int]]:
    """As the worker does it: arrival batches of `batch_size`, each sorted by length and cut
    so that `longest * rows <= max_batch_tokens`."""
    out: list[list[int]] = []
    for batch in fifo_batches(lengths, batch_size):
        current: list[int] = []
        for length in sorted(batch):
            if current and max(length, current[-1]) * (len(current) + 1) > max_batch_tokens:
                out.append(current)
                current = []
            current.append(length)
        if current:
            out.append(current)
    return out


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return numerator / denominator


def worker_batches(
    lengths: Sequence[int], max_batch: int, max_batch_tokens: int
) -> list[list[int]]:
    """The worker's two cuts with one setting: the batcher closes an arrival batch at
    `max_batch` rows or when the *sum* of tokens would pass `max_batch_tokens`; the engine
    then sorts it and cuts sub-batches whose *padded* size fits the same budget."""
    arrivals: list[list[int]] = []
    current: list[int] = []
    total = 0
    for length in lengths:
        if current and (len(current) >= max_batch or total + length > max_batch_tokens):
            arrivals.append(current)
            current, total = [], 0
        current.append(length)
        total += length
    if current:
        arrivals.append(current)
    out: list[list[int]] = []
    for batch in arrivals:
        out += sorted_budget_batches(batch, len(batch), max_batch_tokens)
    return out
