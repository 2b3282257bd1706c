"""cache: the same texts through the worker twice, with Redis and a fresh key prefix. The
first pass fills the cache; the second (every event a repeat) is all hits."""

from __future__ import annotations

import asyncio
import os

from benchmarks.common import RESULTS_DIR, Result
from benchmarks.context import BenchContext
from benchmarks.harness import Driver, fresh_name, local_broker, make_route_topics
from benchmarks.profiling import profile_process
from benchmarks.scenarios.e2e import WARM_UP_EVENTS, settings_of, start_worker, timeout_for
from bus.settings import KafkaSettings

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def redis_url() -> str:
    return os.environ.get("STREAMCLF_BENCH_REDIS_URL", DEFAULT_REDIS)


async def _run(ctx: BenchContext, settings: KafkaSettings):
    topic = fresh_name("bench-cache")
    await make_route_topics(settings, topic)
    prefix = fresh_name("bench-cache")
    proc = start_worker(
        ctx, settings, topic, ctx.preset,
        STREAMCLF_CACHE_ENABLED="true", STREAMCLF_REDIS_URL=redis_url(), STREAMCLF_CACHE_PREFIX=prefix,
    )  # fmt: skip
    try:
        unique = ctx.sentences(ctx.cache_unique(), tag="cache")
        repeats = [unique[i % len(unique)] for i in range(ctx.sizes.cache_events)]
        async with Driver(settings, topic, f"{topic}.labelled") as driver:
            await driver.full_load(ctx.sentences(WARM_UP_EVENTS, tag="warm"), "warm", 300, proc)
            fill = await driver.full_load(unique, "fill", timeout_for(len(unique), 10.0), proc)
            ctx.log(f"cache fill: {fill.events_per_s:.1f} events/s")
            cpu_before = proc.cpu_seconds()
            hits = await driver.full_load(repeats, "hit", timeout_for(len(repeats), 1000.0), proc)
            hits.cpu_s = proc.cpu_seconds() - cpu_before
            ctx.log(
                f"cache hits: {hits.events_per_s:.0f} events/s, "
                f"{hits.cpu_us_per_event or 0:.0f} us CPU/event"
            )
            cached = sum(driver.cached.get(f"hit-{i}", False) for i in range(len(repeats)))
            if ctx.shared.get("profile"):
                stem = ctx.shared.get("out", RESULTS_DIR) / "profile-worker-cache-hits"
                try:
                    async with profile_process(proc.pid, stem):
                        await driver.full_load(
                            repeats, "profiled", timeout_for(len(repeats), 500.0), proc
                        )
                except (TimeoutError, OSError) as exc:
                    ctx.log(f"profile of the cache hits failed: {exc}")
        return fill, hits, cached
    finally:
        proc.stop()


def run(ctx: BenchContext) -> list[Result]:
    with local_broker() as settings:
        fill, hits, cached = asyncio.run(_run(ctx, settings))
    base = {**settings_of(ctx, "worker"), "redis": True}
    out = []
    for variant, fig, extra in (
        ("first pass (misses)", fill, {}),
        ("second pass (all repeats)", hits, {"cached_share": cached / max(hits.received, 1)}),
    ):
        s = fig.summary()
        out.append(
            Result(
                scenario="cache",
                variant=variant,
                preset=ctx.preset,
                texts_per_s=s["events_per_s"],
                p50_ms=s["p50_ms"],
                p95_ms=s["p95_ms"],
                p99_ms=s["p99_ms"],
                count=fig.received,
                seconds=fig.seconds,
                settings=base,
                extra={
                    **extra,
                    "events_per_s_first_to_last": s["events_per_s_first_to_last"],
                    "cpu_us_per_event": s["cpu_us_per_event"],
                },
            )
        )
    return out
