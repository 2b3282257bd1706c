"""The fine-tuning loop: UER recipe, dynamic padding, accumulation, autocast, resumable, best epoch."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelstore.probes import write_probe_file
from modelstore.reference import drift_reference
from modelstore.store import ModelStore
from schemas.card import ModelCard
from trainer.base import Start, load_start
from trainer.batches import Encoded, batch_order, collate, encode
from trainer.checkpoint import Checkpoint, LoopState
from trainer.config import Progress, ProgressFn, TrainConfig
from trainer.data import Dataset, load_dataset
from trainer.evaluate import EvalReport, evaluate
from trainer.exceptions import TrainingInterrupted
from trainer.record import build_card
from trainer.runtime import (
    device_and_dtype,
    make_optimizer,
    rng_state,
    seed_everything,
    set_rng_state,
)


@dataclass(frozen=True)
class TrainOutcome:
    version: str
    card: ModelCard
    best_epoch: int
    examples_per_s: float


@dataclass
class _Run:
    """What the loop works with, built once."""

    config: TrainConfig
    start: Start
    data: dict[str, Dataset]
    encoded: dict[str, Encoded]
    device: Any
    amp_dtype: Any
    optimizer: Any
    scheduler: Any
    scaler: Any
    checkpoint: Checkpoint
    progress: ProgressFn


def _epoch(
    run: _Run,
    loop: LoopState,
    stop: threading.Event | None,
    snapshot: Callable[[dict[str, Any]], None],
) -> float:
    """Train one epoch from `loop.batches_done`; returns the mean loss of the batches run."""
    import torch

    cfg, model = run.config, run.start.model
    batches = batch_order(
        run.encoded["train"].lengths(), cfg.batch_size, cfg.seed * 1000 + loop.epoch
    )
    steps = math.ceil(len(batches) / cfg.grad_accum_steps)
    model.train()
    run.optimizer.zero_grad(set_to_none=True)
    losses: list[float] = []
    window_start, window_examples = time.monotonic(), 0
    for index in range(loop.batches_done, len(batches)):
        if stop is not None and stop.is_set():
            raise KeyboardInterrupt("stop requested")
        t0 = time.monotonic()
        batch = {
            k: v.to(run.device) for k, v in collate(run.encoded["train"], batches[index]).items()
        }
        with torch.autocast(
            run.device.type, dtype=run.amp_dtype, enabled=run.amp_dtype is not None
        ):
            loss = model(**batch).loss / cfg.grad_accum_steps
        run.scaler.scale(loss).backward()
        losses.append(loss.item() * cfg.grad_accum_steps)
        window_examples += len(batches[index])
        loop.examples_seen += len(batches[index])
        boundary = (index + 1) % cfg.grad_accum_steps == 0 or index + 1 == len(batches)
        if boundary:
            run.scaler.unscale_(run.optimizer)
            if cfg.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.scheduler.step()
            run.optimizer.zero_grad(set_to_none=True)
            loop.batches_done = index + 1
            snapshot(rng_state())
        loop.train_seconds += time.monotonic() - t0
        if boundary:
            elapsed = max(1e-9, time.monotonic() - window_start)
            step = math.ceil(loop.batches_done / cfg.grad_accum_steps)
            recent = losses[-20:]
            run.progress(
                Progress(
                    "train",
                    loop.epoch + 1,
                    cfg.epochs,
                    step,
                    steps,
                    sum(recent) / len(recent),
                    window_examples / elapsed,
                )
            )
            if cfg.checkpoint_every_steps and step % cfg.checkpoint_every_steps == 0:
                _save(run, loop, rng_state())
    return sum(losses) / max(1, len(losses))


def _state(run: _Run, rng: dict[str, Any]) -> dict[str, Any]:
    return {
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng,
    }


def _save(run: _Run, loop: LoopState, rng: dict[str, Any]) -> None:
    run.checkpoint.save(run.start.model, _state(run, rng), loop)
    run.progress(
        Progress("checkpoint", loop.epoch + 1, run.config.epochs, message=str(run.checkpoint.path))
    )


def _prepare(config: TrainConfig, store: ModelStore, progress: ProgressFn) -> _Run:
    import torch

    from modelstore.hf import disable_progress_bar

    disable_progress_bar()

    seed_everything(config.seed)
    start = load_start(config, store)
    splits = {"train": config.train, "dev": config.dev} | (
        {"test": config.test} if config.test else {}
    )
    data = {k: load_dataset(p, start.labels, config.skip_bad) for k, p in splits.items()}
    encoded = {k: encode(d.examples, start.tokenizer, config.max_seq_len) for k, d in data.items()}
    progress(
        Progress(
            "load",
            message=f"{start.description}; "
            + ", ".join(
                f"{k} {d.rows} rows" + (f" ({d.skipped} skipped)" if d.skipped else "")
                for k, d in data.items()
            ),
        )
    )
    device, amp_dtype = device_and_dtype(config)
    start.model.to(device)
    batches = math.ceil(len(encoded["train"]) / config.batch_size)
    total = config.epochs * math.ceil(batches / config.grad_accum_steps)
    optimizer, scheduler = make_optimizer(start.model, config, total)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    ckpt_dir = (
        Path(config.checkpoint_dir)
        if config.checkpoint_dir
        else (store.root / ".checkpoints" / config.model)
    )
    return _Run(
        config,
        start,
        data,
        encoded,
        device,
        amp_dtype,
        optimizer,
        scheduler,
        scaler,
        Checkpoint(ckpt_dir),
        progress,
    )


def train(
    config: TrainConfig,
    store: ModelStore,
    progress: ProgressFn | None = None,
    stop: threading.Event | None = None,
) -> TrainOutcome:
    """Fine-tune, keep the epoch with the best dev accuracy, store it as a new version.

    Ctrl-C, a `stop` event or an error leaves a checkpoint; `config.resume` continues from it.
    """
    started = time.monotonic()
    run = _prepare(config, store, progress or (lambda _p: None))
    model = run.start.model
    fingerprint = config.fingerprint({k: d.sha256 for k, d in run.data.items()})
    loop = LoopState(fingerprint)
    if config.resume:
        loop, weights, state = run.checkpoint.load(fingerprint)
        model.load_state_dict(weights)
        run.optimizer.load_state_dict(state["optimizer"])
        run.scheduler.load_state_dict(state["scheduler"])
        run.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
    rng = {"value": rng_state()}
    try:
        while loop.epoch < config.epochs:
            train_loss = _epoch(run, loop, stop, lambda r: rng.update(value=r))
            report = evaluate(
                model, run.encoded["dev"], run.start.labels, config.eval_batch_size, run.amp_dtype
            )
            _record_epoch(run, loop, train_loss, report)
            loop.epoch, loop.batches_done = loop.epoch + 1, 0
            _save(run, loop, rng_state())
    except BaseException as exc:
        _save(run, loop, rng["value"])
        raise TrainingInterrupted(str(run.checkpoint.path), exc) from exc
    best = run.checkpoint.best_weights()
    if best is not None:
        model.load_state_dict(best)
    test = None
    if "test" in run.encoded:
        test = evaluate(
            model, run.encoded["test"], run.start.labels, config.eval_batch_size, run.amp_dtype
        )
    speed = loop.examples_seen / max(1e-9, loop.train_seconds)
    version = _store(run, store, loop, test, time.monotonic() - started, speed)
    run.checkpoint.clear()
    card = store.card(config.model, version)
    run.progress(
        Progress(
            "done",
            loop.epoch,
            config.epochs,
            metrics={"version": version, "dev": card.dev_metrics, "test": card.test_metrics},
            examples_per_s=speed,
        )
    )
    return TrainOutcome(version, card, loop.best_epoch or 1, speed)


def _record_epoch(run: _Run, loop: LoopState, train_loss: float, report: EvalReport) -> None:
    entry = {
        "epoch": loop.epoch + 1,
        "train_loss": round(train_loss, 5),
        "dev_accuracy": report.accuracy,
        "dev_macro_f1": report.macro_f1,
        "examples_seen": loop.examples_seen,
        "train_seconds": round(loop.train_seconds, 2),
    }
    loop.history.append(entry)
    if report.accuracy > loop.best_accuracy:  # ties keep the earlier epoch, as UER does
        loop.best_accuracy, loop.best_epoch = report.accuracy, loop.epoch + 1
        run.checkpoint.save_best(run.start.model)
    run.progress(Progress("eval", loop.epoch + 1, run.config.epochs, metrics=entry))


def _store(
    run: _Run,
    store: ModelStore,
    loop: LoopState,
    test: EvalReport | None,
    duration_s: float,
    speed: float,
) -> str:
    model, tokenizer = run.start.model, run.start.tokenizer

    def write(tmp: Path) -> ModelCard:
        model.to("cpu").save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        # Probe texts, with their labels, for the worker's check of reduced precisions.
        dev, labels = run.data["dev"].examples, run.start.labels
        write_probe_file(
            tmp, [(e.text, e.text_pair) for e in dev], labels=[labels[e.label] for e in dev]
        )
        card = build_card(run.config, run.start, run.data, loop, test, duration_s, speed)
        reference = drift_reference(tmp, model, tokenizer)  # from its dev texts
        return card.model_copy(update={"drift_reference": reference})

    return store.add_version(run.config.model, write)
