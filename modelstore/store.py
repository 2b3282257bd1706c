"""The model store on disk: `<root>/<model>/<version>/` with config, safetensors, tokenizer, card."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelstore.active import ActivePointer, ActiveRecord
from modelstore.exceptions import (
    ModelNotFound,
    NoActiveVersion,
    UnsafeWeights,
    VersionNotFound,
    VersionRetired,
)
from modelstore.files import CARD_FILE, WEIGHTS_FILE, file_sha256, utc_now
from modelstore.integrity import hash_files
from modelstore.names import validate_name
from schemas.card import ModelCard

TOMBSTONES_FILE = "deleted.json"
_VERSION_NUM = re.compile(r"^v(\d+)$")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VersionInfo:
    model: str
    version: str
    path: Path
    card: ModelCard
    size_bytes: int


def _no_model(model: str, root: Path) -> str:
    return (
        f"model {model!r} has no versions in store {root}: create one with `streamclf models "
        f"init {model} --labels ...`, `streamclf models import {model} DIR_OR_HUB_ID` or "
        "`streamclf train`, or point --store / STREAMCLF_MODEL_STORE at the store that has it"
    )


def _version_key(version: str) -> tuple[int, str]:
    match = _VERSION_NUM.match(version)
    return (int(match.group(1)) if match else -1, version)


class ModelStore:
    """A directory of versioned classifiers. Versions are immutable once written."""

    def __init__(self, root: str | os.PathLike[str], export_onnx: bool = True) -> None:
        self.root = Path(root)
        self.export_onnx = export_onnx  # ONNX graphs for new versions (when the extra is installed)

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
        names = [
            p.name
            for p in mdir.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()
        ]
        return sorted(names, key=_version_key)

    def exists(self, model: str, version: str) -> bool:
        return (self.version_dir(model, version) / CARD_FILE).is_file()

    def require(self, model: str, version: str | None = None) -> Path:
        """Path of a version (the active one when `version` is None); raise if absent."""
        if not self.versions(model):
            raise ModelNotFound(_no_model(model, self.root))
        version = version or self.default_version(model)
        if not self.exists(model, version):
            known = ", ".join(self.versions(model))
            raise VersionNotFound(
                f"model {model!r} has no version {version!r} (known: {known}); "
                f"`streamclf models list {model}` shows them"
            )
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

    # -- active pointer (workers follow the control topic, else this) -----------------
    def pointer(self, model: str) -> ActivePointer:
        return ActivePointer(self.model_dir(model))

    def active_record(self, model: str) -> ActiveRecord:
        return self.pointer(model).read()

    def active(self, model: str) -> str | None:
        return self.active_record(model).version

    def history(self, model: str) -> list[str]:
        return list(self.active_record(model).history)

    def set_active(self, model: str, version: str, sequence: int | None = None) -> None:
        """Point `model` at `version`; `sequence` is the control command that did it."""
        self.require(model, version)
        self.pointer(model).set(version, sequence)

    def next_sequence(self, model: str) -> int:
        """The sequence for the next control command about `model` (above all earlier ones)."""
        return self.pointer(model).next_sequence()

    def default_version(self, model: str) -> str:
        """The active version; never merely the newest.

        A store written before active pointers existed, with one version, serves that one;
        with several and no pointer it refuses rather than guess.
        """
        version = self.active(model)
        if version is not None:
            return version
        versions = self.versions(model)
        if not versions:
            raise ModelNotFound(_no_model(model, self.root))
        if len(versions) == 1:
            return versions[0]
        raise NoActiveVersion(
            f"model {model!r} has versions {', '.join(versions)} and no active one; choose "
            f"with `streamclf models swap {model} VERSION`"
        )

    # -- deleted versions: their names are never used again ----------------------------
    def tombstones(self, model: str) -> dict[str, dict[str, str]]:
        path = self.model_dir(model) / TOMBSTONES_FILE
        if not path.is_file():
            return {}
        return dict(json.loads(path.read_text(encoding="utf-8")))

    def _bury(self, model: str, version: str, sha256: str) -> None:
        graves = self.tombstones(model)
        graves[version] = {"weights_sha256": sha256, "deleted_at": utc_now()}
        _atomic_write(self.model_dir(model) / TOMBSTONES_FILE, json.dumps(graves, indent=2))

    # -- writing -----------------------------------------------------------------------
    def next_version(self, model: str) -> str:
        used = [*self.versions(model), *self.tombstones(model)]
        nums = [_version_key(v)[0] for v in used]
        return f"v{max([0, *nums]) + 1}"

    def add_version(
        self, model: str, write: Callable[[Path], ModelCard], version: str | None = None
    ) -> str:
        """Create a new version: `write(tmpdir)` fills a directory and returns its card.

        The directory is moved into place atomically, so readers never see half a version.
        A model's first version becomes its active version; later ones only by promotion.
        A deleted version's name is refused (`VersionRetired`): a name means one set of weights.
        """
        if version is not None and version in self.tombstones(model):
            raise VersionRetired(f"{model}@{version} was deleted; its name is not used again")
        mdir = self.model_dir(model)
        mdir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=mdir))
        try:
            card = write(tmp)
            if not (tmp / WEIGHTS_FILE).is_file():
                raise UnsafeWeights(f"new version of {model!r} has no {WEIGHTS_FILE}")
            if self.export_onnx:
                self._export_graphs(model, tmp)
            files = hash_files(tmp)  # every file of the version, checked at each load
            for _ in range(100):
                version = version or self.next_version(model)
                validate_name(version, "version")
                card = card.model_copy(
                    update={
                        "name": model,
                        "version": version,
                        "weights_sha256": files[WEIGHTS_FILE],
                        "files": files,
                    }
                )
                (tmp / CARD_FILE).write_text(card.model_dump_json(indent=2), encoding="utf-8")
                try:
                    tmp.rename(mdir / version)
                    self._activate_first(model, version)
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

    def _activate_first(self, model: str, version: str) -> None:
        if self.active(model) is None and self.versions(model) == [version]:
            self.set_active(model, version)

    def _export_graphs(self, model: str, tmp: Path) -> None:
        """ONNX graphs beside the weights; a failed export is logged, the version still stored
        (the worker then runs torch and tries the export again at load)."""
        from modelstore.onnx_export import try_ensure_onnx

        if try_ensure_onnx(tmp) is None:
            log.info("new version of %s stored without ONNX graphs", model)

    def delete(self, model: str, version: str) -> None:
        """Remove a version and leave a tombstone, so that its name is never reused."""
        path = self.require(model, version)
        weights = path / WEIGHTS_FILE
        sha256 = file_sha256(weights) if weights.is_file() else ""
        self._bury(model, version, sha256)
        shutil.rmtree(path)


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
