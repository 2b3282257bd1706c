"""e2e and e2e-tiny: Kafka in -> worker -> Kafka out on a real broker; e2e-tiny also runs the
raw pass-through with the same client, to show the framework's own overhead.

Each process under test first answers a warm-up backlog (model loaded, partitions assigned),
then a full-load backlog (capacity and latency), then a run offered at 50% of that capacity.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, Result, bench_store_dir, model_label, model_name
from benchmarks.context import BenchContext
from benchmarks.harness import (
    Driver,
    RunFigures,
    Subprocess,
    fresh_name,
    local_broker,
    make_route_topics,
    worker_command,
)
from benchmarks.profiling import profile_process
from bus.control import read_status
from bus.settings import KafkaSettings

OFFERED_SHARE = 0.5
LOG_DIR = bench_store_dir().parent / "bench-logs"  # gitignored


# Measured on the real sentence mix (see the batching scenario's planned padding): with the
# worker's defaults (32 rows, 16384 tokens) arrival batches are ~79% padding on CPU; 128 rows
# and a 4096-token budget bring that to ~46%. GPUs want bigger budgets.
CPU_MAX_BATCH, CPU_MAX_BATCH_TOKENS = 128, 4096
GPU_MAX_BATCH, GPU_MAX_BATCH_TOKENS = 256, 32768
WARM_UP_EVENTS = 32
PROFILE_SECONDS = 10.0


def worker_max_batch(ctx: BenchContext) -> int:
    return ctx.worker_max_batch or (GPU_MAX_BATCH if ctx.on_gpu else CPU_MAX_BATCH)


def worker_max_batch_tokens(ctx: BenchContext) -> int:
    return ctx.worker_max_batch_tokens or (
        GPU_MAX_BATCH_TOKENS if ctx.on_gpu else CPU_MAX_BATCH_TOKENS
    )


def worker_env(
    ctx: BenchContext, settings: KafkaSettings, preset: str, **extra: str
) -> dict[str, str]:
    env = {
        "STREAMCLF_MODEL_STORE": str(bench_store_dir()),
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": settings.bootstrap_servers,
        "STREAMCLF_GROUP_ID": fresh_name("bench-workers"),
        "STREAMCLF_MAX_BATCH": str(worker_max_batch(ctx)),
        "STREAMCLF_MAX_BATCH_TOKENS": str(worker_max_batch_tokens(ctx)),
        "STREAMCLF_MAX_WAIT_MS": "10",
        "STREAMCLF_DEVICE": ctx.device,
        "STREAMCLF_ENGINE": ctx.engine,
        "STREAMCLF_DTYPE": ctx.dtype,  # auto: the worker measures (engine auto) or its default
        "STREAMCLF_CACHE_ENABLED": "false",
        "STREAMCLF_LOG_LEVEL": "WARNING",
        "STREAMCLF_STATUS_INTERVAL_S": "1",  # the engine choice is read from the heartbeats
    }
    threads = ctx.shared.get("worker_torch_threads")
    if threads:
        env["STREAMCLF_TORCH_THREADS"] = str(threads)
    env.update(extra)
    return env


def start_worker(
    ctx: BenchContext, settings: KafkaSettings, topic: str, preset: str, **env: str
) -> Subprocess:
    ctx.model_dir(preset)
    argv = [*worker_command(), "--route", f"{topic}={model_name(preset)}"]
    return Subprocess(
        argv, worker_env(ctx, settings, preset, **env), LOG_DIR / f"{topic}.log"
    ).start()


def start_passthrough(ctx: BenchContext, settings: KafkaSettings, topic: str) -> Subprocess:
    argv = [
        sys.executable, "-m", "benchmarks.scenarios.passthrough",
        "--bootstrap", settings.bootstrap_servers,
        "--in", topic, "--out", f"{topic}.labelled",
        "--group", fresh_name("bench-pass"),
        "--max-records", str(worker_max_batch(ctx)),
    ]  # fmt: skip
    return Subprocess(argv, {}, LOG_DIR / f"{topic}.log").start()


def timeout_for(n: int, rate_guess: float) -> float:
    return 120.0 + n / max(rate_guess, 1.0) * 3


async def measure(
    ctx: BenchContext,
    settings: KafkaSettings,
    topic: str,
    proc: Subprocess,
    texts: list[str],
    rate_guess: float,
    profile_to: Path | None = None,
) -> tuple[RunFigures, RunFigures]:
    """Warm-up, full load, then 50% offered rate; returns (full, offered)."""
    out = f"{topic}.labelled"
    async with Driver(settings, topic, out) as driver:
        warm = ctx.sentences(WARM_UP_EVENTS, tag="warm")
        await driver.full_load(warm, "warm", timeout_s=300, alive=proc)
        cpu_before = proc.cpu_seconds()
        full = await driver.full_load(texts, "full", timeout_for(len(texts), rate_guess), proc)
        full.cpu_s = proc.cpu_seconds() - cpu_before
        ctx.log(
            f"{topic}: full load {full.events_per_s:.1f} events/s, "
            f"{full.cpu_us_per_event or 0:.0f} us CPU/event"
        )
        rate = full.events_per_s * OFFERED_SHARE
        n = max(20, int(rate * ctx.sizes.e2e_rate_seconds))
        offered_texts = ctx.sentences(n, tag="rate")
        offered = await driver.offered_rate(offered_texts, "rate", rate, timeout_for(n, rate), proc)
        ctx.log(f"{topic}: offered {rate:.1f}/s -> p50 {offered.summary()['p50_ms']:.0f} ms")
        if profile_to is not None:  # a profile that fails or times out costs no figures
            # about PROFILE_SECONDS of load at the full-load rate (texts repeat; no cache here)
            n = max(WARM_UP_EVENTS, int(full.events_per_s * PROFILE_SECONDS))
            part = (texts * (n // len(texts) + 1))[:n]
            try:
                async with profile_process(proc.pid, profile_to):
                    await driver.full_load(
                        part, "profiled", timeout_for(len(part), rate_guess / 2), proc
                    )
            except (TimeoutError, OSError) as exc:
                ctx.log(f"profile of {topic} failed: {exc}")
    return full, offered


def rows(
    scenario: str,
    variant: str,
    preset: str,
    full: RunFigures,
    offered: RunFigures,
    settings: dict[str, Any],
) -> list[Result]:
    out = []
    for label, fig in (("full load", full), (f"{OFFERED_SHARE:.0%} offered", offered)):
        s = fig.summary()
        out.append(
            Result(
                scenario=scenario,
                variant=f"{variant}, {label}",
                preset=preset,
                texts_per_s=s["events_per_s"],
                p50_ms=s["p50_ms"],
                p95_ms=s["p95_ms"],
                p99_ms=s["p99_ms"],
                count=fig.received,
                seconds=fig.seconds,
                settings={**settings, "offered_per_s": fig.offered_per_s},
                extra={
                    "events_per_s_first_to_last": s["events_per_s_first_to_last"],
                    "max_ms": s["max_ms"],
                    "model_busy_share": s["model_busy_share"],
                    "cpu_us_per_event": s["cpu_us_per_event"],
                    "sent": fig.sent,
                },
            )
        )
    return out


def settings_of(ctx: BenchContext, kind: str) -> dict[str, Any]:
    return {
        "process": kind,
        "partitions": 4,
        "max_batch": worker_max_batch(ctx),
        "max_batch_tokens": worker_max_batch_tokens(ctx),
        "max_wait_ms": 10,
        "device": ctx.device,
        "engine": ctx.engine,
        "dtype": ctx.dtype,
        "torch_threads": ctx.shared.get("worker_torch_threads") or "default",
    }


async def engine_choice(settings: KafkaSettings, preset: str, since_ms: int) -> dict[str, Any]:
    """What the worker's engine chose (from its heartbeats): backend, precision, agreement."""
    statuses = await read_status(settings, since_ms, timeout_s=3.0)
    for status in statuses.values():
        choice = status.engines.get(model_name(preset))
        if choice is not None:
            return choice.model_dump(mode="json", exclude={"candidates", "key"})
    return {}


def with_choice(rows: list[Result], choice: dict[str, Any]) -> list[Result]:
    for row in rows:
        row.settings.update(backend=choice.get("backend"), precision=choice.get("precision"))
        row.extra["engine_choice"] = choice
        row.variant += f" ({choice.get('backend')} {choice.get('precision')})" if choice else ""
    return rows


async def _worker_run(
    ctx: BenchContext,
    settings: KafkaSettings,
    preset: str,
    n: int,
    rate_guess: float,
    profile: bool,
    stem: str = "",
    **env: str,
):
    topic = await _topic(settings, f"bench-{preset}")
    since_ms = int(time.time() * 1000)
    proc = start_worker(ctx, settings, topic, preset, **env)
    try:
        texts = ctx.sentences(n, tag="e2e")
        out_dir = ctx.shared.get("out", RESULTS_DIR)
        profile_to = out_dir / f"profile-worker-{stem or preset}" if profile else None
        figures = await measure(ctx, settings, topic, proc, texts, rate_guess, profile_to)
        choice = await engine_choice(settings, preset, since_ms)
        ctx.log(f"{preset} worker's engine: {choice.get('backend')} {choice.get('precision')}")
        return figures, choice
    finally:
        proc.stop()


async def _topic(settings: KafkaSettings, prefix: str) -> str:
    topic = fresh_name(prefix)
    await make_route_topics(settings, topic)
    return topic


def run(ctx: BenchContext) -> list[Result]:
    """e2e with the run's preset."""
    guess = ctx.shared.get("ceiling_texts_per_s", 30.0)
    with local_broker() as settings:
        (full, offered), choice = asyncio.run(
            _worker_run(
                ctx,
                settings,
                ctx.preset,
                ctx.e2e_events(),
                guess,
                ctx.shared.get("profile", False),
            )
        )
    ctx.shared["e2e_engine"] = choice
    base = {**settings_of(ctx, "worker"), "model": model_label(ctx.preset)}
    return with_choice(rows("e2e", "worker", ctx.preset, full, offered, base), choice)


def run_pinned(ctx: BenchContext) -> list[Result]:
    """e2e with the worker pinned to the fastest backend of the ceiling rows, whatever its
    agreement or accuracy change (`STREAMCLF_MIN_DTYPE_AGREEMENT=0`, `STREAMCLF_MIN_AGREEMENT=0`,
    `STREAMCLF_MAX_ACCURACY_DROP=1`): what `auto` gives a model on which that backend passes
    the rule."""
    fastest = ctx.shared.get("ceiling_fastest")
    if not fastest:
        return []
    backend, precision = fastest
    pinned = {"STREAMCLF_ENGINE": backend, "STREAMCLF_DTYPE": precision,
              "STREAMCLF_MIN_DTYPE_AGREEMENT": "0", "STREAMCLF_MIN_AGREEMENT": "0",
              "STREAMCLF_MAX_ACCURACY_DROP": "1"}  # fmt: skip
    with local_broker() as settings:
        (full, offered), choice = asyncio.run(
            _worker_run(ctx, settings, ctx.preset, ctx.e2e_events(), 30.0,
                        ctx.shared.get("profile", False), f"{ctx.preset}-pinned", **pinned)
        )  # fmt: skip
    base = {**settings_of(ctx, "worker"), "engine": backend, "dtype": precision,
            "model": model_label(ctx.preset)}  # fmt: skip
    return with_choice(rows("e2e", "worker pinned", ctx.preset, full, offered, base), choice)


def run_tiny(ctx: BenchContext) -> list[Result]:
    """e2e-tiny: the worker with the tiny preset beside the raw pass-through, and the tiny
    model's own ceiling on the backend its worker chose."""
    n = ctx.sizes.tiny_events

    async def both(settings: KafkaSettings):
        worker, choice = await _worker_run(
            ctx, settings, "tiny", n, 500.0, ctx.shared.get("profile", False)
        )
        topic = await _topic(settings, "bench-pass")
        proc = start_passthrough(ctx, settings, topic)
        try:
            texts = ctx.sentences(n, tag="pass")
            passthrough = await measure(ctx, settings, topic, proc, texts, 1000.0)
        finally:
            proc.stop()
        return worker, passthrough, choice

    with local_broker() as settings:
        (wf, wo), (pf, po), choice = asyncio.run(both(settings))
    out = with_choice(
        rows("e2e-tiny", "worker", "tiny", wf, wo, settings_of(ctx, "worker")), choice
    )
    out += rows("e2e-tiny", "pass-through", "-", pf, po, settings_of(ctx, "pass-through"))
    if choice:
        from benchmarks.scenarios.ceiling import tiny_ceiling

        texts = ctx.sentences(min(n, 1024), tag="e2e")
        out += tiny_ceiling(ctx, choice["backend"], choice["precision"], texts)
    return out
