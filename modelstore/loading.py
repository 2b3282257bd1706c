"""Loading a stored version: safetensors only, no remote code, every file checked against its
card first (`modelstore.integrity.verify_version`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore.exceptions import UnsafeWeights
from modelstore.hf import disable_progress_bar
from modelstore.integrity import VerifiedVersion, verify_version


def load_config_and_tokenizer(path: Path) -> tuple[Any, Any]:
    """The model config (labels, sizes) and tokenizer, without the weights."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(path, trust_remote_code=False)
    return config, AutoTokenizer.from_pretrained(path, trust_remote_code=False)


def load_model(path: Path) -> Any:
    """The sequence classifier's weights (call `verify_version` first), in eval mode."""
    from transformers import AutoModelForSequenceClassification

    disable_progress_bar()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, use_safetensors=True, trust_remote_code=False
        )
    except Exception as exc:  # corrupt file, wrong shapes, ...
        raise UnsafeWeights(f"{path}: cannot load weights: {exc}") from exc
    return model.eval()


def load_classifier(
    path: Path, expected_sha256: str | None = None, verified: VerifiedVersion | None = None
) -> tuple[Any, Any]:
    """Load a sequence classifier and its tokenizer from a version directory, after checking
    its files against its card (`verified`: already checked by this load)."""
    from transformers import AutoTokenizer

    if verified is None:
        verify_version(Path(path), expected_sha256)
    model = load_model(path)
    return model, AutoTokenizer.from_pretrained(path, trust_remote_code=False)
