"""Issue 6's targets, computed as ratios between figures of the same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from benchmarks.common import Result
from benchmarks.stats import ratio


@dataclass
class Target:
    name: str
    value: float | None  # the measured ratio or figure
    goal: float
    unit: str  # "x" for ratios, "events/s" for absolute
    detail: str

    @property
    def met(self) -> bool | None:
        return None if self.value is None else self.value >= self.goal

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def _pick(results: list[Result], scenario: str, variant_start: str = "") -> Result | None:
    for r in results:
        if r.scenario == scenario and r.variant.startswith(variant_start):
            return r
    return None


def _best(results: list[Result], scenario: str) -> Result | None:
    rows = [r for r in results if r.scenario == scenario and "chars" not in r.settings]
    return max(rows, key=lambda r: r.texts_per_s or 0) if rows else None


def compute(results: list[Result], on_gpu: bool) -> list[Target]:
    e2e = _pick(results, "e2e", "worker, full load")
    ceiling = _best(results, "ceiling")
    seed = _pick(results, "seed")
    tiny = _pick(results, "e2e-tiny", "worker, full load")
    passthrough = _pick(results, "e2e-tiny", "pass-through, full load")
    hits = _pick(results, "cache", "second pass")

    def rate(r: Result | None) -> float | None:
        return r.texts_per_s if r else None

    targets = [
        Target(
            "e2e / ceiling",
            ratio(rate(e2e), rate(ceiling)),
            0.8 if on_gpu else 0.9,
            "x",
            f"{_fmt(rate(e2e))} events/s vs {_fmt(rate(ceiling))} texts/s"
            + (f" ({ceiling.variant})" if ceiling else ""),
        ),
        Target(
            "e2e / seed",
            ratio(rate(e2e), rate(seed)),
            3.0,
            "x",
            f"{_fmt(rate(e2e))} vs {_fmt(rate(seed))}",
        ),
        Target(
            "e2e-tiny / pass-through",
            ratio(rate(tiny), rate(passthrough)),
            0.5,
            "x",
            f"{_fmt(rate(tiny))} vs {_fmt(rate(passthrough))} events/s",
        ),
        Target("cache hits", rate(hits), 10_000.0, "events/s", f"{_fmt(rate(hits))} events/s"),
    ]
    return targets


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
