"""The bench's trained stand-in: keyed by data and settings, trained with the trainer, cached,
annotated, and copied into the bench store for the roberta-base rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import standin
from benchmarks.standin import StandinSettings, cache_dir, find_standin, train_standin

ROWS = ["这本书写得真好，推荐", "内容空洞，浪费时间", "非常喜欢作者的文笔", "印刷很差，错字很多"]


def _data(root: Path) -> Path:
    src = root / "book_review"
    src.mkdir(parents=True)
    lines = ["label\ttext_a"] + [f"{i % 2 ^ 1}\t{ROWS[i % 4]}{i}" for i in range(24)]
    for split in ("train", "dev"):
        (src / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (src / "labels.json").write_text(json.dumps({"0": "negative", "1": "positive"}))
    return root


SMALL = StandinSettings(train_rows=16, dev_rows=8, layers=1, max_seq_len=16, epochs=1, batch_size=8)


def test_the_key_follows_data_and_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCLF_STATE_DIR", str(tmp_path / "state"))
    data = _data(tmp_path / "data")
    key = cache_dir(SMALL, data)
    assert cache_dir(SMALL, data) == key
    assert cache_dir(StandinSettings(**{**SMALL.__dict__, "learning_rate": 1e-5}), data) != key
    assert cache_dir(StandinSettings(**{**SMALL.__dict__, "train_rows": 17}), data) != key
    cache_dir.cache_clear()
    train = data / "book_review" / "train.tsv"
    train.write_text(train.read_text(encoding="utf-8").replace("真好", "很好"), encoding="utf-8")
    assert cache_dir(SMALL, data) != key
    assert find_standin(SMALL, data) is None


def test_trained_once_then_found_and_copied_into_the_bench_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMCLF_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(standin, "RESULT_FILE", tmp_path / "standin.json")
    data = _data(tmp_path / "data")
    record = train_standin(SMALL, data)
    assert record["dev_accuracy"] is not None and record["train_seconds"] > 0
    assert "768" in record["what"] and "1 layers" in record["what"]
    found = find_standin(SMALL, data)
    assert found is not None
    card = json.loads((found / "card.json").read_text())
    assert card["standin"]["key"] == cache_dir(SMALL, data).name
    config = json.loads((found / "config.json").read_text())
    assert (config["hidden_size"], config["num_attention_heads"], config["vocab_size"]) == (
        768, 12, 21128,
    )  # fmt: skip
    assert config["num_hidden_layers"] == 1
    probes = [json.loads(x) for x in (found / "probe_texts.jsonl").read_text().splitlines()]
    assert probes and all(p["label"] in ("negative", "positive") for p in probes)

    from benchmarks import common

    monkeypatch.setattr(standin, "find_standin", lambda *a, **k: found)
    bench = tmp_path / "bench"
    first = common.ensure_model("roberta-base", bench)
    again = common.ensure_model("roberta-base", bench)
    assert first == again and first.parent.name == common.STANDIN_MODEL
    assert common.model_name("roberta-base") == common.STANDIN_MODEL
    assert (first / "model.safetensors").read_bytes() == (found / "model.safetensors").read_bytes()
    monkeypatch.setenv("STREAMCLF_BENCH_RANDOM", "1")
    assert common.model_name("roberta-base") == "bench-roberta-base"
