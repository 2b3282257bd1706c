"""batching: mixed lengths (10-500 characters) through the InferenceEngine, arrival batches
of `max_batch` rows: length-sorted token-budget sub-batches vs plain FIFO batches."""

from __future__ import annotations

import time

from benchmarks.common import Result
from benchmarks.context import BenchContext
from benchmarks.stats import fifo_batches, padding_fraction, sorted_budget_batches, worker_batches
from benchmarks.texts import mixed_lengths
from worker.inference import BatchStats, InferenceEngine

ARRIVAL_BATCH = 32
NO_BUDGET = 1 << 30


def variants(ctx: BenchContext) -> list[tuple[str, bool, int]]:
    """(name, sort_by_length, max_batch_tokens)."""
    if ctx.on_gpu:
        return [("fifo", False, NO_BUDGET), ("sorted, budget 16384", True, 16384)]
    return [("fifo", False, NO_BUDGET), ("sorted, budget 2048", True, 2048)]


def run_variant(engine: InferenceEngine, texts: list[str]) -> tuple[BatchStats, float]:
    total = BatchStats()
    started = time.perf_counter()
    for i in range(0, len(texts), ARRIVAL_BATCH):
        engine.predict(texts[i : i + ARRIVAL_BATCH])
        s = engine.last_stats
        total.rows += s.rows
        total.sub_batches += s.sub_batches
        total.real_tokens += s.real_tokens
        total.padded_tokens += s.padded_tokens
    total.seconds = time.perf_counter() - started
    return total, total.seconds


def run(ctx: BenchContext) -> list[Result]:
    texts = mixed_lengths(ctx.batching_texts(), seed=ctx.seed)
    warm = mixed_lengths(8, seed=ctx.seed + 1)
    results = []
    for name, sort, budget in variants(ctx):
        engine = InferenceEngine(
            ctx.model_dir(),
            device=ctx.device,
            dtype=ctx.resolved_dtype(),
            max_batch_tokens=budget,
            sort_by_length=sort,
        )
        engine.predict(warm)
        stats, seconds = run_variant(engine, texts)
        results.append(
            Result(
                scenario="batching",
                variant=name,
                preset=ctx.preset,
                texts_per_s=stats.rows / seconds,
                tokens_per_s=stats.real_tokens / seconds,
                padding_fraction=stats.padding_fraction,
                count=stats.rows,
                seconds=seconds,
                settings={
                    "arrival_batch": ARRIVAL_BATCH,
                    "sort_by_length": sort,
                    "max_batch_tokens": None if budget == NO_BUDGET else budget,
                    "chars": "10-500",
                },
                extra={"sub_batches": stats.sub_batches, "real_tokens": stats.real_tokens},
            )
        )
        ctx.log(
            f"batching {name}: {stats.rows / seconds:.1f} texts/s, padding {stats.padding_fraction:.1%}"
        )
        del engine
    real = engine_lengths(ctx, ctx.sentences(2048, tag="e2e"))
    results[0].extra["planned_padding"] = {
        "mixed_10_500": planned_padding(engine_lengths(ctx, texts)),
        "real_sentences": planned_padding(real),
    }
    results += planned_rows(ctx, real)
    return results


def engine_lengths(ctx: BenchContext, texts: list[str]) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir()))
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]]


PLANS = [  # (name, rows, budget, planner)
    ("FIFO 32", 32, None, "fifo"),
    ("worker 32 rows/16384 tok (defaults)", 32, 16384, "worker"),
    ("worker 128 rows/4096 tok (bench)", 128, 4096, "worker"),
    ("128 rows, sub-batches of 1024 padded tok", 128, 1024, "sorted"),
]


def plan(lengths: list[int], rows: int, budget: int | None, kind: str) -> list[list[int]]:
    if kind == "fifo" or budget is None:
        return fifo_batches(lengths, rows)
    if kind == "worker":
        return worker_batches(lengths, rows, budget)
    return sorted_budget_batches(lengths, rows, budget)


def planned_padding(lengths: list[int]) -> dict[str, float]:
    """Padding fraction of each batching plan, without running the model."""
    return {name: round(padding_fraction(plan(lengths, r, b, k)), 4) for name, r, b, k in PLANS}


def planned_rows(ctx: BenchContext, lengths: list[int]) -> list[Result]:
    """Model-free rows: padding of each plan on the real sentence mix the e2e run uses."""
    return [
        Result(
            scenario="batching",
            variant=f"planned, real mix: {name}",
            preset="-",
            padding_fraction=padding_fraction(plan(lengths, r, b, k)),
            count=len(lengths),
            settings={"rows": r, "max_batch_tokens": b, "plan": k},
        )
        for name, r, b, k in PLANS
    ]
