"""The store's active pointer, command sequences and which version a worker starts with."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelstore.exceptions import NoActiveVersion, VersionRetired
from modelstore.store import WEIGHTS_FILE, ModelStore
from schemas.card import ModelCard
from schemas.control import SwapModel
from worker.control import starting_version


def add(store: ModelStore, model: str = "m", version: str | None = None) -> str:
    def write(tmp: Path) -> ModelCard:
        (tmp / WEIGHTS_FILE).write_bytes(tmp.name.encode())  # distinct bytes per version
        return ModelCard(name=model, version="pending", created_at="", source="test", labels=["a", "b"])  # fmt: skip

    return store.add_version(model, write, version)


def test_first_version_is_active_later_ones_are_not(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, export_onnx=False)  # fake weights: nothing to export
    assert add(store) == "v1" and store.active("m") == "v1"
    assert add(store) == "v2" and add(store) == "v3"
    assert store.active("m") == "v1" and store.default_version("m") == "v1"


def test_a_legacy_store_with_several_versions_and_no_pointer_is_refused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, export_onnx=False)  # fake weights: nothing to export
    add(store), add(store)
    (tmp_path / "m" / "active.json").unlink()
    with pytest.raises(NoActiveVersion, match="models swap m VERSION"):
        store.default_version("m")


def test_sequences_only_grow_and_the_pointer_records_its_own(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, export_onnx=False)  # fake weights: nothing to export
    add(store), add(store)
    seqs = [store.next_sequence("m") for _ in range(5)]
    assert seqs == sorted(set(seqs))
    store.set_active("m", "v2", seqs[-1])
    record = store.active_record("m")
    assert (record.version, record.sequence, record.history) == ("v2", seqs[-1], ["v1"])
    assert store.next_sequence("m") > seqs[-1]


def test_deleted_names_are_never_reused(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, export_onnx=False)  # fake weights: nothing to export
    add(store), add(store)
    store.delete("m", "v2")
    assert add(store) == "v3"
    with pytest.raises(VersionRetired):
        add(store, version="v2")


def swap(version: str, sequence: int | None, at_ms: int = 1) -> SwapModel:
    return SwapModel(model="m", version=version, sha256="0" * 64, requested_at_ms=at_ms,
                     sequence=sequence)  # fmt: skip


def test_starting_version_weighs_the_control_topic_against_the_pointer(tmp_path: Path) -> None:
    store = ModelStore(tmp_path, export_onnx=False)  # fake weights: nothing to export
    add(store), add(store), add(store)
    store.set_active("m", "v2", 100)
    assert starting_version(None, store, "m").version == "v2"
    assert starting_version(swap("v3", 200), store, "m").version == "v3"
    older = starting_version(swap("v1", 50), store, "m")  # e.g. a replay left after compaction
    assert (older.version, older.sequence, older.source) == ("v2", 100, "store")


def test_signatures_cover_the_sequence_and_old_signatures_still_verify() -> None:
    legacy = swap("v1", None, at_ms=1234).signed("k")
    assert legacy.verify("k") and legacy.order == 1234
    assert '"sequence"' not in legacy.signing_payload().decode()
    current = swap("v1", 7).signed("k")
    assert current.verify("k") and current.order == 7
    assert not current.model_copy(update={"sequence": 8}).verify("k")
