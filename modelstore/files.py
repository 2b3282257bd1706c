"""Names and hashing of the files that make a version: a leaf the store, its integrity checks
and the ONNX exporter all read, so none of them needs another for a constant."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
ONNX_DIR = "onnx"  # graphs and their manifest, beside the weights


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file, read in chunks (weights can be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
