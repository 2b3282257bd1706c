"""The backend interface and what names a backend (kind + precision)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int8-static")  # int8-static: ONNX, calibrated


class InferenceFailed(RuntimeError):
    """One input could not be classified even alone (e.g. out of memory)."""


class BackendUnavailable(RuntimeError):
    """This backend or precision cannot run here (package missing, device, export failed)."""


@dataclass(frozen=True)
class Spec:
    backend: str  # torch | onnx
    precision: str  # fp32 | bf16 | fp16 | int8 (dynamic) | int8-static (ONNX, calibrated)

    def __str__(self) -> str:
        return f"{self.backend} {self.precision}"


REFERENCE = Spec("torch", "fp32")


class Backend(Protocol):
    """A loaded network: padded int64 arrays in, fp32 logits out (rows x labels)."""

    spec: Spec

    def forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray: ...

    def is_oom(self, exc: BaseException) -> bool: ...

    def release(self) -> None: ...
