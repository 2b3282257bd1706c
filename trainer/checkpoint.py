"""Resumable training checkpoints: weights, optimizer, scheduler, RNG and loop position."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.exceptions import CheckpointError

PROGRESS_FILE = "progress.json"
STATE_FILE = "state.pt"


@dataclass
class LoopState:
    """Where the loop is: `batches_done` micro-batches of `epoch` have been applied."""

    fingerprint: str
    epoch: int = 0
    batches_done: int = 0
    best_accuracy: float = -1.0
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    examples_seen: int = 0
    train_seconds: float = 0.0


class Checkpoint:
    """A directory: `last/` and `best/` (HF format), `state.pt`, `progress.json`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def exists(self) -> bool:
        return (self.path / PROGRESS_FILE).is_file()

    def save(self, model: Any, trainer_state: dict[str, Any], loop: LoopState) -> None:
        """Write the weights and optimizer first and the loop position last, atomically."""
        import torch

        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / "last.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        torch.save(trainer_state, tmp / STATE_FILE)
        shutil.rmtree(self.path / "last", ignore_errors=True)
        tmp.rename(self.path / "last")
        progress = self.path / (PROGRESS_FILE + ".tmp")
        progress.write_text(json.dumps(asdict(loop), indent=2), encoding="utf-8")
        os.replace(progress, self.path / PROGRESS_FILE)

    def save_best(self, model: Any) -> None:
        tmp = self.path / "best.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.rmtree(self.path / "best", ignore_errors=True)
        tmp.rename(self.path / "best")

    def load(self, fingerprint: str) -> tuple[LoopState, dict[str, Any], dict[str, Any]]:
        """(loop position, model state dict, optimizer/scheduler/RNG state)."""
        import torch
        from safetensors.torch import load_file

        if not self.exists():
            raise CheckpointError(f"no checkpoint to resume from in {self.path}")
        loop = LoopState(**json.loads((self.path / PROGRESS_FILE).read_text(encoding="utf-8")))
        if loop.fingerprint != fingerprint:
            raise CheckpointError(
                f"checkpoint in {self.path} was made with other data, base or hyper-parameters; "
                "run without --resume to start over"
            )
        weights = load_file(str(self.path / "last" / "model.safetensors"))
        state = torch.load(self.path / "last" / STATE_FILE, map_location="cpu", weights_only=True)
        return loop, weights, state

    def best_weights(self) -> dict[str, Any] | None:
        from safetensors.torch import load_file

        path = self.path / "best" / "model.safetensors"
        return load_file(str(path)) if path.is_file() else None

    def clear(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
