"""`streamclf train`, `streamclf eval` and `streamclf trainer serve`."""

from __future__ import annotations

import getpass
import shlex
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Column, Table

from admin.context import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    MODEL_REF,
    MODEL_REF_HELP,
    BootstrapOpt,
    JsonOpt,
    StoreOpt,
    console,
    fail,
    kafka_settings,
    model_store,
    print_json,
    run,
)
from admin.safe_text import cell, esc
from bus.exceptions import BusError
from modelstore.exceptions import ModelStoreError
from modelstore.store import ModelStore
from trainer.exceptions import PromotionRefused, TrainerError

if TYPE_CHECKING:
    from trainer.config import Progress as TrainProgress

trainer_app = typer.Typer(help="The trainer service.")


def requester() -> str:
    try:
        return f"{getpass.getuser()}@{socket.gethostname()}"
    except (KeyError, OSError):
        return socket.gethostname()


class ProgressView:
    """A rich progress bar per epoch with loss and examples/s; evaluation lines in between."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[speed]} ex/s"),
            TimeElapsedColumn(),
            console=console,
        )
        self.tasks: dict[int, TaskID] = {}

    def __call__(self, p: TrainProgress) -> None:
        if p.phase == "load":
            console.print(f"[dim]{esc(p.message)}[/]")
        elif p.phase == "train":
            if p.epoch not in self.tasks:
                self.tasks[p.epoch] = self.bar.add_task(
                    "", total=p.steps, epoch=f"{p.epoch}/{p.epochs}", loss="-", speed="-"
                )
            self.bar.update(
                self.tasks[p.epoch],
                completed=p.step,
                loss=f"{p.loss:.4f}",
                speed=f"{p.examples_per_s:.0f}",
            )
        elif p.phase == "eval":
            m = p.metrics
            console.print(
                f"epoch {m['epoch']}: train loss {m['train_loss']:.4f}, dev accuracy "
                f"{m['dev_accuracy']:.4f}, macro-F1 {m['dev_macro_f1']:.4f}"
            )


def train(
    model: str = typer.Option(..., "--model", help="Model name in the store"),
    train_file: Path = typer.Option(..., "--train", help="UER TSV or JSON lines"),
    dev_file: Path = typer.Option(..., "--dev"),
    test_file: Path | None = typer.Option(None, "--test"),
    version: str | None = typer.Option(None, "--version", help="Start from this version"),
    base: Path | None = typer.Option(None, "--base", help="Start from an HF checkpoint dir"),
    labels: str | None = typer.Option(None, help="Labels of a new model started with --base"),
    epochs: int = typer.Option(3, min=1),
    max_seq_len: int = typer.Option(512, "--seq-len", min=8, max=512),
    learning_rate: float = typer.Option(3e-5, "--lr"),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    warmup: float = typer.Option(0.1, help="Fraction of steps with linear warm-up"),
    weight_decay: float = typer.Option(0.01),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1),
    precision: str = typer.Option("auto", help="auto | fp32 | bf16 | fp16 (CUDA)"),
    device: str = typer.Option("auto"),
    seed: int = typer.Option(7),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count bad rows"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint"),
    checkpoint_every: int = typer.Option(0, "--checkpoint-every", help="Also every N steps"),
    promote: bool = typer.Option(False, "--promote", help="Make it active if the gate allows"),
    force: bool = typer.Option(False, "--force", help="Promote even if dev accuracy is lower"),
    bootstrap: str | None = BootstrapOpt,
    store: Path | None = StoreOpt,
) -> None:
    """Fine-tune a classifier (UER recipe by default) and store the best epoch as a new version."""
    from pydantic import ValidationError

    from modelstore.labels import parse_labels
    from trainer.config import TrainConfig
    from trainer.train import train as run_training

    try:
        config = TrainConfig(
            model=model, train=str(train_file), dev=str(dev_file),
            test=str(test_file) if test_file else None, base_version=version,
            base_dir=str(base) if base else None,
            labels=parse_labels(labels) if labels else None, epochs=epochs,
            max_seq_len=max_seq_len, learning_rate=learning_rate, batch_size=batch_size,
            warmup=warmup, weight_decay=weight_decay, grad_accum_steps=grad_accum,
            precision=precision, device=device, seed=seed, skip_bad=skip_bad, resume=resume,
            checkpoint_every_steps=checkpoint_every,
        )  # fmt: skip
    except (ValidationError, ValueError) as exc:
        fail(str(exc), EXIT_USAGE)
    ms = model_store(store)
    view = ProgressView()
    try:
        with view.bar:
            outcome = run_training(config, ms, view)
    except (TrainerError, ModelStoreError) as exc:
        fail(str(exc))
    card = outcome.card
    skipped = {k: v for k, v in card.hyperparameters.get("skipped_rows", {}).items() if v}
    console.print(
        f"stored {model}@{outcome.version} (best epoch {outcome.best_epoch}, dev accuracy "
        f"{card.dev_metrics['accuracy']:.4f}"
        + (f", test accuracy {card.test_metrics['accuracy']:.4f}" if card.test_metrics else "")
        + f", {outcome.examples_per_s:.0f} examples/s"
        + (f", skipped rows {skipped}" if skipped else "")
        + ")"
    )
    if promote:
        _promote(model, outcome.version, force, bootstrap, store)
    else:
        for line in next_steps(ms, model, outcome.version, test_file or dev_file, store):
            console.print(line, soft_wrap=True, highlight=False, markup=False)


def next_steps(
    ms: ModelStore, model: str, version: str, data: Path, store: Path | None
) -> list[str]:
    """What a stored version is (serving or a candidate) and the commands that take it on."""
    active = ms.active(model)
    if active == version:
        return [f"{model}@{version} is the active version (the model's first): workers serve it"]
    at = f" --store {shlex.quote(str(store))}" if store else ""
    return [
        f"{model}@{version} is a candidate: stored, not serving (workers serve the active "
        f"version, {model}@{active}). Next:",
        f"  streamclf eval --model {model}@{version} --data {shlex.quote(str(data))}{at}"
        "   # evaluate it",
        f"  streamclf models shadow {model} {version}{at}   # classify live events beside "
        f"{active}, results on IN.shadow",
        f"  streamclf models promote {model} {version}{at}   # make it active (if its dev "
        f"accuracy is at least {active}'s)",
    ]


def _promote(
    model: str, version: str, force: bool, bootstrap: str | None, store: Path | None
) -> None:
    from trainer.promote import check_gate, request_swap
    from trainer.settings import TrainerSettings

    settings = TrainerSettings()
    ms = model_store(store)
    try:
        decision = check_gate(ms, model, version, force)
        run(request_swap(kafka_settings(bootstrap), ms, model, version, requester(),
                         settings.control_key_value(), settings.control_topic))  # fmt: skip
    except PromotionRefused as exc:
        fail(str(exc))
    except (TrainerError, ModelStoreError) as exc:
        fail(str(exc))
    except BusError as exc:
        fail(f"{exc} (the store's active version was not changed)", EXIT_UNAVAILABLE)
    console.print(f"promoted {model}@{version} ({decision.reason}); swap published")


def eval_(
    ref: str = typer.Option(..., "--model", metavar=MODEL_REF, help=MODEL_REF_HELP),
    data: Path = typer.Option(..., "--data", help="UER TSV or JSON lines"),
    max_seq_len: int = typer.Option(512, "--seq-len", min=8, max=512),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    skip_bad: bool = typer.Option(False, "--skip-bad"),
    plot: Path | None = typer.Option(None, "--plot", help="Write the confusion matrix as PNG"),
    store: Path | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall and the confusion matrix.

    --model NAME evaluates the active version (what workers serve); NAME@VERSION another one,
    such as the candidate `train` just stored. The output says which it evaluated."""
    from trainer.evaluate import evaluate_dir, plot_confusion

    name, _, version = ref.partition("@")
    ms = model_store(store)
    try:
        chosen = version or ms.default_version(name)
        active = ms.active(name) or (None if version else chosen)  # a store without a pointer
        version = chosen
        report = evaluate_dir(
            ms.require(name, version), str(data), max_seq_len, batch_size, skip_bad
        )
    except (TrainerError, ModelStoreError) as exc:
        fail(str(exc))
    if plot:
        plot_confusion(report, plot, f"{name}@{version} on {data.name}")
    if as_json:
        print_json({"model": name, "version": version, "active": version == active,
                    "data": str(data), **report.to_dict()})  # fmt: skip
        return
    which = (
        "the active version"
        if version == active
        else (f"not active; {active} is" if active else "no version is marked active")
    )
    console.print(
        f"{name}@{version} ({which}) on {escape(str(data))} ({report.examples} examples): "
        f"accuracy [bold]{report.accuracy:.4f}[/], macro-F1 [bold]{report.macro_f1:.4f}[/]",
        soft_wrap=True,
    )
    per_class = Table("label", "precision", "recall", "F1", "support", title="per class")
    for c in report.per_class:
        per_class.add_row(
            cell(c.label), f"{c.precision:.4f}", f"{c.recall:.4f}", f"{c.f1:.4f}", str(c.support)
        )
    console.print(per_class)
    names = [c.label for c in report.per_class]
    headers = [Column(header=cell(n, limit=12)) for n in names]  # label names: shown literally
    confusion = Table("true \\ predicted", *headers, title="confusion matrix")
    for name_, row in zip(names, report.confusion, strict=True):
        confusion.add_row(cell(name_, limit=24), *[str(v) for v in row])
    console.print(confusion)
    if plot:
        console.print(f"plot written to {plot}")


@trainer_app.command()
def serve(bootstrap: str | None = BootstrapOpt, store: Path | None = StoreOpt) -> None:
    """Consume training jobs and feedback; publish progress and results (Ctrl-C stops)."""
    import logging

    from trainer import metrics
    from trainer.service import TrainerService
    from trainer.settings import TrainerSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = TrainerSettings(model_store=store) if store else TrainerSettings()
    metrics.serve(settings.metrics_port, settings.http_host)
    console.print(
        f"trainer: jobs {settings.jobs_topic}, feedback {settings.feedback_topic} -> "
        f"{settings.results_topic}; store {settings.model_store}"
    )
    try:
        run(TrainerService(settings, kafka_settings(bootstrap)).run())
    except KeyboardInterrupt:
        console.print("stopped")
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def register(app: typer.Typer) -> None:
    """Add `train`, `eval` and the `trainer` sub-app to the root app."""
    app.command("train")(train)
    app.command("eval")(eval_)
    app.add_typer(trainer_app, name="trainer")
