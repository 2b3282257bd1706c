"""`streamclf predict`: classify one text with a stored version, exactly as a worker would."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from admin.context import (
    EXIT_FAILED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    JsonOpt,
    StoreOpt,
    console,
    fail,
    model_store,
)
from admin.safe_text import esc
from modelstore.exceptions import IntegrityError, ModelStoreError
from schemas.events import LabelledEvent, LabelScore, Timings

PREDICT_SOURCE = "streamclf.predict"  # source_topic of a one-off prediction (partition/offset -1)


def classify(
    store_root: Path | None, name: str, version: str | None, text: str, text_pair: str | None
) -> LabelledEvent:
    """Load NAME@VERSION (the active one by default) with the worker's engine and settings
    (`STREAMCLF_DEVICE`, `_DTYPE`, `_ENGINE`, `_MAX_LENGTH`, `_TOP_K`) and classify one text."""
    from worker.inference import InferenceEngine
    from worker.settings import WorkerSettings

    store = model_store(store_root)
    version = version or store.default_version(name)
    path = store.require(name, version)
    engine = InferenceEngine(path, **WorkerSettings().engine_options())  # checks every file
    started = time.perf_counter()
    pred = engine.predict([text], [text_pair])[0]
    return LabelledEvent(
        id="predict",
        label=pred.label,
        label_id=pred.label_id,
        score=pred.score,
        scores=[LabelScore(label=lb, label_id=i, score=p) for lb, i, p in pred.scores],
        model=name,
        version=version,
        truncated=pred.truncated,
        source_topic=PREDICT_SOURCE,
        source_partition=-1,
        source_offset=-1,
        timings=Timings(inference_ms=round((time.perf_counter() - started) * 1000, 3)),
        worker_id="cli",
        produced_at_ms=int(time.time() * 1000),
    )


def predict(
    name: str = typer.Argument(..., help="Model name"),
    text: str = typer.Argument(..., help="The text to classify"),
    text_pair: str | None = typer.Option(None, "--text-pair", help="Second text of a pair"),
    version: str | None = typer.Option(None, "--version", help="Version (default the active)"),
    store: Path | None = StoreOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Classify one text; --json prints the LabelledEvent a worker would publish."""
    if not text.strip():
        fail("text is empty or whitespace only", EXIT_USAGE)
    try:
        event = classify(store, name, version, text, text_pair)
    except IntegrityError as exc:  # a stored file differs from the card: refused
        fail(str(exc), EXIT_UNAVAILABLE)
    except ModelStoreError as exc:
        fail(str(exc), EXIT_USAGE)
    except (RuntimeError, ValueError) as exc:
        fail(f"{name}@{version or 'active'} cannot classify: {exc}", EXIT_FAILED)
    if as_json:
        typer.echo(event.model_dump_json())
        return
    console.print(
        f"[bold]{esc(event.label)}[/] {event.score:.4f}  ({esc(name)}@{esc(event.version)})"
    )
    for s in event.scores[1:]:
        console.print(f"  {esc(s.label)} {s.score:.4f}", highlight=False)
