"""Inference backends: the ONNX manifest of a version and the engine choice made at load."""

from __future__ import annotations

from pydantic import BaseModel, Field


class OnnxFile(BaseModel):
    precision: str  # fp32 | int8
    path: str  # relative to the version directory
    sha256: str
    size_bytes: int


class OnnxManifest(BaseModel):
    """`onnx/manifest.json` in a version directory: what was exported from which weights."""

    schema_version: int = 1
    weights_sha256: str  # the safetensors file the graphs were exported from
    files: list[OnnxFile] = Field(default_factory=list)
    opset: int
    exporter: str  # e.g. "torch.onnx (TorchScript) 2.13.0"
    quantizer: str | None = None  # e.g. "onnxruntime.quantization.quantize_dynamic 1.32.0"
    exported_at: str
    seconds: float = 0.0

    def file(self, precision: str) -> OnnxFile | None:
        return next((f for f in self.files if f.precision == precision), None)


class CandidateReport(BaseModel):
    """One backend/precision measured on the probe texts against fp32 torch."""

    backend: str  # torch | onnx
    precision: str  # fp32 | bf16 | fp16 | int8
    texts_per_s: float | None = None
    agreement: float | None = None  # top-1 agreement with fp32 torch
    max_score_diff: float | None = None  # max |p - p_fp32| over every class probability
    # On the labelled probe texts (the trainer's dev labels); None when there are none.
    accuracy: float | None = None
    accuracy_delta: float | None = None  # accuracy minus fp32 torch's (negative: a drop)
    accepted: bool = False
    reason: str | None = None  # why it was refused or not measured


class EngineChoice(BaseModel):
    """The backend a loaded version runs on, and why (written beside the card, in status)."""

    backend: str
    precision: str
    device: str
    mode: str  # "auto" (measured) or "explicit"
    agreement: float | None = None
    max_score_diff: float | None = None
    accuracy: float | None = None  # on the labelled probe texts, when there are enough
    accuracy_delta: float | None = None  # minus fp32 torch's accuracy there
    labelled_probes: int = 0
    rule: str | None = None  # the acceptance rule applied, in words
    texts_per_s: float | None = None
    probe_texts: int = 0
    probe_source: str | None = None  # "version" (the trainer's dev texts) | "shipped"
    candidates: list[CandidateReport] = Field(default_factory=list)
    measured_at: str | None = None
    measure_seconds: float | None = None
    cached: bool = False  # taken from engine-choice.json instead of measured at this load
    key: str | None = None  # weights + settings + machine the measurement is valid for

    def summary(self) -> str:
        parts = [f"{self.backend} {self.precision} ({self.mode})"]
        if self.texts_per_s:
            parts.append(f"{self.texts_per_s:.1f} texts/s")
        if self.agreement is not None:
            parts.append(
                f"top-1 agreement with fp32 {self.agreement:.1%} on {self.probe_texts} "
                f"{self.probe_source} probe texts, max score diff {self.max_score_diff or 0:.2g}"
            )
        if self.accuracy is not None:
            parts.append(
                f"accuracy {self.accuracy:.1%} ({(self.accuracy_delta or 0) * 100:+.2f} points "
                f"vs fp32) on {self.labelled_probes} labelled probe texts"
            )
        if self.cached:
            parts.append("cached choice")
        return ", ".join(parts)
