"""`--preset tiny` starts from the shipped pretrained encoder; fine-tuned with the demo's recipe on
half of the demo's ChnSentiCorp sample it should reach the random model's accuracy on the other
half and label every hand-written showcase review right (not yet: see the xfail)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from admin.demo import model as demo
from admin.demo.stream import SHOWCASE
from modelstore.loading import load_classifier
from modelstore.presets import encoder_path, encoder_sha256, init_model
from modelstore.store import ModelStore
from trainer.config import TrainConfig
from trainer.train import train

SHOWCASE_TRUTH = ["positive", "negative"] * 4  # the reviews alternate, positive first
BAR = 0.85  # about what tiny-random reaches with the demo's recipe (issue 19: 0.855)


def test_tiny_preset_is_the_encoder_with_a_fresh_head(tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "store")
    version = init_model(store, "m", ["a", "b", "c"], "tiny", seed=3)
    path = store.require("m", version)
    stored = load_file(path / "model.safetensors")
    encoder = load_file(encoder_path() / "model.safetensors")
    for key in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight"):
        assert torch.equal(stored[f"bert.{key}"], encoder[f"bert.{key}"].float()), key
    assert stored["classifier.weight"].shape[0] == 3
    vocab = (encoder_path() / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert AutoTokenizer.from_pretrained(path).get_vocab() == {w: i for i, w in enumerate(vocab)}
    card = store.card("m", version)
    assert card.preset == "tiny" and card.hyperparameters["encoder_sha256"] == encoder_sha256()
    provenance = json.loads((encoder_path() / "provenance.json").read_text())
    assert provenance["weights_sha256"] == encoder_sha256()
    assert all(name.endswith("/train.tsv") for name in provenance["data"])
    again = init_model(store, "m", ["a", "b", "c"], "tiny", seed=3)
    assert torch.equal(
        load_file(store.require("m", again) / "model.safetensors")["classifier.weight"],
        stored["classifier.weight"],
    )


def _fine_tune(tmp_path: Path, preset: str, recipe: dict[str, object]) -> tuple[float, Path]:
    """Train on the first 800 rows of the demo's training sample (dev: the demo's dev sample);
    return the accuracy on the other 800 rows, never trained on, and the version's path."""
    lines = demo.TRAIN.read_text(encoding="utf-8").split("\n")
    header, rows = lines[0], [line for line in lines[1:] if line]
    train_file, held_out = tmp_path / f"{preset}-train.tsv", tmp_path / f"{preset}-held.tsv"
    train_file.write_text("\n".join([header, *rows[: demo.FIRST_ROWS]]) + "\n", encoding="utf-8")
    held_out.write_text("\n".join([header, *rows[demo.FIRST_ROWS :]]) + "\n", encoding="utf-8")
    store = ModelStore(tmp_path / preset)
    init_model(store, "reviews", demo.LABELS, preset, seed=7)
    config = TrainConfig(model="reviews", train=str(train_file), dev=str(demo.DEV),
                         test=str(held_out), device="cpu", **recipe)  # fmt: skip
    outcome = train(config, store)
    return float(outcome.card.test_metrics["accuracy"]), store.require("reviews", outcome.version)


@pytest.mark.xfail(
    strict=True,
    reason="the shipped encoder (3600 MLM steps, loss 5.69) reaches 0.80 on these held-out rows "
    "and reads 3 of 8 showcase reviews wrong; tiny-random reaches about 0.85. Strict: a better "
    "encoder makes this pass, and then the xfail must go.",
)
def test_tiny_fine_tuned_reaches_the_bar_and_reads_the_showcase(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    accuracy, path = _fine_tune(tmp_path, "tiny", demo.FIRST)
    model, tokenizer = load_classifier(path)
    with torch.no_grad():
        logits = model(**tokenizer(SHOWCASE, padding=True, return_tensors="pt")).logits
    labels = [model.config.id2label[int(i)] for i in logits.argmax(-1)]
    wrong = [
        t for t, got, want in zip(SHOWCASE, labels, SHOWCASE_TRUTH, strict=True) if got != want
    ]
    assert accuracy >= BAR, f"tiny (encoder) {accuracy:.3f} on 800 held-out reviews"
    assert not wrong, f"showcase reviews labelled wrong: {wrong}"
