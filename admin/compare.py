"""`models compare`: the evidence a shadow gathered, from `IN.shadow` and the feedback topic.

Pure: takes decoded shadow results and feedback labels, returns a report (a pydantic model, so
`--json` prints exactly what the table shows).
"""

from __future__ import annotations

import statistics
from collections import Counter

from pydantic import BaseModel, Field

from schemas.rollout import ShadowResult


class VersionFigures(BaseModel):
    version: str
    per_class: dict[str, int] = Field(default_factory=dict)
    latency_p50_ms: float | None = None  # model time of the batch each event was in
    latency_p95_ms: float | None = None
    throughput_eps: float | None = None  # events / summed per-event share of model time
    timed_events: int = 0  # events with a model time (cache hits of the active one have none)
    feedback_accuracy: float | None = None


class CompareReport(BaseModel):
    model: str
    candidate: str
    events: int = 0
    duplicates: int = 0  # repeated ids (redelivery after a restart), counted once
    agreement: float | None = None
    confusion: dict[str, dict[str, int]] = Field(default_factory=dict)  # active -> candidate
    active: list[VersionFigures] = Field(default_factory=list)  # one per active version seen
    candidate_figures: VersionFigures | None = None
    feedback_events: int = 0


def _timing(version: str, rows: list[tuple[float, int]], classes: Counter[str]) -> VersionFigures:
    fig = VersionFigures(version=version, per_class=dict(sorted(classes.items())))
    if rows:
        ms = sorted(m for m, _ in rows)
        fig.latency_p50_ms = round(statistics.median(ms), 3)
        fig.latency_p95_ms = round(ms[min(len(ms) - 1, int(0.95 * len(ms)))], 3)
        busy_s = sum(m / max(1, b) for m, b in rows) / 1000
        fig.throughput_eps = round(len(rows) / busy_s, 1) if busy_s > 0 else None
        fig.timed_events = len(rows)
    return fig


def _correct(label: str, label_id: int, truth: str | int) -> bool:
    return label_id == truth if isinstance(truth, int) else label == truth


def build_report(
    model: str, candidate: str, results: list[ShadowResult], feedback: dict[str, str | int]
) -> CompareReport:
    """Agreement, confusion, per-class counts, latency/throughput and feedback accuracy."""
    rows = {r.id: r for r in results if r.model == model and r.candidate_version == candidate}
    seen = [r for r in results if r.model == model and r.candidate_version == candidate]
    report = CompareReport(model=model, candidate=candidate, events=len(rows))
    report.duplicates = len(seen) - len(rows)
    if not rows:
        return report
    unique = list(rows.values())
    report.agreement = round(sum(r.agree for r in unique) / len(unique), 4)
    confusion: dict[str, Counter[str]] = {}
    for r in unique:
        confusion.setdefault(r.active_label, Counter())[r.candidate_label] += 1
    report.confusion = {a: dict(sorted(c.items())) for a, c in sorted(confusion.items())}
    for version in sorted({r.active_version for r in unique}):
        mine = [r for r in unique if r.active_version == version]
        timed = [(r.active_ms, r.active_batch) for r in mine if not r.active_cached]
        fig = _timing(version, timed, Counter(r.active_label for r in mine))
        fig.feedback_accuracy = _accuracy(mine, feedback, active=True)
        report.active.append(fig)
    cand = _timing(
        candidate,
        [(r.candidate_ms, r.candidate_batch) for r in unique],
        Counter(r.candidate_label for r in unique),
    )
    cand.feedback_accuracy = _accuracy(unique, feedback, active=False)
    report.candidate_figures = cand
    report.feedback_events = sum(1 for r in unique if r.id in feedback)
    return report


def _accuracy(
    rows: list[ShadowResult], feedback: dict[str, str | int], active: bool
) -> float | None:
    judged = [r for r in rows if r.id in feedback]
    if not judged:
        return None
    right = sum(
        _correct(
            r.active_label if active else r.candidate_label,
            r.active_label_id if active else r.candidate_label_id,
            feedback[r.id],
        )
        for r in judged
    )
    return round(right / len(judged), 4)
