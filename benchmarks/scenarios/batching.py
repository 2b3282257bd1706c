"""batching: mixed lengths (10-500 characters) through the InferenceEngine, arrival batches
of `max_batch` rows: length-sorted token-budget sub-batches vs plain FIFO batches."""

from __future__ import annotations

import time

from benchmarks.common import Result
from benchmarks.context import BenchContext
from benchmarks.stats import fifo_batches, padding_fraction, sorted_budget_batches
from benchmarks.texts import mixed_lengths
from worker.inference import BatchStats, InferenceEngine

ARRIVAL_BATCH = 32
NO_BUDGET = 1 << 30


def variants(ctx: BenchContext) -> list[tuple[str, bool, int]]:
    """(name, sort_by_length, max_batch_tokens)."""
    small = 4096 if not ctx.on_gpu else 16384
    large = 16384 if not ctx.on_gpu else 65536
    return [
        ("fifo", False, NO_BUDGET),
        (f"sorted, budget {large}", True, large),
        (f"sorted, budget {small}", True, small),
    ]


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
    texts = mixed_lengths(ctx.sizes.batching_texts, seed=ctx.seed)
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
    results[0].extra["padding_by_arrival_batch"] = planned_padding(engine_lengths(ctx, texts))
    return results


def engine_lengths(ctx: BenchContext, texts: list[str]) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(ctx.model_dir()))
    return [len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"]]


def planned_padding(lengths: list[int]) -> dict[str, dict[str, float]]:
    """Padding fraction without running the model, for larger arrival batches."""
    out = {}
    for size in (32, 128, 512):
        out[str(size)] = {
            "fifo": round(padding_fraction(fifo_batches(lengths, size)), 4),
            "sorted_4096": round(padding_fraction(sorted_budget_batches(lengths, size, 4096)), 4),
            "sorted_16384": round(padding_fraction(sorted_budget_batches(lengths, size, 16384)), 4),
        }
    return out
