"""The model store on disk: `<root>/<model>/<version>/` with config, safetensors, tokenizer, card."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from modelstore.exceptions import ModelNotFound, UnsafeWeights, VersionNotFound
from modelstore.names import validate_name
from schemas.card import ModelCard

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
ACTIVE_FILE = "active.json"
_VERSION_NUM = re.compile(r"^v(\d+)$")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    path: Path
    card: ModelCard
    size_bytes: int


def _version_key(version: str) -> tuple[int, str]:
    match = _VERSION_NUM.match(version)
    return (int(match.group(1)) if match else -1, version)


class ModelStore:
    """A directory of versioned classifiers. Versions are immutable once written."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths -------------------------------------------------------------------------
    def model_dir(self, model: str) -> Path:
        return self.root / validate_name(model, "model name")

    def version_dir(self, model: str, version: str) -> Path:
        return self.model_dir(model) / validate_name(version, "version")

    # -- reading -----------------------------------------------------------------------
    def models(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )

    def versions(self, model: str) -> list[str]:
        mdir = self.model_dir(model)
        if not mdir.is_dir():
            return []
        names = [p.name for p in mdir.iterdir() if p.is_dir() and (p / CARD_FILE).is_file()]
        return sorted(names, key=_version_key)

    def exists(self, model: str, version: str) -> bool:
        return (self.version_dir(model, version) / CARD_FILE).is_file()

    def require(self, model: str, version: str | None = None) -> Path:
        """Path of a version (the active one when `version` is None); raise if absent."""
        if not self.versions(model):
            raise ModelNotFound(f"model {model!r} has no versions in store {self.root}")
        version = version or self.default_version(model)
        if not self.exists(model, version):
            known = ", ".join(self.versions(model))
            raise VersionNotFound(f"model {model!r} has no version {version!r} (known: {known})")
        return self.version_dir(model, version)

    def card(self, model: str, version: str) -> ModelCard:
        path = self.require(model, version) / CARD_FILE
        return ModelCard.model_validate_json(path.read_text(encoding="utf-8"))

    def info(self, model: str, version: str) -> VersionInfo:
        path = self.require(model, version)
        size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
        return VersionInfo(model, version, path, self.card(model, version), size)

    def latest(self, model: str) -> str | None:
        versions = self.versions(model)
        return versions[-1] if versions else None

    def weights_sha256(self, model: str, version: str) -> str:
        weights = self.require(model, version) / WEIGHTS_FILE
        if not weights.is_file():
            raise UnsafeWeights(f"{model}@{version}: no {WEIGHTS_FILE} (only safetensors load)")
        return file_sha256(weights)

    # -- active pointer (the store's own record; workers follow the control topic) ------
    def active(self, model: str) -> str | None:
        path = self.model_dir(model) / ACTIVE_FILE
        if not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8")).get("version")

    def history(self, model: str) -> list[str]:
        path = self.model_dir(model) / ACTIVE_FILE
        if not path.is_file():
            return []
        return list(json.loads(path.read_text(encoding="utf-8")).get("history", []))

    def set_active(self, model: str, version: str) -> None:
        self.require(model, version)
        history = self.history(model)
        current = self.active(model)
        if current and current != version:
            history.append(current)
        payload = {"version": version, "history": history[-20:], "updated_at": utc_now()}
        _atomic_write(self.model_dir(model) / ACTIVE_FILE, json.dumps(payload, indent=2))

    def default_version(self, model: str) -> str:
        """The active version if one was set, else the newest."""
        version = self.active(model) or self.latest(model)
        if version is None:
            raise ModelNotFound(f"model {model!r} has no versions in store {self.root}")
        return version

    # -- writing -----------------------------------------------------------------------
    def next_version(self, model: str) -> str:
        nums = [_version_key(v)[0] for v in self.versions(model)]
        return f"v{max([0, *nums]) + 1}"

    def add_version(
        self, model: str, write: Callable[[Path], ModelCard], version: str | None = None
    ) -> str:
        """Create a new version: `write(tmpdir)` fills a directory and returns its card.

        The directory is moved into place atomically, so readers never see half a version.
        """
        mdir = self.model_dir(model)
        mdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=mdir))
        try:
            card = write(tmp)
            if not (tmp / WEIGHTS_FILE).is_file():
                raise UnsafeWeights(f"new version of {model!r} has no {WEIGHTS_FILE}")
            for _ in range(100):
                version = version or self.next_version(model)
                validate_name(version, "version")
                card = card.model_copy(
                    update={
                        "name": model,
                        "version": version,
                        "weights_sha256": file_sha256(tmp / WEIGHTS_FILE),
                    }
                )
                (tmp / CARD_FILE).write_text(card.model_dump_json(indent=2), encoding="utf-8")
                try:
                    tmp.rename(mdir / version)
                    return version
                except OSError:  # a concurrent writer took this number
                    if (mdir / version).exists():
                        version = None
                        continue
                    raise
            raise RuntimeError(f"could not allocate a version for {model!r}")
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def delete(self, model: str, version: str) -> None:
        path = self.require(model, version)
        shutil.rmtree(path)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
