"""What every scenario gets: the preset, device, sizes for this run, the texts, a console."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks import texts as texts_mod
from benchmarks.common import ensure_model, pick_device


@dataclass(frozen=True)
class Sizes:
    """Event and text counts; `quick` sizes keep `--quick` under two minutes."""

    seed_texts: int
    ceiling_texts: int
    ceiling_batch_sizes: tuple[int, ...]
    batching_texts: int
    e2e_events: int
    e2e_rate_seconds: float
    tiny_events: int
    cache_unique: int
    cache_events: int


FULL_CPU = Sizes(100, 64, (8, 32), 48, 1200, 20.0, 2000, 256, 30000)
QUICK = Sizes(40, 96, (16, 32), 32, 400, 6.0, 1000, 64, 8000)
E2E_SECONDS = 30.0  # full-load backlog sized to about this long at the ceiling's rate
FILL_SECONDS = 10.0
FULL_GPU = Sizes(300, 8192, (32, 64, 128, 256, 512), 1024, 20000, 20.0, 10000, 1000, 40000)


@dataclass
class BenchContext:
    preset: str
    device: str = "auto"
    dtype: str = "auto"
    quick: bool = False
    worker_max_batch: int | None = None
    worker_max_batch_tokens: int | None = None
    seed: int = 0
    console: Console = field(default_factory=Console)
    shared: dict[str, Any] = field(default_factory=dict)  # figures scenarios pass on
    engine: str = "auto"  # the worker's STREAMCLF_ENGINE in e2e runs (dtype: STREAMCLF_DTYPE)

    def __post_init__(self) -> None:
        self.device = pick_device(self.device)

    @cached_property
    def sizes(self) -> Sizes:
        if self.quick:
            return QUICK
        return FULL_GPU if self.device.startswith("cuda") else FULL_CPU

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    # Counts after the ceiling scale with its rate, so a loaded machine still finishes.
    def _scaled(self, cap: int, floor: int, seconds: float) -> int:
        rate = self.shared.get("ceiling_texts_per_s", 20.0)
        return int(min(cap, max(floor, rate * seconds)))

    def e2e_events(self) -> int:
        """The full-load backlog: about E2E_SECONDS of work at the ceiling's rate."""
        return self._scaled(self.sizes.e2e_events, 48, E2E_SECONDS)

    def cache_unique(self) -> int:
        return self._scaled(self.sizes.cache_unique, 32, FILL_SECONDS)

    def seed_texts(self) -> int:
        return self._scaled(self.sizes.seed_texts, 20, 8.0)  # the seed is several times slower

    def batching_texts(self) -> int:
        return self._scaled(self.sizes.batching_texts, 16, 5.0)  # ~5x the tokens of the mix

    def resolved_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bf16" if self.on_gpu else "fp32"

    def model_dir(self, preset: str | None = None) -> Path:
        return ensure_model(preset or self.preset)

    def sentences(self, n: int, tag: str = "") -> list[str]:
        """`n` real (or generated) sentences, made unique with `tag` when given."""
        found, source = texts_mod.sentences(n, self.seed)
        self.shared["text_source"] = source
        return texts_mod.unique_texts(found, tag) if tag else found

    def log(self, message: str) -> None:
        self.console.log(message)
