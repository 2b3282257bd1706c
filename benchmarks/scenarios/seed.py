"""seed: the model card's way, a transformers pipeline called one text at a time."""

from __future__ import annotations

import time

from benchmarks.common import Result, sync
from benchmarks.context import BenchContext

WARM_UP = 5


def run(ctx: BenchContext) -> list[Result]:
    import torch
    from transformers import pipeline

    model_dir = ctx.model_dir()
    device = 0 if ctx.on_gpu else -1
    clf = pipeline(
        "text-classification", model=str(model_dir), tokenizer=str(model_dir), device=device
    )
    texts = ctx.sentences(ctx.seed_texts() + WARM_UP, tag="e2e")  # as e2e and ceiling
    warm, texts = texts[:WARM_UP], texts[WARM_UP:]
    for text in warm:
        clf(text)
    tokens = sum(len(ids) for ids in clf.tokenizer(texts, truncation=True)["input_ids"])
    sync(ctx.device)
    started = time.perf_counter()
    for text in texts:
        clf(text)
    sync(ctx.device)
    seconds = time.perf_counter() - started
    return [
        Result(
            scenario="seed",
            variant="pipeline, 1 text/call",
            preset=ctx.preset,
            texts_per_s=len(texts) / seconds,
            tokens_per_s=tokens / seconds,
            count=len(texts),
            seconds=seconds,
            settings={"device": ctx.device, "dtype": "fp32", "threads": torch.get_num_threads()},
        )
    ]
