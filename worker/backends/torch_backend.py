"""torch: the Hugging Face model itself, in fp32 (the reference), bf16/fp16 weights, or with
dynamically quantized int8 Linear layers (CPU only)."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import numpy as np
import torch

from worker.backends.base import BackendUnavailable, Spec

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class TorchBackend:
    def __init__(self, model: Any, device: torch.device, precision: str, copy_model: bool) -> None:
        """Wrap `model` (fp32); with `copy_model`, leave the given one untouched (the fp32
        reference stays usable while candidates are measured)."""
        self.spec = Spec("torch", precision)
        self.device = device
        if precision == "int8":
            if device.type != "cpu":
                raise BackendUnavailable("dynamic int8 torch runs on CPU only")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch.ao.quantization deprecation notices
                model = torch.ao.quantization.quantize_dynamic(  # type: ignore[no-untyped-call]
                    model, {torch.nn.Linear}, dtype=torch.qint8, inplace=not copy_model
                )
        elif precision in DTYPES:
            if copy_model and precision != "fp32":
                model = copy.deepcopy(model)
            model = model.to(device, dtype=DTYPES[precision])
        else:
            raise BackendUnavailable(f"unknown torch precision {precision!r}")
        self.model = model.eval()

    def forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        dev = self.device
        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(ids).to(dev, non_blocking=True),
                token_type_ids=torch.from_numpy(types).to(dev, non_blocking=True),
                attention_mask=torch.from_numpy(mask).to(dev, non_blocking=True),
            )
        logits: np.ndarray = out.logits.float().cpu().numpy()
        return logits

    def is_oom(self, exc: BaseException) -> bool:
        """Whether `exc` is an out-of-memory error (then the CUDA cache is emptied too)."""
        oom = isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()
        if oom and self.device.type == "cuda":
            torch.cuda.empty_cache()
        return oom

    def release(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
