"""Metadata of one model version (`card.json` in the model store)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from schemas.drift import DriftReference


class DataFile(BaseModel):
    path: str
    sha256: str
    rows: int


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="allow", protected_namespaces=())

    name: str
    version: str
    parent: str | None = None
    created_at: str
    source: str = "init"  # init | import | import-uer | train
    labels: list[str]
    preset: str | None = None
    data: list[DataFile] = Field(default_factory=list)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    dev_metrics: dict[str, Any] = Field(default_factory=dict)
    test_metrics: dict[str, Any] = Field(default_factory=dict)
    epochs: list[dict[str, Any]] = Field(default_factory=list)
    duration_s: float | None = None
    libraries: dict[str, str] = Field(default_factory=dict)
    weights_sha256: str | None = None
    # sha256 of every file of the version, by path relative to its directory (weights,
    # config.json, tokenizer files, ONNX graphs and manifest; not card.json). Empty on cards
    # written before per-file hashes: only `weights_sha256` is checked for those.
    files: dict[str, str] = Field(default_factory=dict)
    # what its answers look like on its dev (trained) or probe (init, import) texts
    drift_reference: DriftReference | None = None
