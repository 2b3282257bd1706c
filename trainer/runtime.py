"""Runtime pieces of the loop: device and autocast dtype, AdamW with warm-up, RNG state, seeding."""

from __future__ import annotations

import random
from typing import Any

from trainer.config import TrainConfig
from trainer.exceptions import ConfigError


def device_and_dtype(config: TrainConfig) -> tuple[Any, Any]:
    import torch

    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    precision = config.precision
    if precision == "auto":
        precision = (
            "fp32"
            if device.type != "cuda"
            else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
        )
    if precision != "fp32" and device.type != "cuda":
        raise ConfigError(f"--precision {precision} needs a CUDA device (got {device})")
    return device, {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def make_optimizer(model: Any, config: TrainConfig, total_steps: int) -> tuple[Any, Any]:
    """AdamW without decay on biases and LayerNorm; linear warm-up then linear decay."""
    import torch

    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, param in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.learning_rate)
    warm = int(total_steps * config.warmup)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def rng_state() -> dict[str, Any]:
    import torch

    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
