"""The targets (issue 14, after issue 6), computed as ratios between figures of the same run.

- e2e(auto) >= 5x the seed's pipeline one text at a time on CPU (3x on a GPU);
- e2e >= 0.9x (GPU 0.8x) the ceiling of the backend and precision the worker chose (the
  ceiling batches as the worker does: length-sorted, the same padded-token budget);
- cache hits >= 0.8x the raw pass-through, and <= 60 us of worker CPU per event;
- e2e-tiny: worker CPU per event <= 1.2x the tiny ceiling's CPU per text + 60 us (issue 21:
  the broker and the load generator share the cores with the worker, so events/s against a
  ceiling that had both cores is informational), and >= 0.5x the pass-through.
The e2e run pinned to the fastest backend (whatever its agreement) gets the first two as
informational figures: what `auto` gives a model on which that backend agrees with fp32.
"""

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
    unit: str  # "x" for ratios, else the unit of an absolute figure
    detail: str
    op: str = ">="  # ">=" or "<="

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.op == ">=" else self.value <= self.goal

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def _pick(results: list[Result], scenario: str, variant_start: str = "") -> Result | None:
    for r in results:
        if r.scenario == scenario and r.variant.startswith(variant_start):
            return r
    return None


def ceiling_of(results: list[Result], preset: str, backend: str | None, precision: str | None):
    """The best ceiling row of this preset on this backend/precision (any batch size, the
    recheck after e2e included)."""
    rows = [
        r
        for r in results
        if r.scenario == "ceiling"
        and r.preset == preset
        and "chars" not in r.settings
        and (backend is None or r.settings.get("backend", "torch") == backend)
        and (precision is None or r.settings.get("dtype") == precision)
    ]
    return max(rows, key=lambda r: r.texts_per_s or 0) if rows else None


def _rate(r: Result | None) -> float | None:
    return r.texts_per_s if r else None


def _cpu(r: Result | None) -> float | None:
    return r.extra.get("cpu_us_per_event") if r else None


TINY_CPU_FACTOR, TINY_CPU_OVERHEAD_US = 1.2, 60.0


def _cpu_bound(ceiling: Result | None) -> float | None:
    """The e2e-tiny CPU budget per event: 1.2x the ceiling's CPU per text + 60 us."""
    per_text = ceiling.extra.get("cpu_us_per_text") if ceiling else None
    return None if per_text is None else TINY_CPU_FACTOR * per_text + TINY_CPU_OVERHEAD_US


def _accuracy(r: Result | None) -> str:
    """The chosen backend's accuracy change on labelled probes, from the worker's heartbeat."""
    choice = r.extra.get("engine_choice", {}) if r else {}
    delta = choice.get("accuracy_delta")
    if delta is None:
        return ""
    return (
        f", accuracy {delta * 100:+.2f} points vs fp32 on {choice.get('labelled_probes')} dev texts"
    )


def compute(results: list[Result], on_gpu: bool) -> list[Target]:
    e2e = _pick(results, "e2e", "worker, full load")
    seed = _pick(results, "seed")
    tiny = _pick(results, "e2e-tiny", "worker, full load")
    passthrough = _pick(results, "e2e-tiny", "pass-through, full load")
    hits = _pick(results, "cache", "second pass")
    pinned = _pick(results, "e2e", "worker pinned, full load")
    pinned_spec = (
        (pinned.settings.get("backend"), pinned.settings.get("precision"))
        if pinned
        else (None, None)
    )
    pinned_ceiling = ceiling_of(results, pinned.preset, *pinned_spec) if pinned else None
    chosen = (e2e.settings.get("backend"), e2e.settings.get("precision")) if e2e else (None, None)
    ceiling = ceiling_of(results, e2e.preset, *chosen) if e2e else None
    tiny_chosen = (tiny.settings.get("backend"), tiny.settings.get("precision")) if tiny else None
    tiny_ceiling = ceiling_of(results, "tiny", *tiny_chosen) if tiny_chosen else None
    return [
        Target(
            "e2e (auto) / seed",
            ratio(_rate(e2e), _rate(seed)),
            3.0 if on_gpu else 5.0,
            "x",
            f"{_fmt(_rate(e2e))} events/s ({_spec(chosen)}{_accuracy(e2e)}) vs "
            f"{_fmt(_rate(seed))} texts/s",
        ),
        Target(
            "e2e / ceiling of the chosen backend",
            ratio(_rate(e2e), _rate(ceiling)),
            0.8 if on_gpu else 0.9,
            "x",
            f"{_fmt(_rate(e2e))} events/s vs {_fmt(_rate(ceiling))} texts/s"
            + (f" ({ceiling.variant})" if ceiling else ""),
        ),
        Target(
            "e2e pinned to the fastest backend / seed (informational)",
            ratio(_rate(pinned), _rate(seed)),
            3.0 if on_gpu else 5.0,
            "x",
            f"{_fmt(_rate(pinned))} events/s ({_spec(pinned_spec)}) vs {_fmt(_rate(seed))} texts/s",
        ),
        Target(
            "e2e pinned / its ceiling (informational)",
            ratio(_rate(pinned), _rate(pinned_ceiling)),
            0.8 if on_gpu else 0.9,
            "x",
            f"{_fmt(_rate(pinned))} events/s vs {_fmt(_rate(pinned_ceiling))} texts/s",
        ),
        Target(
            "cache hits / pass-through",
            ratio(_rate(hits), _rate(passthrough)),
            0.8,
            "x",
            f"{_fmt(_rate(hits))} vs {_fmt(_rate(passthrough))} events/s",
        ),
        Target(
            "cache hits: worker CPU per event",
            _cpu(hits),
            60.0,
            "us",
            f"pass-through {_fmt(_cpu(passthrough))} us, tiny worker {_fmt(_cpu(tiny))} us, "
            f"e2e worker {_fmt(_cpu(e2e))} us",
            op="<=",
        ),
        Target(
            "e2e-tiny: worker CPU per event",
            _cpu(tiny) if _cpu_bound(tiny_ceiling) is not None else None,
            round(_cpu_bound(tiny_ceiling) or 0.0, 1),
            "us",
            f"tiny ceiling {_fmt(_ceiling_cpu(tiny_ceiling))} us CPU/text"
            + (f" ({tiny_ceiling.variant})" if tiny_ceiling else "")
            + f"; bound {TINY_CPU_FACTOR:g}x + {TINY_CPU_OVERHEAD_US:g} us",
            op="<=",
        ),
        Target(
            "e2e-tiny / tiny ceiling (informational)",
            ratio(_rate(tiny), _rate(tiny_ceiling)),
            0.9,
            "x",
            f"{_fmt(_rate(tiny))} events/s vs {_fmt(_rate(tiny_ceiling))} texts/s",
        ),
        Target(
            "e2e-tiny / pass-through",
            ratio(_rate(tiny), _rate(passthrough)),
            0.5,
            "x",
            f"{_fmt(_rate(tiny))} vs {_fmt(_rate(passthrough))} events/s",
        ),
    ]


def _ceiling_cpu(r: Result | None) -> float | None:
    return r.extra.get("cpu_us_per_text") if r else None


def _spec(chosen: tuple[str | None, str | None]) -> str:
    return " ".join(c for c in chosen if c) or "?"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"
