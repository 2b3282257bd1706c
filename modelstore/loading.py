"""Loading a stored version as a (model, tokenizer) pair: safetensors only, no remote code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore.exceptions import UnsafeWeights
from modelstore.store import WEIGHTS_FILE, file_sha256


def load_classifier(path: Path, expected_sha256: str | None = None) -> tuple[Any, Any]:
    """Load a sequence classifier and its tokenizer from a version directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise UnsafeWeights(f"{path}: no {WEIGHTS_FILE}; only safetensors weights are loaded")
    if expected_sha256 is not None:
        actual = file_sha256(weights)
        if actual != expected_sha256:
            raise UnsafeWeights(
                f"{path}: weights sha256 {actual[:12]}… does not match expected {expected_sha256[:12]}…"
            )
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, trust_remote_code=False
        )
    except Exception as exc:  # corrupt file, wrong shapes, ...
        raise UnsafeWeights(f"{path}: cannot load weights: {exc}") from exc
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    model.eval()
    return model, tokenizer
