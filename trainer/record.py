"""The card of a trained version: parent, data with sha256, hyper-parameters, metrics, libraries."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import TYPE_CHECKING, Any

from modelstore.files import utc_now
from schemas.card import DataFile, ModelCard

if TYPE_CHECKING:
    from trainer.base import Start
    from trainer.checkpoint import LoopState
    from trainer.config import TrainConfig
    from trainer.data import Dataset
    from trainer.evaluate import EvalReport

LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "streamclf")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def build_card(
    config: TrainConfig,
    start: Start,
    data: dict[str, Dataset],
    loop: LoopState,
    test: EvalReport | None,
    duration_s: float,
    examples_per_s: float,
) -> ModelCard:
    best = next((e for e in loop.history if e["epoch"] == loop.best_epoch), {})
    dev = data["dev"]
    dev_metrics: dict[str, Any] = {
        "accuracy": best.get("dev_accuracy"),
        "macro_f1": best.get("dev_macro_f1"),
        "epoch": loop.best_epoch,
        "data": dev.path,
        "sha256": dev.sha256,
        "examples": dev.rows,
    }
    test_metrics: dict[str, Any] = {}
    if test is not None:
        test_metrics = {**test.to_dict(), "data": data["test"].path, "sha256": data["test"].sha256}
    hyper = config.hyperparameters() | {
        "base_version": start.parent,
        "base_dir": config.base_dir,
        "skipped_rows": {k: d.skipped for k, d in data.items()},
        "examples_per_s": round(examples_per_s, 2),
        "resumed": config.resume,
    }
    return ModelCard(
        name=config.model,
        version="pending",
        parent=start.parent,
        created_at=utc_now(),
        source="train",
        labels=start.labels,
        preset=start.preset,
        data=[DataFile(path=d.path, sha256=d.sha256, rows=d.rows) for d in data.values()],
        hyperparameters=hyper,
        dev_metrics=dev_metrics,
        test_metrics=test_metrics,
        epochs=loop.history,
        duration_s=round(duration_s, 2),
        libraries=library_versions(),
        splits={k: d.path for k, d in data.items()},
    )
