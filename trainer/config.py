"""The typed configuration of one training run (UER recipe as defaults) and progress events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The fields a training job may set in `TrainJob.hyperparameters`.
HYPERPARAMETERS = (
    "epochs", "max_seq_len", "learning_rate", "batch_size", "warmup", "weight_decay",
    "grad_accum_steps", "max_grad_norm", "precision", "seed", "eval_batch_size", "skip_bad",
    "device", "checkpoint_every_steps",
)  # fmt: skip


class TrainConfig(BaseModel):
    """Everything `trainer.train.train` needs. Defaults are UER-py's classifier recipe."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    model: str
    train: str
    dev: str
    test: str | None = None
    base_version: str | None = None  # default: the active (else newest) version of `model`
    base_dir: str | None = None  # an HF checkpoint directory; a new head sized to the labels
    labels: list[str] | None = None  # needed with base_dir when `model` is not in the store yet

    epochs: int = Field(3, ge=1)
    max_seq_len: int = Field(512, ge=8, le=512)
    learning_rate: float = Field(3e-5, gt=0)
    batch_size: int = Field(32, ge=1)
    warmup: float = Field(0.1, ge=0, lt=1)  # fraction of optimizer steps with linear warm-up
    weight_decay: float = Field(0.01, ge=0)
    grad_accum_steps: int = Field(1, ge=1)
    max_grad_norm: float = Field(1.0, ge=0)  # 0 turns clipping off
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"  # auto: bf16/fp16 on CUDA
    seed: int = 7
    eval_batch_size: int = Field(64, ge=1)
    skip_bad: bool = False
    device: str = "auto"
    resume: bool = False
    checkpoint_every_steps: int = Field(0, ge=0)  # 0: at epoch ends and on interruption only
    checkpoint_dir: str | None = None  # default <store>/.checkpoints/<model>

    def hyperparameters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HYPERPARAMETERS}

    def fingerprint(self, data_sha256: dict[str, str]) -> str:
        """Identifies a run for resuming: same data, base and hyper-parameters."""
        payload = {
            "model": self.model,
            "base": [self.base_version, self.base_dir],
            "data": data_sha256,
            "hp": {k: v for k, v in self.hyperparameters().items() if k != "device"},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Progress:
    """One progress report: `phase` is load | train | eval | checkpoint | done."""

    phase: str
    epoch: int = 0
    epochs: int = 0
    step: int = 0  # optimizer steps done in this epoch
    steps: int = 0  # optimizer steps per epoch
    loss: float | None = None
    examples_per_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


ProgressFn = Callable[[Progress], None]
