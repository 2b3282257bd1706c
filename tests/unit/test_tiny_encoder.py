"""`--preset tiny-encoder` starts from the shipped pretrained encoder under a fresh head (its
quality against the TF-IDF baseline: `python -m benchmarks.encoder_quality`)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from modelstore.presets import encoder_path, encoder_sha256, init_model
from modelstore.store import ModelStore

SHOWCASE_TRUTH = ["positive", "negative"] * 4  # the reviews alternate, positive first
BAR = 0.85  # about what tiny-random reaches with the demo's recipe (issue 19: 0.855)


def test_tiny_encoder_preset_is_the_encoder_with_a_fresh_head(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    version = init_model(store, "m", ["a", "b", "c"], "tiny-encoder", seed=3)
    path = store.require("m", version)
    stored = load_file(path / "model.safetensors")
    encoder = load_file(encoder_path() / "model.safetensors")
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(stored[f"bert.{key}"], encoder[f"bert.{key}"].float()), key
    assert stored["classifier.weight"].shape[0] == 3
    vocab = (encoder_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert AutoTokenizer.from_pretrained(path).get_vocab() == {w: i for i, w in enumerate(vocab)}
    card = store.card("m", version)
    assert (
        card.preset == "tiny-encoder" and card.hyperparameters["encoder_sha256"] == encoder_sha256()
    )
    provenance = json.loads((encoder_path() / "provenance.json").read_text())
    assert provenance["weights_sha256"] == encoder_sha256()
    assert all(name.endswith("/train.tsv") for name in provenance["data"])
    again = init_model(store, "m", ["a", "b", "c"], "tiny-encoder", seed=3)
    assert torch.equal(
        load_file(store.require("m", again) / "model.safetensors")["classifier.weight"],
        stored["classifier.weight"],
    )
