"""Randomly initialised BERT classifiers of a known shape, with the bundled Chinese vocab."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from modelstore.reference import drift_reference
from modelstore.store import ModelStore, utc_now
from schemas.card import ModelCard

PRESETS: dict[str, dict[str, Any]] = {
    # Same compute as uer/roberta-base-finetuned-*-chinese.
    "roberta-base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
    "tiny": dict(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512
    ),
}
VOCAB_SIZE = 21128
MAX_POSITIONS = 512


def vocab_path() -> Path:
    """The bundled Google Chinese vocab (21128 lines, Apache-2.0)."""
    return Path(str(resources.files("modelstore") / "assets" / "google_zh_vocab.txt"))


def load_vocab() -> dict[str, int]:
    """Token -> id, splitting on `\\n` only (two entries contain U+2028)."""
    words = vocab_path().read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    return {word: i for i, word in enumerate(words)}


def build_tokenizer() -> Any:
    import transformers
    from transformers import BertTokenizerFast

    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 ignores `vocab_file` here (a 5-token vocab: every character -> [UNK]).
        return BertTokenizerFast(vocab=load_vocab(), do_lower_case=True, model_max_length=512)
    return BertTokenizerFast(vocab_file=str(vocab_path()), do_lower_case=True, model_max_length=512)


def build_config(preset: str, labels: list[str]) -> Any:
    from transformers import BertConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    return BertConfig(
        vocab_size=VOCAB_SIZE,
        max_position_embeddings=MAX_POSITIONS,
        type_vocab_size=2,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        architectures=["BertForSequenceClassification"],
        **PRESETS[preset],
    )


def build_model(preset: str, labels: list[str], seed: int = 0) -> Any:
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    model = BertForSequenceClassification(build_config(preset, labels))
    model.eval()
    return model


def init_model(
    store: ModelStore, name: str, labels: list[str], preset: str = "tiny", seed: int = 0
) -> str:
    """Write a new randomly initialised version of `name`; return the version."""

    def write(tmp: Path) -> ModelCard:
        model, tokenizer = build_model(preset, labels, seed), build_tokenizer()
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        return ModelCard(
            name=name,
            version="pending",
            created_at=utc_now(),
            source="init",
            labels=labels,
            preset=preset,
            hyperparameters={"seed": seed},
            drift_reference=drift_reference(tmp, model, tokenizer),
        )

    return store.add_version(name, write)
