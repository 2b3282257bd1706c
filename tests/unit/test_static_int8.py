"""ONNX Runtime static int8 (QDQ, per-channel, calibrated on probe texts) as a backend: made on
demand, hashed in the manifest, remade when altered, close to fp32.

The tiny model here is randomly initialised: its class probabilities are nearly equal, so
any rounding can flip a top-1 label; the bounds are loose on purpose (agreement >= 0.5, every
probability within 0.05 of fp32), as for dynamic int8 in test_backends.py. On a trained model
the worker's own rule (docs/worker.md) decides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from modelstore.integrity import verify_version
from modelstore.labels import PRESET_LABELS
from modelstore.onnx_export import STATIC_DIR, STATIC_FILE, STATIC_INT8, read_static_manifest
from modelstore.presets import init_model
from modelstore.store import ModelStore, file_sha256
from worker.inference import InferenceEngine

pytest.importorskip("onnxruntime")

TEXTS = [
    "这家酒店的服务非常好，房间干净",
    "质量太差了，用了两天就坏了",
    "央行宣布降准",
    "国足再次输球",
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = ModelStore(tmp_path_factory.mktemp("store"))
    init_model(store, "news", PRESET_LABELS["chinanews"], "tiny", seed=5)
    return store.require("news", "v1")


def test_static_int8_is_calibrated_qdq_per_channel_and_close_to_fp32(model_dir: Path) -> None:
    engine = InferenceEngine(
        model_dir, engine="onnx", dtype=STATIC_INT8, min_dtype_agreement=0.5, cache_choice=False
    )
    choice = engine.choice
    assert (choice.backend, choice.precision, choice.mode) == ("onnx", STATIC_INT8, "explicit")
    assert choice.agreement is not None and choice.agreement >= 0.5
    assert choice.max_score_diff is not None and 0 < choice.max_score_diff < 0.05

    manifest = read_static_manifest(model_dir)
    assert manifest is not None
    entry = manifest.file(STATIC_INT8)
    assert entry is not None and entry.path == f"{STATIC_DIR}/{STATIC_FILE}"
    assert file_sha256(model_dir / entry.path) == entry.sha256
    assert "quantize_static" in (manifest.quantizer or "")
    graph = onnx.load(str(model_dir / entry.path)).graph
    ops = [n.op_type for n in graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops  # QDQ, activations too
    per_channel = [
        n for n in graph.node
        if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute)
    ]  # fmt: skip
    assert per_channel  # weights quantized per output channel

    reference = InferenceEngine(model_dir, engine="torch").predict(TEXTS)
    got = engine.predict(TEXTS)
    for g, r in zip(got, reference, strict=True):
        assert abs(g.score - r.score) < 0.05
    # Static quantization: the same text scores the same alone and inside a batch.
    alone = engine.predict(TEXTS[:1])[0]
    assert np.isclose(alone.score, got[0].score, atol=1e-5) and alone.label == got[0].label


def test_an_altered_static_graph_is_made_again(model_dir: Path) -> None:
    InferenceEngine(
        model_dir, engine="onnx", dtype=STATIC_INT8, min_dtype_agreement=0.5, cache_choice=False
    )
    path = model_dir / STATIC_DIR / STATIC_FILE
    path.write_bytes(path.read_bytes()[:-8] + b"01234567")
    InferenceEngine(
        model_dir, engine="onnx", dtype=STATIC_INT8, min_dtype_agreement=0.5, cache_choice=False
    )
    manifest = read_static_manifest(model_dir)
    assert manifest is not None
    assert [f.precision for f in manifest.files].count(STATIC_INT8) == 1
    assert file_sha256(path) == manifest.file(STATIC_INT8).sha256


def test_the_static_graph_made_at_first_use_leaves_the_version_intact(model_dir: Path) -> None:
    """Made after the card was written, outside the files it hashes: the next load's check of
    the version still passes."""
    InferenceEngine(
        model_dir, engine="onnx", dtype=STATIC_INT8, min_dtype_agreement=0.5, cache_choice=False
    )
    assert (model_dir / STATIC_DIR / STATIC_FILE).is_file()
    verify_version(model_dir)


def test_auto_measures_static_int8_beside_the_others(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, engine="auto", min_dtype_agreement=0.0, cache_choice=False)
    specs = {(c.backend, c.precision) for c in engine.choice.candidates}
    assert ("onnx", STATIC_INT8) in specs
    static = next(c for c in engine.choice.candidates if c.precision == STATIC_INT8)
    assert static.texts_per_s and static.agreement is not None


def test_a_store_it_cannot_write_to_leaves_the_candidate_unavailable(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import modelstore.onnx_export as ox
    from worker.backends.base import BackendUnavailable

    def refuse(*_a, **_k):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(ox.tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(ox, "verified_path", _missing_static(ox.verified_path))
    with pytest.raises(BackendUnavailable, match="cannot write the static int8 graph"):
        InferenceEngine(model_dir, engine="onnx", dtype=STATIC_INT8, cache_choice=False)


def _missing_static(real):
    """verified_path as if the static graph were not there yet."""

    def check(version_dir, precision, manifest, *digest):
        if precision == STATIC_INT8:
            raise ox_error()
        return real(version_dir, precision, manifest, *digest)

    return check


def ox_error():
    from modelstore.onnx_export import OnnxExportError

    return OnnxExportError("static graph missing")
