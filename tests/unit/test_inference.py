"""The inference engine: parity with transformers' pipeline, batch-independence, truncation,
token-budget chunking and the bundled vocab."""

import logging
from pathlib import Path

import pytest

from modelstore.labels import PRESET_LABELS
from modelstore.presets import build_tokenizer, init_model
from modelstore.store import ModelStore
from worker.inference import InferenceEngine

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


def test_bundled_vocab_is_the_google_chinese_vocab() -> None:
    tok = build_tokenizer()
    assert len(tok) == 21128
    ids = tok("北京两会")["input_ids"]
    assert tok.unk_token_id not in ids and len(ids) == 6


def test_matches_transformers_pipeline(model_dir: Path) -> None:
    from transformers import pipeline

    engine = InferenceEngine(model_dir)
    preds = engine.predict(TEXTS, PAIRS)
    pipe = pipeline("text-classification", model=str(model_dir), tokenizer=str(model_dir))
    for text, pair, pred in zip(TEXTS, PAIRS, preds, strict=True):
        ref = pipe({"text": text, "text_pair": pair} if pair else text)
        ref = ref[0] if isinstance(ref, list) else ref
        assert pred.label == ref["label"]
        assert abs(pred.score - ref["score"]) < 1e-4


def test_same_output_alone_and_inside_a_batch(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir, max_batch_tokens=64)  # forces several sub-batches
    together = engine.predict(TEXTS, PAIRS)
    assert engine.last_stats.sub_batches > 1
    for i, pred in enumerate(together):
        alone = engine.predict([TEXTS[i]], [PAIRS[i]])[0]
        assert alone.label == pred.label
        assert abs(alone.score - pred.score) < 1e-5


def test_length_sorting_reduces_padding(model_dir: Path) -> None:
    mixed = ["短" * n for n in (5, 300, 8, 250, 12, 400, 6, 350)]
    sorted_engine = InferenceEngine(model_dir, max_batch_tokens=1200)
    fifo = InferenceEngine(model_dir, max_batch_tokens=1200, sort_by_length=False)
    a, b = sorted_engine.predict(mixed), fifo.predict(mixed)
    assert [p.label for p in a] == [p.label for p in b]
    assert sorted_engine.last_stats.padded_tokens < fifo.last_stats.padded_tokens


def test_overlong_text_is_truncated_and_flagged(model_dir: Path) -> None:
    engine = InferenceEngine(model_dir)
    long_pred, short_pred = engine.predict(["北京两会" * 300, "北京"], [None, None])
    assert long_pred.truncated and not short_pred.truncated
    assert len(long_pred.scores) == 5 and long_pred.scores[0][0] == long_pred.label


def test_deliberate_truncation_logs_no_length_warning(model_dir: Path) -> None:
    """The worker truncates on purpose: transformers' "Token indices sequence length is longer
    than the specified maximum" warning must not reach its log."""
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    hf_logger = logging.getLogger("transformers")  # its own handler; it does not propagate
    hf_logger.addHandler(handler)
    try:
        engine = InferenceEngine(model_dir)  # a fresh tokenizer: it warns once per instance
        (pred,) = engine.predict(["北京两会" * 300], [None])
    finally:
        hf_logger.removeHandler(handler)
    assert pred.truncated
    assert not [m for m in seen if "sequence length is longer" in m], seen
