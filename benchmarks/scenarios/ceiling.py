"""ceiling: the model alone, for every backend and precision the worker can run (the worker's
own backend classes, loaded as the worker loads them), on the texts e2e classifies, batched
exactly as the worker's engine batches them: tokenized, sorted by length and cut into
sub-batches under the same padded-token budget and row limit (`InferenceEngine.prepare`, i.e.
`worker/encoding.py`), prepared once; only the forward passes are timed. The best the model
can do on these texts with the worker's settings. Each row also carries the backend's top-1
agreement with fp32 torch (and accuracy change on labelled probe texts), and the process CPU
per text during the timed passes (the e2e-tiny target compares CPU, not events/s)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import Result, sync
from benchmarks.context import BenchContext
from benchmarks.texts import generated_text

FIXED_LENGTHS = (32, 128)  # characters; recorded on GPU (issue 6)
MIN_REPEATS, MAX_REPEATS = 1, 20
CPU_SPECS = (("torch", "fp32"), ("torch", "bf16"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8"), ("onnx", "int8-static"))  # fmt: skip


def specs(ctx: BenchContext) -> list[tuple[str, str]]:
    if ctx.on_gpu:
        import torch

        return [("torch", "fp32"), ("torch", "bf16" if torch.cuda.is_bf16_supported() else "fp16")]
    from modelstore.onnx_export import onnx_available

    return [s for s in CPU_SPECS if s[0] == "torch" or onnx_available()]


def load_engine(ctx: BenchContext, backend: str, precision: str, model_dir: Path | None = None):
    """An InferenceEngine pinned to one backend/precision (never refused: agreement and
    accuracy change are reported, not enforced, here), with the worker's default padded-token
    budget."""
    from worker.inference import InferenceEngine

    return InferenceEngine(
        model_dir or ctx.model_dir(), device=ctx.device, engine=backend, dtype=precision,
        min_dtype_agreement=0.0, min_labelled_agreement=0.0, max_accuracy_drop=1.0,
    )  # fmt: skip


def worker_batches(engine: Any, texts: list[str], max_rows: int) -> list[Any]:
    """The worker's own batching of `texts`: sorted by length, cut under the engine's
    padded-token budget and `max_rows` (the worker's arrival batch), padded per sub-batch."""
    from worker import encoding

    prepared = encoding.prepare(
        engine.tokenizer, texts, None, engine.max_length, engine.max_batch_tokens, max_rows
    )
    return [(s.ids, s.types, s.mask) for s in prepared.sub_batches]


def time_batches(backend: Any, batches: list[Any], device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of forward passes over `batches`."""
    sync(device)
    cpu, started = time.process_time(), time.perf_counter()
    for ids, types, mask in batches:
        backend.forward(ids, types, mask)
    sync(device)
    return time.perf_counter() - started, time.process_time() - cpu


def measure(ctx: BenchContext, engine: Any, texts: list[str], max_rows: int):
    """Best (shortest) of repeated passes over the same batches: at least `MIN_REPEATS`, and
    until `min_seconds` have been spent (a ceiling is an upper bound; the machine is noisy).
    Returns (seconds, tokens, padded tokens, CPU seconds per pass, sub-batches)."""
    batches = worker_batches(engine, texts, max_rows)
    time_batches(engine.backend, batches[:1], ctx.device)  # warm-up (the shortest batch)
    min_seconds = 1.0 if ctx.quick else 4.0
    times: list[tuple[float, float]] = []
    while len(times) < MIN_REPEATS or (
        sum(t for t, _ in times) < min_seconds and len(times) < MAX_REPEATS
    ):
        times.append(time_batches(engine.backend, batches, ctx.device))
    tokens = sum(int(mask.sum()) for _, _, mask in batches)
    padded = sum(int(mask.size) for _, _, mask in batches)
    cpu = sum(c for _, c in times) / len(times)
    return min(t for t, _ in times), tokens, padded, cpu, len(batches)


def run(ctx: BenchContext) -> list[Result]:
    from benchmarks.scenarios.e2e import worker_max_batch

    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")  # the texts e2e classifies
    results = []
    for backend, precision in specs(ctx):
        engine = load_engine(ctx, backend, precision)
        row = measure_spec(ctx, engine, texts, worker_max_batch(ctx), ctx.preset)
        if ctx.on_gpu and precision != "fp32":
            results += fixed_length_runs(ctx, engine, row.settings)
        results.append(row)
        engine.release()
    fastest = max(results, key=lambda r: r.texts_per_s or 0)
    ctx.shared["ceiling_fastest"] = (fastest.settings["backend"], fastest.settings["dtype"])
    return results + random_init_row(ctx, texts, fastest.settings)


def random_init_row(ctx: BenchContext, texts: list[str], fastest: dict[str, Any]) -> list[Result]:
    """Informational, when roberta-base runs on the trained stand-in: the randomly initialised
    12-layer preset on the stand-in's fastest backend (speed and agreement; its near-equal
    class probabilities are why reduced precision flips its labels)."""
    from benchmarks.common import RANDOM_INIT, use_standin
    from benchmarks.scenarios.e2e import worker_max_batch

    if not use_standin(ctx.preset) or ctx.quick:
        return []
    engine = load_engine(ctx, fastest["backend"], fastest["dtype"], ctx.model_dir(RANDOM_INIT))
    row = measure_spec(ctx, engine, texts, worker_max_batch(ctx), RANDOM_INIT)
    engine.release()
    return [row]


def measure_spec(
    ctx: BenchContext, engine: Any, texts: list[str], max_rows: int, preset: str, suffix: str = ""
) -> Result:
    """The row of the engine's backend/precision at the worker's token budget."""
    import torch

    choice = engine.choice
    settings = {
        "device": ctx.device,
        "backend": choice.backend,
        "dtype": choice.precision,
        "threads": torch.get_num_threads(),
        "max_padded_tokens": engine.max_batch_tokens,
        "max_rows": max_rows,
        "sorted": True,
    }
    seconds, tokens, padded, cpu, batches = measure(ctx, engine, texts, max_rows)
    variant = f"{choice.backend} {choice.precision}, sorted, {engine.max_batch_tokens} tok{suffix}"
    row = _result(ctx, preset, variant, len(texts), seconds, tokens, settings)
    row.padding_fraction = 1 - tokens / padded if padded else None
    row.extra.update(
        agreement=choice.agreement, max_score_diff=choice.max_score_diff,
        accuracy=choice.accuracy, accuracy_delta=choice.accuracy_delta,
        labelled_probes=choice.labelled_probes or None, probe_texts=choice.probe_texts or None,
        cpu_us_per_text=cpu / len(texts) * 1e6, sub_batches=batches,
    )  # fmt: skip
    ctx.log(f"ceiling {variant}: {len(texts) / seconds:.1f} texts/s")
    return row


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


def fixed_length_runs(ctx, engine, settings) -> list[Result]:
    import random

    rng = random.Random(ctx.seed)
    out = []
    for chars in FIXED_LENGTHS:
        texts = [generated_text(rng, chars) for _ in range(ctx.sizes.ceiling_texts)]
        seconds, tokens, _, _, _ = measure(ctx, engine, texts, settings["max_rows"])
        variant = f"{engine.choice.backend} {engine.choice.precision}, {chars} chars, sorted"
        out.append(_result(ctx, ctx.preset, variant, len(texts), seconds, tokens,
                           {**settings, "chars": chars}))  # fmt: skip
    return out


def recheck(ctx: BenchContext, backend: str, precision: str) -> list[Result]:
    """The chosen backend again, right after e2e: the machine's load drifts, and the target
    ratio takes the higher of the two ceilings."""
    from benchmarks.scenarios.e2e import worker_max_batch

    engine = load_engine(ctx, backend, precision)
    texts = ctx.sentences(ctx.sizes.ceiling_texts, tag="e2e")
    row = measure_spec(ctx, engine, texts, worker_max_batch(ctx), ctx.preset, " (after e2e)")
    engine.release()
    return [row]


def tiny_ceiling(ctx: BenchContext, backend: str, precision: str, texts: list[str]) -> list[Result]:
    """The tiny model alone on the backend its worker chose (for e2e-tiny's CPU target)."""
    from benchmarks.scenarios.e2e import worker_max_batch

    engine = load_engine(ctx, backend, precision, ctx.model_dir("tiny"))
    row = measure_spec(ctx, engine, texts, worker_max_batch(ctx), "tiny")
    engine.release()
    return [row]
