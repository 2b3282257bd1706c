"""Where a training run starts: a stored version, or an HF base checkpoint with a new head."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelstore.exceptions import ModelStoreError
from modelstore.store import ModelStore
from trainer.config import TrainConfig
from trainer.exceptions import ConfigError

TOKENIZER_MARKERS = ("tokenizer.json", "vocab.txt")


@dataclass
class Start:
    model: Any
    tokenizer: Any
    labels: list[str]
    parent: str | None
    preset: str | None
    description: str


def store_labels(store: ModelStore, name: str) -> list[str] | None:
    """The label set of the model's default version, or None when the model is new."""
    if not store.versions(name):
        return None
    return list(store.card(name, store.default_version(name)).labels)


def load_start(config: TrainConfig, store: ModelStore) -> Start:
    if config.base_dir:
        return _from_base_dir(config, store)
    from modelstore.loading import load_classifier

    try:
        version = config.base_version or store.default_version(config.model)
        path = store.require(config.model, version)
        card = store.card(config.model, version)
    except ModelStoreError as exc:
        raise ConfigError(
            f"{exc}; create it with `streamclf models init` or give --base DIR"
        ) from exc
    try:
        model, tokenizer = load_classifier(path)  # every file checked against the card
    except ModelStoreError as exc:
        raise ConfigError(f"base version {config.model}@{version} refused: {exc}") from exc
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if config.labels and list(config.labels) != labels:
        raise ConfigError(
            f"--labels {config.labels} differ from {config.model}@{version}'s {labels}"
        )
    return Start(model, tokenizer, labels, version, card.preset, f"{config.model}@{version}")


def _from_base_dir(config: TrainConfig, store: ModelStore) -> Start:
    from transformers import AutoTokenizer, BertForSequenceClassification

    from modelstore.presets import build_tokenizer

    base = Path(config.base_dir or "")
    if not (base / "config.json").is_file():
        raise ConfigError(f"--base {base}: not an HF checkpoint directory (no config.json)")
    known = store_labels(store, config.model)
    labels = list(config.labels or known or [])
    if not labels:
        raise ConfigError(f"model {config.model!r} is new: give its labels (--labels)")
    if known and labels != known:
        raise ConfigError(f"labels {labels} differ from the stored {config.model}'s {known}")
    try:
        model = BertForSequenceClassification.from_pretrained(
            base,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={name: i for i, name in enumerate(labels)},
            ignore_mismatched_sizes=True,  # a new classification head sized to the labels
            trust_remote_code=False,
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError(f"--base {base}: cannot load weights: {exc}") from exc
    model.config.architectures = ["BertForSequenceClassification"]
    if any((base / f).is_file() for f in TOKENIZER_MARKERS):
        tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=False)
    else:
        tokenizer = build_tokenizer()
    return Start(model, tokenizer, labels, None, None, str(base))
