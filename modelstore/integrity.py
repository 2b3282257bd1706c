"""A version is what its card says: the sha256 of every file, checked at every load.

`hash_files` records the files of a new version in its card (`ModelCard.files`);
`verify_version` hashes them again (once, streamed) each time the version is loaded and
raises `IntegrityError`, naming the file, on any difference: a changed, missing or added
file. Cards written before per-file hashes (`files` empty) have their weights checked
against `weights_sha256`; their other files are reported as unverified. Every card's labels
must equal `config.json`'s `id2label`. The hashes of one load are kept (`VerifiedVersion`),
so the ONNX graphs are not hashed a second time when a backend opens them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from pydantic import ValidationError

from modelstore.exceptions import IntegrityError, UnsafeWeights
from modelstore.files import CARD_FILE, ONNX_DIR, WEIGHTS_FILE, file_sha256
from schemas.card import ModelCard

log = logging.getLogger(__name__)
CONFIG_FILE = "config.json"
# Written into a version directory by workers after the version was stored (caches of the
# engine choice, worker/engine_select.py): not part of the version, never loaded as model.
RUNTIME_FILES = frozenset({"engine-choice.json", "probe-reference.json"})
# Made by a worker at first use, checked against their own manifest (onnx_export.STATIC_DIR).
RUNTIME_DIRS = ("onnx-static",)
MAX_CARD_BYTES = 4 << 20
MAX_CONFIG_BYTES = 4 << 20


def version_files(path: Path) -> list[str]:
    """The files that make the version in `path`, relative POSIX paths, sorted: every regular
    file except card.json, the runtime caches and hidden names (temporary files)."""
    found = []
    for item in path.rglob("*"):
        rel = item.relative_to(path)
        if any(part.startswith(".") for part in rel.parts) or not item.is_file():
            continue
        name = rel.as_posix()
        if name != CARD_FILE and name not in RUNTIME_FILES and rel.parts[0] not in RUNTIME_DIRS:
            found.append(name)
    return sorted(found)


def hash_files(path: Path) -> dict[str, str]:
    """sha256 of each of the version's files (what a new card records)."""
    return {name: file_sha256(path / name) for name in version_files(path)}


def files_digest(hashes: dict[str, str]) -> str:
    """One sha256 over every file's path and sha256 (the version's content identity)."""
    payload = json.dumps(sorted(hashes.items()), separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class VerifiedVersion:
    """A version directory whose files were hashed (and checked) by one load."""

    path: Path
    card: ModelCard | None
    hashes: dict[str, str]  # relative path -> sha256, as read during this load
    unverified: tuple[str, ...] = ()  # files the card has no hash for (older cards)
    _extra: dict[tuple[str, int, int, int], str] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def weights_sha256(self) -> str:
        return self.hashes[WEIGHTS_FILE]

    @property
    def card_lists_graphs(self) -> bool:
        """The card records the ONNX graphs: they are part of the version, never re-exported."""
        return self.card is not None and any(n.startswith(f"{ONNX_DIR}/") for n in self.card.files)

    @property
    def digest(self) -> str:
        """sha256 over all file hashes: changes with any file (part of the cache identity)."""
        return files_digest(self.hashes)

    def sha256(self, file: Path) -> str:
        """A file's sha256: the one read by this load when known, else hashed now (once)."""
        try:
            rel = Path(file).resolve().relative_to(self.path.resolve()).as_posix()
        except ValueError:
            rel = None
        if rel is not None and rel in self.hashes:
            return self.hashes[rel]
        st = Path(file).stat()  # a file rewritten during the load (ONNX re-export) is new
        key = (str(file), st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._extra:
            self._extra[key] = file_sha256(Path(file))
        return self._extra[key]


def read_card(path: Path) -> ModelCard | None:
    """The card of a version directory (None when it has none, e.g. one being written)."""
    card_path = path / CARD_FILE
    if not card_path.is_file():
        return None
    where = str(path)
    if card_path.stat().st_size > MAX_CARD_BYTES:
        raise IntegrityError(where, CARD_FILE, f"is over {MAX_CARD_BYTES} bytes")
    try:
        return ModelCard.model_validate_json(card_path.read_bytes())
    except ValidationError as exc:
        why = f"is not a model card ({exc.error_count()} errors)"
    raise IntegrityError(where, CARD_FILE, why)


def verify_version(path: Path, expected_weights_sha256: str | None = None) -> VerifiedVersion:
    """Hash and check every file of the version in `path` against its card.

    `expected_weights_sha256` (a swap command's) must match too. A directory without a card
    (a version being written) gets its weights hashed and checked against that value only.
    Raises `IntegrityError` (one line naming the file) or `UnsafeWeights` (no safetensors).
    """
    path = Path(path)
    card = read_card(path)
    name = f"{card.name}@{card.version}" if card else str(path)
    if not (path / WEIGHTS_FILE).is_file():
        raise UnsafeWeights(f"{name}: no {WEIGHTS_FILE}; only safetensors weights are loaded")
    if card is not None and card.files:
        unverified: tuple[str, ...] = ()
        hashes = _check_listed(path, name, card.files)
        if card.weights_sha256 and card.weights_sha256 != hashes[WEIGHTS_FILE]:
            raise IntegrityError(name, CARD_FILE, "has two different weights sha256")
    else:
        hashes = hash_files(path)
        recorded = card.weights_sha256 if card else None
        if recorded:
            _compare(name, WEIGHTS_FILE, hashes[WEIGHTS_FILE], recorded, "the card's")
        unverified = tuple(n for n in hashes if not (recorded and n == WEIGHTS_FILE))
    if expected_weights_sha256:
        actual = hashes[WEIGHTS_FILE]
        _compare(name, WEIGHTS_FILE, actual, expected_weights_sha256, "the swap command's")
    if card is not None:
        _check_labels(path, name, card)
        if unverified:
            log.warning(
                "%s: card without per-file hashes; unverified: %s", name, ", ".join(unverified)
            )
    return VerifiedVersion(path, card, hashes, unverified)


def _check_listed(path: Path, name: str, listed: dict[str, str]) -> dict[str, str]:
    if WEIGHTS_FILE not in listed:
        raise IntegrityError(name, CARD_FILE, f"lists no {WEIGHTS_FILE}")
    hashes = {}
    for rel, expected in sorted(listed.items()):
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or ".." in parts or not parts:
            raise IntegrityError(name, CARD_FILE, f"lists a path outside the version: {rel!r}")
        file = path / rel
        if not file.is_file():
            raise IntegrityError(name, rel, "is missing (the card lists it)")
        hashes[rel] = file_sha256(file)
        _compare(name, rel, hashes[rel], expected, "the card's")
    for rel in version_files(path):
        if rel not in listed and not _later_graph(rel, listed):
            raise IntegrityError(name, rel, "is not in the card (added after it was written)")
    return hashes


def _later_graph(rel: str, listed: dict[str, str]) -> bool:
    """ONNX graphs exported after the card was written (a version stored without the `onnx`
    extra): checked against their manifest, which names the weights' sha256, when opened."""
    in_onnx = rel.startswith(f"{ONNX_DIR}/")
    return in_onnx and not any(n.startswith(f"{ONNX_DIR}/") for n in listed)


def _compare(name: str, rel: str, actual: str, expected: str, whose: str) -> None:
    if actual != expected:
        raise IntegrityError(
            name, rel, f"sha256 {actual[:12]}… does not match {whose} {expected[:12]}… (changed "
            "after the version was written)",
        )  # fmt: skip


def _check_labels(path: Path, name: str, card: ModelCard) -> None:
    """config.json's id2label, in id order, must be the card's labels."""
    config = path / CONFIG_FILE
    if not config.is_file():
        raise IntegrityError(name, CONFIG_FILE, "is missing")
    if config.stat().st_size > MAX_CONFIG_BYTES:
        raise IntegrityError(name, CONFIG_FILE, f"is over {MAX_CONFIG_BYTES} bytes")
    try:
        id2label = json.loads(config.read_bytes()).get("id2label") or {}
        labels = [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (ValueError, TypeError, AttributeError, RecursionError):
        raise IntegrityError(name, CONFIG_FILE, "has no readable id2label") from None
    if labels != list(card.labels):
        raise IntegrityError(
            name, CONFIG_FILE, f"labels ({', '.join(labels)}) differ from the card's "
            f"({', '.join(card.labels)})",
        )  # fmt: skip


@dataclass(frozen=True)
class VersionCheck:
    """What `streamclf models verify` reports for one version."""

    model: str
    version: str
    state: str  # ok | legacy (card without per-file hashes) | refused
    files: int = 0
    unverified: tuple[str, ...] = ()
    error: str | None = None


def check_version(path: Path, model: str, version: str) -> VersionCheck:
    """`verify_version` as a report instead of an exception."""
    from modelstore.exceptions import ModelStoreError

    try:
        verified = verify_version(path)
    except ModelStoreError as exc:
        return VersionCheck(model, version, "refused", error=str(exc))
    state = "legacy" if verified.unverified else "ok"
    return VersionCheck(model, version, state, len(verified.hashes), verified.unverified)
