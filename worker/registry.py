"""Which version of each model is active in this worker, and hot swaps between versions.

A swap loads the new version beside the old one in a loader thread, checks every file against
the version's card (`modelstore.integrity`; a mismatch is counted in
`streamclf_store_integrity_failures_total`), runs a warm-up batch, and only then makes it
current. The model's pipeline picks the current engine at the start of each batch, so the
switch happens between two batches. The old engine is released by the pipeline once it no
longer runs a batch on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from modelstore.exceptions import IntegrityError
from modelstore.store import ModelStore
from schemas.engine import EngineChoice
from schemas.status import SwapResult
from worker import metrics
from worker.cache import engine_identity
from worker.inference import InferenceEngine

log = logging.getLogger(__name__)

EngineFactory = Callable[[str, str, str | None], InferenceEngine]


@dataclass
class Active:
    version: str
    engine: InferenceEngine
    identity: str = ""  # the cache identity: version + files' digest + output settings

    def __post_init__(self) -> None:
        self.identity = self.identity or self.version


@dataclass
class ModelRegistry:
    store: ModelStore
    factory: EngineFactory
    _active: dict[str, Active] = field(default_factory=dict)
    _history: dict[str, list[str]] = field(default_factory=dict)
    _retired: dict[str, list[InferenceEngine]] = field(default_factory=dict)
    swaps: list[SwapResult] = field(default_factory=list)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _loader: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="loader")
    )

    def current(self, model: str) -> Active:
        return self._active[model]

    def versions(self) -> dict[str, str]:
        return {name: a.version for name, a in self._active.items()}

    def engines(self) -> dict[str, EngineChoice]:
        """Model -> the backend its active version runs on, and why."""
        found = {name: getattr(a.engine, "choice", None) for name, a in self._active.items()}
        return {name: choice for name, choice in found.items() if choice is not None}

    def take_retired(self, model: str) -> list[InferenceEngine]:
        return self._retired.pop(model, [])

    def retire(self, model: str, engine: InferenceEngine) -> None:
        """Hand an engine that may be mid-batch to the pipeline, which releases it when idle."""
        self._retired.setdefault(model, []).append(engine)

    async def load(self, model: str, version: str, sha256: str | None) -> Active:
        """Load, check and warm a version beside the active one (for a shadow or canary)."""
        return await self._load(model, version, sha256)

    async def _load(self, model: str, version: str, sha256: str | None) -> Active:
        """Load, check (every file against the card; the weights against `sha256` too when a
        command gives it) and warm a version. A file that differs is counted and raised."""

        def load() -> Active:
            engine = self.factory(model, version, sha256)
            engine.warm_up()
            return Active(version, engine, engine_identity(engine, version))

        try:
            return await asyncio.get_running_loop().run_in_executor(self._loader, load)
        except IntegrityError:
            metrics.STORE_INTEGRITY_FAILURES.labels(model, version).inc()
            raise

    async def start(self, model: str, version: str | None = None, sha256: str | None = None) -> str:
        """Load the first version of a model (the given one, else the store's default)."""
        version = version or self.store.default_version(model)
        self._set(model, await self._load(model, version, sha256))
        return version

    def _set(self, model: str, new: Active) -> None:
        version = new.version
        old = self._active.get(model)
        if old is not None:
            self._retired.setdefault(model, []).append(old.engine)
            self._history.setdefault(model, []).append(old.version)
            metrics.ACTIVE_VERSION.labels(model, old.version).set(0)
            metrics.record_engine(model, old.version, getattr(old.engine, "choice", None), False)
        self._active[model] = new
        metrics.ACTIVE_VERSION.labels(model, version).set(1)
        metrics.record_engine(model, version, getattr(new.engine, "choice", None), True)
        metrics.MODEL_VERSION.info({m: a.version for m, a in self._active.items()})

    async def swap(self, model: str, version: str, sha256: str | None) -> SwapResult:
        """Load, check and warm `version`, then make it current; keep the old one on failure."""
        lock = self._locks.setdefault(model, asyncio.Lock())
        async with lock:
            started = time.perf_counter()
            current = self._active.get(model)
            if current is not None and current.version == version:
                return self._record(SwapResult(model=model, version=version, ok=True))
            try:
                loaded = await self._load(model, version, sha256)
            except Exception as exc:
                metrics.SWAP_FAILURES.labels(model).inc()
                log.error(
                    "swap of %s to %s failed; keeping %s: %s",
                    model,
                    version,
                    current.version if current else None,
                    exc,
                )
                return self._record(
                    SwapResult(
                        model=model,
                        version=version,
                        ok=False,
                        error=f"{type(exc).__name__}: {exc}",
                        duration_s=time.perf_counter() - started,
                    )
                )
            self._set(model, loaded)
            took = time.perf_counter() - started
            metrics.SWAPS.labels(model).inc()
            metrics.SWAP_SECONDS.labels(model).observe(took)
            log.info("swapped %s to %s in %.2fs", model, version, took)
            return self._record(SwapResult(model=model, version=version, ok=True, duration_s=took))

    async def rollback(self, model: str) -> SwapResult:
        """Swap back to the version active before the current one."""
        previous = self.previous(model)
        if previous is None:
            return self._record(
                SwapResult(
                    model=model, version="?", ok=False, error="no previous version to roll back to"
                )
            )
        return await self.swap(model, previous, None)

    def previous(self, model: str) -> str | None:
        history = self._history.get(model) or []
        return history[-1] if history else None

    def _record(self, result: SwapResult) -> SwapResult:
        result.at_ms = int(time.time() * 1000)
        self.swaps = [*self.swaps[-19:], result]
        return result

    def shutdown(self) -> None:
        self._loader.shutdown(wait=False, cancel_futures=True)
