"""ceiling: the model alone on pre-tokenized, length-sorted, pre-padded batches, for every
backend and precision the worker can run (the worker's own backend classes, loaded as the
worker loads them); the best of a few batch sizes each. Nothing but forward passes is timed.
Each row also carries the backend's top-1 agreement with fp32 torch on the probe texts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result, sync
from benchmarks.context import BenchContext
from benchmarks.texts import generated_text

FIXED_LENGTHS = (32, 128)  # characters; recorded on GPU (issue 6)
MIN_REPEATS, MAX_REPEATS = 1, 20
CPU_SPECS = (("torch", "fp32"), ("torch", "bf16"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8"))  # fmt: skip


def specs(ctx: BenchContext) -> list[tuple[str, str]]:
    if ctx.on_gpu:
        import torch

        return [("torch", "fp32"), ("torch", "bf16" if torch.cuda.is_bf16_supported() else "fp16")]
    from modelstore.onnx_export import onnx_available

    return [s for s in CPU_SPECS if s[0] == "torch" or onnx_available()]


def load_engine(ctx: BenchContext, backend: str, precision: str, model_dir: Path | None = None):
    """An InferenceEngine pinned to one backend/precision (never refused: agreement is
    reported, not enforced, here)."""
    from worker.inference import InferenceEngine

    return InferenceEngine(
        model_dir or ctx.model_dir(), device=ctx.device, engine=backend, dtype=precision,
        min_dtype_agreement=0.0,
    )  # fmt: skip


def padded_batches(tokenizer: Any, texts: list[str], batch_size: int) -> list[Any]:
    """Tokenize once, sort by length, cut into batches, pad each to its longest row."""
    import numpy as np

    enc = tokenizer(texts, truncation=True, max_length=512, return_attention_mask=False)
    rows = sorted(enc["input_ids"], key=len)
    batches = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        width = max(map(len, chunk))
        ids = np.zeros((len(chunk), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for r, seq in enumerate(chunk):
            ids[r, : len(seq)] = seq
            mask[r, : len(seq)] = 1
        batches.append((ids, np.zeros_like(ids), mask))
    return batches


def time_batches(backend: Any, batches: list[Any], device: str) -> float:
    sync(device)
    started = time.perf_counter()
    for ids, types, mask in batches:
        backend.forward(ids, types, mask)
    sync(device)
    return time.perf_counter() - started


def measure(ctx: BenchContext, engine: Any, texts: list[str], batch_size: int):
    """Best (shortest) of repeated passes over the same batches: at least `MIN_REPEATS`, and
    until `min_seconds` have been spent (a ceiling is an upper bound; the machine is noisy)."""
    batches = padded_batches(engine.tokenizer, texts, batch_size)
    time_batches(engine.backend, batches[:1], ctx.device)  # warm-up (the shortest batch)
    min_seconds = 1.0 if ctx.quick else 4.0
    times: list[float] = []
    while len(times) < MIN_REPEATS or (sum(times) < min_seconds and len(times) < MAX_REPEATS):
        times.append(time_batches(engine.backend, batches, ctx.device))
    tokens = sum(int(mask.sum()) for _, _, mask in batches)
    return min(times), tokens


def run(ctx: BenchContext) -> list[Result]:
    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")  # the texts e2e classifies
    results = []
    for backend, precision in specs(ctx):
        engine = load_engine(ctx, backend, precision)
        rows = measure_spec(ctx, engine, texts, ctx.sizes.ceiling_batch_sizes, ctx.preset)
        best = max(rows, key=lambda r: r.texts_per_s or 0)
        best.extra["best"] = True
        ctx.shared.setdefault("ceiling_best_batch", {})[(backend, precision)] = best.settings[
            "batch_size"
        ]
        if ctx.on_gpu and precision != "fp32":
            rows += fixed_length_runs(ctx, engine, best.settings["batch_size"], best.settings)
        results += rows
        engine.release()
    fastest = max(results, key=lambda r: r.texts_per_s or 0)
    ctx.shared["ceiling_fastest"] = (fastest.settings["backend"], fastest.settings["dtype"])
    return results


def measure_spec(
    ctx: BenchContext, engine: Any, texts: list[str], sizes: tuple[int, ...], preset: str,
    suffix: str = "",
) -> list[Result]:  # fmt: skip
    """One row per batch size for the engine's backend/precision."""
    import torch

    choice = engine.choice
    settings = {
        "device": ctx.device,
        "backend": choice.backend,
        "dtype": choice.precision,
        "threads": torch.get_num_threads(),
    }
    rows = []
    for batch_size in sizes:
        seconds, tokens = measure(ctx, engine, texts, batch_size)
        variant = f"{choice.backend} {choice.precision}, batch {batch_size}{suffix}"
        row = _result(ctx, preset, variant, len(texts), seconds, tokens,
                      {**settings, "batch_size": batch_size})  # fmt: skip
        row.extra.update(agreement=choice.agreement, max_score_diff=choice.max_score_diff,
                         probe_texts=choice.probe_texts or None)  # fmt: skip
        rows.append(row)
        ctx.log(f"ceiling {variant}: {len(texts) / seconds:.1f} texts/s")
    return rows


def _result(ctx, preset, variant: str, count: int, seconds: float, tokens: int, settings) -> Result:
    return Result(
        scenario="ceiling",
        variant=variant,
        preset=preset,
        texts_per_s=count / seconds,
        tokens_per_s=tokens / seconds,
        count=count,
        seconds=seconds,
        settings=settings,
    )


def fixed_length_runs(ctx, engine, batch_size, settings) -> list[Result]:
    import random

    rng = random.Random(ctx.seed)
    out = []
    for chars in FIXED_LENGTHS:
        texts = [generated_text(rng, chars) for _ in range(ctx.sizes.ceiling_texts)]
        seconds, tokens = measure(ctx, engine, texts, batch_size)
        variant = (
            f"{engine.choice.backend} {engine.choice.precision}, {chars} chars, batch {batch_size}"
        )
        out.append(_result(ctx, ctx.preset, variant, len(texts), seconds, tokens,
                           {**settings, "batch_size": batch_size, "chars": chars}))  # fmt: skip
    return out


def recheck(ctx: BenchContext, backend: str, precision: str) -> list[Result]:
    """The chosen backend's best batch size again, right after e2e: the machine's load
    drifts, and the target ratio takes the higher of the two ceilings."""
    best = ctx.shared.get("ceiling_best_batch", {}).get((backend, precision), 16)
    engine = load_engine(ctx, backend, precision)
    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")
    rows = measure_spec(ctx, engine, texts, (best,), ctx.preset, " (after e2e)")
    engine.release()
    return rows


def tiny_ceiling(ctx: BenchContext, backend: str, precision: str, texts: list[str]) -> list[Result]:
    """The tiny model alone on the backend its worker chose (for e2e-tiny / tiny ceiling)."""
    engine = load_engine(ctx, backend, precision, ctx.model_dir("tiny"))
    rows = measure_spec(ctx, engine, texts, TINY_BATCH_SIZES, "tiny")
    engine.release()
    return rows


TINY_BATCH_SIZES = (16, 64)
