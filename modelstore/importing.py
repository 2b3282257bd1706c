"""Importing Hugging Face checkpoints (directory or hub id) into the store as safetensors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from modelstore.exceptions import ModelStoreError, UnsafeWeights
from modelstore.store import WEIGHTS_FILE, ModelStore, utc_now
from schemas.card import ModelCard

TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def _resolve_source(source: str) -> Path:
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ModelStoreError(f"{source}: not a checkpoint directory")
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(
                source,
                allow_patterns=["*.json", "*.txt", "*.safetensors", "pytorch_model.bin"],
            )
        )
    except Exception as exc:
        raise ModelStoreError(
            f"{source}: not a local directory and the hub could not be reached ({exc}). "
            "Download the checkpoint elsewhere and import its directory."
        ) from exc


def convert_weights(src: Path, dst: Path) -> None:
    """Copy safetensors weights, or read `pytorch_model.bin` with weights_only=True and re-save."""
    if (src / WEIGHTS_FILE).is_file():
        shutil.copyfile(src / WEIGHTS_FILE, dst / WEIGHTS_FILE)
        return
    legacy = src / "pytorch_model.bin"
    if not legacy.is_file():
        raise UnsafeWeights(f"{src}: neither {WEIGHTS_FILE} nor pytorch_model.bin")
    import torch
    from safetensors.torch import save_file

    state = torch.load(legacy, map_location="cpu", weights_only=True)
    tensors = {k: v.detach().clone().contiguous() for k, v in state.items() if torch.is_tensor(v)}
    save_file(tensors, str(dst / WEIGHTS_FILE), metadata={"format": "pt"})


def import_checkpoint(store: ModelStore, name: str, source: str) -> str:
    """Store a HF sequence-classification checkpoint as a new version of `name`."""
    src = _resolve_source(source)
    config = json.loads((src / "config.json").read_text(encoding="utf-8"))
    id2label = config.get("id2label") or {}
    labels = [id2label[k] for k in sorted(id2label, key=int)]
    if not labels:
        raise ModelStoreError(f"{src}/config.json has no id2label: not a classifier checkpoint")

    def write(tmp: Path) -> ModelCard:
        shutil.copyfile(src / "config.json", tmp / "config.json")
        for fname in TOKENIZER_FILES:
            if (src / fname).is_file():
                shutil.copyfile(src / fname, tmp / fname)
        convert_weights(src, tmp)
        from modelstore.loading import load_classifier

        load_classifier(tmp)  # proves it loads before it is stored
        return ModelCard(
            name=name,
            version="pending",
            created_at=utc_now(),
            source="import",
            labels=labels,
            hyperparameters={"imported_from": str(source)},
        )

    return store.add_version(name, write)
