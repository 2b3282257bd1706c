"""ceiling: the model alone on pre-tokenized, length-sorted, pre-padded batches under
`inference_mode`; the best of a few batch sizes. Nothing but forward passes is timed."""

from __future__ import annotations

import time
from typing import Any

from benchmarks.common import Result, sync
from benchmarks.context import BenchContext
from benchmarks.texts import generated_text

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
FIXED_LENGTHS = (32, 128)  # characters; recorded on GPU (issue 6)
MIN_REPEATS, MAX_REPEATS = 1, 20


def load_model(ctx: BenchContext) -> tuple[Any, Any]:
    import torch

    from modelstore.loading import load_classifier

    model, tokenizer = load_classifier(ctx.model_dir())
    dtype = getattr(torch, DTYPES[ctx.resolved_dtype()])
    return model.to(ctx.device, dtype=dtype).eval(), tokenizer


def padded_batches(tokenizer: Any, texts: list[str], batch_size: int, device: str) -> list[Any]:
    """Tokenize once, sort by length, cut into batches, pad each to its longest row."""
    import torch

    enc = tokenizer(texts, truncation=True, max_length=512, return_attention_mask=False)
    rows = sorted(enc["input_ids"], key=len)
    batches = []
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        width = max(map(len, chunk))
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for r, seq in enumerate(chunk):
            ids[r, : len(seq)] = torch.tensor(seq)
            mask[r, : len(seq)] = 1
        batches.append((ids.to(device), mask.to(device), torch.zeros_like(ids).to(device)))
    return batches


def time_batches(model: Any, batches: list[Any], device: str) -> float:
    import torch

    sync(device)
    started = time.perf_counter()
    with torch.inference_mode():
        for ids, mask, types in batches:
            model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits.float().cpu()
    sync(device)
    return time.perf_counter() - started


def measure(ctx: BenchContext, model: Any, tokenizer: Any, texts: list[str], batch_size: int):
    """Best (shortest) of repeated passes over the same batches: at least `MIN_REPEATS`, and
    until `min_seconds` have been spent (a ceiling is an upper bound; the machine is noisy)."""
    batches = padded_batches(tokenizer, texts, batch_size, ctx.device)
    time_batches(model, batches[:1], ctx.device)  # warm-up (the shortest batch)
    min_seconds = 1.5 if ctx.quick else 8.0
    times: list[float] = []
    while len(times) < MIN_REPEATS or (sum(times) < min_seconds and len(times) < MAX_REPEATS):
        times.append(time_batches(model, batches, ctx.device))
    tokens = sum(int(mask.sum()) for _, mask, _ in batches)
    return min(times), tokens


def run(ctx: BenchContext) -> list[Result]:
    import torch

    model, tokenizer = load_model(ctx)
    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")  # the texts e2e classifies
    settings = {
        "device": ctx.device,
        "dtype": ctx.resolved_dtype(),
        "threads": torch.get_num_threads(),
    }
    results = []
    for batch_size in ctx.sizes.ceiling_batch_sizes:
        seconds, tokens = measure(ctx, model, tokenizer, texts, batch_size)
        results.append(
            _result(
                ctx,
                f"batch {batch_size}",
                len(texts),
                seconds,
                tokens,
                {**settings, "batch_size": batch_size},
            )
        )
        ctx.log(f"ceiling batch {batch_size}: {len(texts) / seconds:.1f} texts/s")
    best = max(results, key=lambda r: r.texts_per_s or 0)
    best.extra["best"] = True
    ctx.shared["ceiling_best_batch"] = best.settings["batch_size"]
    if ctx.on_gpu:
        results += fixed_length_runs(ctx, model, tokenizer, best.settings["batch_size"], settings)
    return results


def _result(ctx, variant: str, count: int, seconds: float, tokens: int, settings: dict) -> Result:
    return Result(
        scenario="ceiling",
        variant=variant,
        preset=ctx.preset,
        texts_per_s=count / seconds,
        tokens_per_s=tokens / seconds,
        count=count,
        seconds=seconds,
        settings=settings,
    )


def fixed_length_runs(ctx, model, tokenizer, batch_size, settings) -> list[Result]:
    import random

    rng = random.Random(ctx.seed)
    out = []
    for chars in FIXED_LENGTHS:
        texts = [generated_text(rng, chars) for _ in range(ctx.sizes.ceiling_texts)]
        seconds, tokens = measure(ctx, model, tokenizer, texts, batch_size)
        out.append(
            _result(
                ctx,
                f"{chars} chars, batch {batch_size}",
                len(texts),
                seconds,
                tokens,
                {**settings, "batch_size": batch_size, "chars": chars},
            )
        )
    return out


def recheck(ctx: BenchContext) -> list[Result]:
    """The best batch size again, right after e2e: the machine's load drifts, and the target
    ratio takes the higher of the two ceilings."""
    import torch

    batch_size = ctx.shared.get("ceiling_best_batch", 32)
    model, tokenizer = load_model(ctx)
    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")
    seconds, tokens = measure(ctx, model, tokenizer, texts, batch_size)
    ctx.log(f"ceiling recheck batch {batch_size}: {len(texts) / seconds:.1f} texts/s")
    return [
        Result(
            scenario="ceiling",
            variant=f"batch {batch_size} (after e2e)",
            preset=ctx.preset,
            texts_per_s=len(texts) / seconds,
            tokens_per_s=tokens / seconds,
            count=len(texts),
            seconds=seconds,
            settings={
                "device": ctx.device,
                "dtype": ctx.resolved_dtype(),
                "threads": torch.get_num_threads(),
                "batch_size": batch_size,
            },
        )
    ]
