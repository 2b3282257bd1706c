"""Classifier presets: random BERTs of a known shape, or the project's pretrained tiny encoder.

`tiny` and `tiny-random` are the same randomly initialised small BERT with the bundled Google
Chinese vocab; `roberta-base` has the UER models' shape, random. `tiny-encoder` starts from
`assets/zh-tiny-encoder` (pretrained by `python -m modelstore.pretrain`, see its PROVENANCE.md)
with a fresh classification head. It is experimental: the first encoder fine-tunes worse than
`tiny-random` (benchmarks/results/encoder_quality.json), so `tiny` stays random until one beats
the TF-IDF baseline; tests that need a random model name `tiny-random`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from modelstore.files import file_sha256, utc_now
from modelstore.hf import bert_tokenizer_fast, disable_progress_bar, set_verbosity_error
from modelstore.reference import drift_reference
from modelstore.store import ModelStore
from schemas.card import ModelCard

PRESETS: dict[str, dict[str, Any]] = {
    # Same compute as uer/roberta-base-finetuned-*-chinese.
    "roberta-base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
    "tiny": dict(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512
    ),
    "tiny-random": dict(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=512
    ),
}
ENCODER = "zh-tiny-encoder"
PRETRAINED: dict[str, str] = {"tiny-encoder": ENCODER}  # preset -> encoder directory under assets/
NAMES = (*PRETRAINED, *PRESETS)
VOCAB_SIZE = 21128
MAX_POSITIONS = 512


def vocab_path() -> Path:
    """The bundled Google Chinese vocab (21128 lines, Apache-2.0)."""
    return Path(str(resources.files("modelstore") / "assets" / "google_zh_vocab.txt"))


def encoder_path(name: str = ENCODER) -> Path:
    """A shipped pretrained encoder (HF BertForMaskedLM directory with its vocab)."""
    return Path(str(resources.files("modelstore") / "assets" / name))


def encoder_sha256(name: str = ENCODER) -> str:
    """The sha256 of the encoder's weights (what a cache of models trained from it keys on)."""
    return file_sha256(encoder_path(name) / "model.safetensors")


def load_vocab() -> dict[str, int]:
    """Token -> id, splitting on `\\n` only (two entries contain U+2028)."""
    words = vocab_path().read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    return {word: i for i, word in enumerate(words)}


def build_tokenizer(preset: str | None = None) -> Any:
    """The tokenizer of `preset`: the encoder's own vocab for `tiny-encoder`, else the Google
    vocab."""
    import transformers

    if preset in PRETRAINED:
        return bert_tokenizer_fast().from_pretrained(encoder_path(PRETRAINED[preset]))
    tokenizer_class = bert_tokenizer_fast()
    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 ignores `vocab_file` here (a 5-token vocab: every character -> [UNK]).
        return tokenizer_class(vocab=load_vocab(), do_lower_case=True, model_max_length=512)
    return tokenizer_class(vocab_file=str(vocab_path()), do_lower_case=True, model_max_length=512)


def build_config(preset: str, labels: list[str]) -> Any:
    from transformers import BertConfig

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: choose one of {', '.join(NAMES)}")
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
    if preset in PRETRAINED:
        model = _from_encoder(PRETRAINED[preset], labels)
    else:
        model = BertForSequenceClassification(build_config(preset, labels))
    model.eval()
    return model


def _from_encoder(name: str, labels: list[str]) -> Any:
    """The encoder's weights under a new (seeded) pooler and classification head, in fp32."""
    import torch
    from transformers import BertForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    set_verbosity_error()  # "some weights were not initialised": the new head
    disable_progress_bar()
    try:
        model = BertForSequenceClassification.from_pretrained(
            encoder_path(name),
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            dtype=torch.float32,
            use_safetensors=True,
            trust_remote_code=False,
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    model.config.architectures = ["BertForSequenceClassification"]
    return model


def init_model(
    store: ModelStore, name: str, labels: list[str], preset: str = "tiny", seed: int = 0
) -> str:
    """Write a new version of `name` from `preset` (a fresh, seeded head); return the version."""

    hyperparameters: dict[str, Any] = {"seed": seed}
    if preset in PRETRAINED:
        hyperparameters["encoder_sha256"] = encoder_sha256(PRETRAINED[preset])

    def write(tmp: Path) -> ModelCard:
        model, tokenizer = build_model(preset, labels, seed), build_tokenizer(preset)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        return ModelCard(
            name=name,
            version="pending",
            created_at=utc_now(),
            source="init",
            labels=labels,
            preset=preset,
            hyperparameters=hyperparameters,
            drift_reference=drift_reference(tmp, model, tokenizer),
        )

    return store.add_version(name, write)
