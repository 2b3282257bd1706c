"""Judging a swap from worker heartbeats, and releasing a swapped-out engine when idle."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from admin.swapping import evaluate
from schemas.status import SwapResult, WorkerStatus
from worker import pipeline as pipeline_mod
from worker.cache import LruCache
from worker.pipeline import ModelPipeline

NOW = 1_000_000
REQUESTED = NOW - 5_000


def hb(worker: str, version: str, age_s: float = 0.5, swaps: list[SwapResult] | None = None,
       routes: dict[str, str] | None = None) -> WorkerStatus:  # fmt: skip
    return WorkerStatus(
        worker_id=worker,
        host="h",
        pid=1,
        at_ms=NOW - int(age_s * 1000),
        routes=routes if routes is not None else {"t": "news"},
        versions={"news": version},
        swaps=swaps or [],
    )


def judge(*statuses: WorkerStatus) -> Any:
    return evaluate({s.worker_id: s for s in statuses}, "news", "v2", REQUESTED, 3.0, NOW)


def test_ok_only_when_every_live_worker_reports_the_version() -> None:
    assert judge(hb("w1", "v2"), hb("w2", "v1")).state == "pending"
    done = judge(hb("w1", "v2"), hb("w2", "v2", swaps=[SwapResult(
        model="news", version="v2", ok=True, duration_s=0.4, at_ms=REQUESTED + 10)]))  # fmt: skip
    assert done.state == "ok" and done.workers[1].duration_s == 0.4


def test_a_failed_load_names_the_worker_and_its_error() -> None:
    failed = SwapResult(model="news", version="v2", ok=False, error="UnsafeWeights: bad",
                        at_ms=REQUESTED + 10)  # fmt: skip
    outcome = judge(hb("w1", "v2"), hb("w2", "v1", swaps=[failed]))
    assert outcome.state == "failed"
    assert outcome.reason() == "w2: UnsafeWeights: bad"


def test_failures_before_the_request_do_not_count() -> None:
    old = SwapResult(model="news", version="v2", ok=False, error="x", at_ms=REQUESTED - 10)
    assert judge(hb("w1", "v1", swaps=[old])).state == "pending"


def test_stale_workers_and_other_models_are_left_out() -> None:
    outcome = judge(
        hb("w1", "v2"),
        hb("dead", "v1", age_s=10),
        hb("other", "v9", routes={"r": "sentiment"}).model_copy(update={"versions": {}}),
    )
    assert outcome.state == "ok" and [w.worker_id for w in outcome.workers] == ["w1"]
    assert judge(hb("dead", "v1", age_s=10)).state == "no-workers"


@dataclass
class Engine:
    released: bool = False

    def release(self) -> None:
        self.released = True


@dataclass
class Registry:
    retired: list[Engine] = field(default_factory=list)

    def take_retired(self, model: str) -> list[Engine]:
        out, self.retired = self.retired, []
        return out


def test_an_idle_pipeline_releases_the_swapped_out_engine(monkeypatch) -> None:
    monkeypatch.setattr(pipeline_mod, "IDLE_RELEASE_S", 0.05)
    old = Engine()
    registry = Registry([old])
    pipe = ModelPipeline("m", registry, LruCache(10), None, "p", set(), "w", 2)  # type: ignore[arg-type]

    async def idle() -> None:
        task = asyncio.create_task(pipe.run())
        await asyncio.sleep(0.3)
        task.cancel()

    asyncio.run(idle())
    pipe.shutdown()
    assert old.released
