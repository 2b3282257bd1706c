"""Every backend against the reference: fp32 ONNX to 1e-4 of transformers' pipeline, reduced
precisions by top-1 agreement with fp32 torch on the probe texts; ONNX graphs in the store."""

import json
import sys
from pathlib import Path

import pytest

from modelstore.labels import PRESET_LABELS
from modelstore.onnx_export import MANIFEST, ONNX_DIR, read_manifest
from modelstore.presets import init_model
from modelstore.probes import MIN_PROBES, PROBE_FILE, probe_set, shipped_path
from modelstore.store import WEIGHTS_FILE, ModelStore, file_sha256
from worker.backends.base import BackendUnavailable
from worker.inference import InferenceEngine

pytest.importorskip("onnxruntime")

TEXTS = [
    "北京上个月召开了两会",
    "这家酒店的服务非常好，房间干净",
    "国足再次输球",
    "央行宣布降准",
    "质量太差了，用了两天就坏了，不推荐购买",
]
PAIRS = [None, "下次还会再来", None, "股市大涨", None]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = ModelStore(tmp_path_factory.mktemp("store"))
    init_model(store, "news", PRESET_LABELS["chinanews"], "tiny-random", seed=3)
    return store.require("news", "v1")


def test_a_new_version_carries_onnx_graphs_with_their_sha256(model_dir: Path) -> None:
    manifest = read_manifest(model_dir)
    assert manifest is not None
    assert manifest.weights_sha256 == file_sha256(model_dir / WEIGHTS_FILE)
    assert {f.precision for f in manifest.files} == {"fp32", "int8"}
    for entry in manifest.files:
        assert file_sha256(model_dir / entry.path) == entry.sha256
        assert (model_dir / entry.path).read_bytes()[:2] != b"\x80\x04"  # protobuf, not pickle


def test_onnx_fp32_matches_transformers_pipeline(model_dir: Path) -> None:
    from transformers import pipeline

    engine = InferenceEngine(model_dir, engine="onnx", dtype="fp32")
    assert (engine.choice.backend, engine.choice.precision) == ("onnx", "fp32")
    preds = engine.predict(TEXTS, PAIRS)
    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir))
    for text, pair, pred in zip(TEXTS, PAIRS, preds, strict=True):
        ref = pipe({"text": text, "text_pair": pair} if pair else text)
        ref = ref[0] if isinstance(ref, list) else ref
        assert pred.label == ref["label"]
        assert abs(pred.score - ref["score"]) < 1e-4


@pytest.mark.parametrize(
    ("engine", "dtype"), [("torch", "bf16"), ("torch", "int8"), ("onnx", "int8")]
)
def test_reduced_precision_is_checked_by_agreement(
    model_dir: Path, engine: str, dtype: str
) -> None:
    eng = InferenceEngine(
        model_dir, engine=engine, dtype=dtype, min_dtype_agreement=0.5, cache_choice=False
    )
    choice = eng.choice
    assert (choice.backend, choice.precision, choice.mode) == (engine, dtype, "explicit")
    assert choice.probe_texts >= MIN_PROBES and choice.probe_source == "shipped"
    assert choice.agreement is not None and choice.agreement >= 0.5
    assert choice.max_score_diff is not None and 0 < choice.max_score_diff < 0.05
    reference = InferenceEngine(model_dir).predict(TEXTS, PAIRS)
    for got, ref in zip(eng.predict(TEXTS, PAIRS), reference, strict=True):
        assert abs(got.score - ref.score) < 0.05


def test_same_output_alone_and_inside_a_batch_on_onnx(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, engine="onnx", max_batch_tokens=64)
    together = engine.predict(TEXTS, PAIRS)
    assert engine.last_stats.sub_batches > 1
    for i, pred in enumerate(together):
        alone = engine.predict([TEXTS[i]], [PAIRS[i]])[0]
        assert alone.label == pred.label and abs(alone.score - pred.score) < 1e-5


def test_auto_takes_the_fastest_agreeing_backend_and_caches_the_choice(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, engine="auto")
    choice = engine.choice
    measured = {(c.backend, c.precision): c for c in choice.candidates}
    from worker.engine_select import cpu_has_bf16

    assert set(measured) == {
        ("torch", "fp32"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8"),
        ("onnx", "int8-static"), *([("torch", "bf16")] if cpu_has_bf16() else []),
    }  # fmt: skip
    accepted = [c for c in choice.candidates if c.accepted]
    fastest = max(accepted, key=lambda c: c.texts_per_s or 0)
    assert (choice.backend, choice.precision) == (fastest.backend, fastest.precision)
    assert choice.mode == "auto" and not choice.cached and choice.key
    stored = json.loads((model_dir / "engine-choice.json").read_text())
    assert stored[choice.key]["backend"] == choice.backend
    reference = json.loads((model_dir / "probe-reference.json").read_text())
    assert [len(probs) for probs in reference.values()] == [MIN_PROBES]  # fp32, kept once

    again = InferenceEngine(model_dir, engine="auto")
    assert again.choice.cached and again.choice.backend == choice.backend
    assert again.choice.precision == choice.precision
    assert [p.label for p in again.predict(TEXTS, PAIRS)] == [
        p.label for p in engine.predict(TEXTS, PAIRS)
    ]


def test_a_backend_that_disagrees_is_refused(tmp_path: Path) -> None:
    """Graphs of another model under this version's manifest (an exporter gone wrong): the
    sha256 checks pass, the agreement check does not."""
    from modelstore.onnx_export import export_onnx
    from modelstore.presets import build_model
    from worker.engine_select import PrecisionRefused

    store = ModelStore(tmp_path, export_onnx=False)
    init_model(store, "m", PRESET_LABELS["chinanews"], "tiny-random", seed=1)
    vdir = store.require("m", "v1")
    export_onnx(vdir, build_model("tiny-random", PRESET_LABELS["chinanews"], seed=2))

    engine = InferenceEngine(vdir, engine="auto", dtype="fp32", cache_choice=False)
    refused = {(c.backend, c.precision): c for c in engine.choice.candidates if not c.accepted}
    assert ("onnx", "fp32") in refused and "agreement" in (refused[("onnx", "fp32")].reason or "")
    assert engine.choice.backend == "torch"
    with pytest.raises(PrecisionRefused, match="agreement"):
        InferenceEngine(vdir, engine="onnx", cache_choice=False)


def test_missing_or_tampered_graphs_are_exported_again(tmp_path: Path) -> None:
    """Graphs exported after the card was written (a version stored without them)."""
    import shutil

    store = ModelStore(tmp_path, export_onnx=False)
    init_model(store, "m", PRESET_LABELS["chinanews"], "tiny-random", seed=1)
    vdir = store.require("m", "v1")
    InferenceEngine(vdir, engine="onnx", dtype="int8", min_dtype_agreement=0.5)
    graph = vdir / ONNX_DIR / "model.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:-10] + b"0123456789")  # same size, other bytes
    InferenceEngine(vdir, engine="onnx", dtype="int8", min_dtype_agreement=0.5)
    manifest = read_manifest(vdir)
    assert manifest is not None and file_sha256(graph) == manifest.file("int8").sha256

    shutil.rmtree(vdir / ONNX_DIR)
    engine = InferenceEngine(vdir, engine="onnx")
    assert (vdir / ONNX_DIR / MANIFEST).is_file() and engine.choice.backend == "onnx"


def test_graphs_the_card_records_are_part_of_the_version(tmp_path: Path) -> None:
    """Tampered or removed graphs of a version written with them refuse it (issue 17)."""
    import shutil

    from modelstore.exceptions import IntegrityError

    store = ModelStore(tmp_path)
    init_model(store, "m", PRESET_LABELS["chinanews"], "tiny", seed=1)
    vdir = store.require("m", "v1")
    graph = vdir / ONNX_DIR / "model.int8.onnx"
    original = graph.read_bytes()
    graph.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(IntegrityError, match=r"onnx/model\.int8\.onnx sha256"):
        InferenceEngine(vdir, engine="onnx", dtype="int8", min_dtype_agreement=0.5)
    graph.write_bytes(original)
    InferenceEngine(vdir, engine="onnx", dtype="int8", min_dtype_agreement=0.5)
    shutil.rmtree(vdir / ONNX_DIR)
    with pytest.raises(IntegrityError, match="is missing"):
        InferenceEngine(vdir, engine="onnx")


def test_promotion_exports_missing_graphs_before_the_swap_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version stored without graphs (an older store) gets them when promoted, before any
    worker is told to load it."""
    import asyncio

    import trainer.promote
    from bus.settings import KafkaSettings

    store = ModelStore(tmp_path, export_onnx=False)
    init_model(store, "m", PRESET_LABELS["chinanews"], "tiny-random", seed=1)
    vdir = store.require("m", "v1")
    assert read_manifest(vdir) is None
    published = []

    async def publish(settings, message, key=None, topic=None) -> None:
        published.append((message.version, read_manifest(vdir) is not None))

    monkeypatch.setattr(trainer.promote, "publish_control", publish)
    asyncio.run(trainer.promote.request_swap(KafkaSettings(), store, "m", "v1", "test"))
    assert published == [("v1", True)]


def test_without_onnxruntime_auto_uses_torch_only(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if the extra were not installed
    engine = InferenceEngine(
        model_dir, engine="auto", dtype="int8", min_dtype_agreement=0.0, cache_choice=False
    )
    assert {c.backend for c in engine.choice.candidates} == {"torch"}
    assert engine.choice.backend == "torch"
    with pytest.raises(BackendUnavailable, match="onnx"):
        InferenceEngine(model_dir, engine="onnx", cache_choice=False)


def test_probe_texts_come_from_the_version_first(tmp_path: Path) -> None:
    shipped = probe_set(None)
    assert len(shipped.texts) == MIN_PROBES and shipped.source == "shipped"
    assert all(t.strip() for t in shipped.texts) and any(shipped.pairs)
    assert shipped_path().stat().st_size < 64_000
    (tmp_path / PROBE_FILE).write_text(
        "\n".join(json.dumps({"text": f"第{i}条开发集文本"}) for i in range(300))
    )
    own = probe_set(tmp_path)
    assert own.source == "version" and own.texts[0] == "第0条开发集文本"


def test_status_carries_the_engine_choice_and_old_heartbeats_still_read() -> None:
    from rich.console import Console

    from admin.render import status_table, worker_row
    from schemas.engine import EngineChoice
    from schemas.status import WorkerStatus

    old = WorkerStatus.model_validate({"worker_id": "w0", "host": "h", "pid": 1, "at_ms": 0})
    assert old.engines == {}  # a heartbeat from before the field existed
    choice = EngineChoice(backend="onnx", precision="int8", device="cpu", mode="auto",
                          agreement=1.0, max_score_diff=0.01, texts_per_s=150.0)  # fmt: skip
    status = WorkerStatus(worker_id="w1", host="h", pid=1, at_ms=0, versions={"news": "v3"},
                          engines={"news": choice})  # fmt: skip
    again = WorkerStatus.model_validate_json(status.model_dump_json())
    assert again.engines["news"].backend == "onnx"
    row = worker_row(again, stale=False, now_ms=0)
    assert row["engines"] == {"news": "onnx int8"}
    console = Console(width=200, record=True)
    console.print(status_table([row]))
    assert "news@v3 onnx int8" in console.export_text()
