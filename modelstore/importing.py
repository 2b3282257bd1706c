"""Importing Hugging Face checkpoints (directory or hub id) into the store as safetensors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from modelstore.exceptions import ModelStoreError, NotACheckpoint, UnsafeWeights
from modelstore.files import WEIGHTS_FILE, utc_now
from modelstore.hub import fetch, looks_like_hub_id
from modelstore.reference import drift_reference
from modelstore.store import ModelStore
from schemas.card import ModelCard

TOKENIZER_FILES = (
    "vocab.txt",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
)


def _resolve_source(source: str, revision: str | None = None) -> Path:
    """A local checkpoint directory, or a hub id fetched into (or found in) the hub cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        if revision:
            raise ModelStoreError(f"{source} is a local directory: --revision is for hub ids")
        return path
    if path.exists():
        raise NotACheckpoint(f"{source}: a file, not a checkpoint directory")
    if not looks_like_hub_id(source):
        raise NotACheckpoint(f"{source}: no such directory (and not a hub id like org/name)")
    return fetch(source, revision)


def _require_config(src: Path, source: str) -> dict[str, Any]:
    config_path = src / "config.json"
    if not config_path.is_file():
        raise NotACheckpoint(
            f"{source}: no config.json, so not a Hugging Face checkpoint directory: save one "
            "with `model.save_pretrained(DIR)` and `tokenizer.save_pretrained(DIR)`, or import "
            "a UER-py .bin with `streamclf models import-uer`"
        )
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise NotACheckpoint(f"{source}: config.json is not a JSON object")
    return config


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


def import_checkpoint(
    store: ModelStore, name: str, source: str, revision: str | None = None
) -> str:
    """Store a HF sequence-classification checkpoint (a directory, or a hub id at `revision`)
    as a new version of `name`."""
    src = _resolve_source(source, revision)
    config = _require_config(src, source)
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

        model, tokenizer = load_classifier(tmp)  # proves it loads before it is stored
        return ModelCard(
            name=name,
            version="pending",
            created_at=utc_now(),
            source="import",
            labels=labels,
            hyperparameters=_provenance(source, src, revision),
            drift_reference=drift_reference(tmp, model, tokenizer),
        )

    return store.add_version(name, write)


def _provenance(source: str, src: Path, revision: str | None) -> dict[str, str]:
    """Where a version came from; for the hub, the resolved commit (the snapshot's name)."""
    if Path(source).expanduser().is_dir():
        return {"imported_from": str(source)}
    return {"imported_from": source, "revision": revision or "main", "commit": src.name}
