"""Loading a stored version: safetensors only, no remote code, weights checked by sha256."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore.exceptions import UnsafeWeights
from modelstore.store import WEIGHTS_FILE, file_sha256


def verify_weights(path: Path, expected_sha256: str | None = None) -> str:
    """The weights' sha256, after checking it is a safetensors file (and the expected one)."""
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise UnsafeWeights(f"{path}: no {WEIGHTS_FILE}; only safetensors weights are loaded")
    actual = file_sha256(weights)
    if expected_sha256 is not None and actual != expected_sha256:
        raise UnsafeWeights(
            f"{path}: weights sha256 {actual[:12]}… does not match expected {expected_sha256[:12]}…"
        )
    return actual


def load_config_and_tokenizer(path: Path) -> tuple[Any, Any]:
    """The model config (labels, sizes) and tokenizer, without the weights."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    return config, AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def load_model(path: Path) -> Any:
    """The sequence classifier's weights (call `verify_weights` first), in eval mode."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, trust_remote_code=False
        )
    except Exception as exc:  # corrupt file, wrong shapes, ...
        raise UnsafeWeights(f"{path}: cannot load weights: {exc}") from exc
    return model.eval()


def load_classifier(path: Path, expected_sha256: str | None = None) -> tuple[Any, Any]:
    """Load a sequence classifier and its tokenizer from a version directory."""
    from transformers import AutoTokenizer

    if expected_sha256 is not None:
        verify_weights(path, expected_sha256)
    elif not (path / WEIGHTS_FILE).is_file():
        raise UnsafeWeights(f"{path}: no {WEIGHTS_FILE}; only safetensors weights are loaded")
    model = load_model(path)
    return model, AutoTokenizer.from_pretrained(path, trust_remote_code=False)
