"""UER-py BERT text classifiers -> HF BertForSequenceClassification (and back, for tests).

The mapping is the one in UER-py's
`scripts/convert_bert_text_classification_from_uer_to_huggingface.py` (dbiir/UER-py): embedding,
`encoder.transformer.N.*` layers, `output_layer_1` (-> pooler) and `output_layer_2` (-> classifier).
UER's segment embedding has three rows (0 = padding, 1 = text_a, 2 = text_b); HF keeps rows 1-2.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelstore.files import file_sha256, utc_now
from modelstore.hf import bert_tokenizer_fast
from modelstore.store import ModelStore
from schemas.card import ModelCard
from trainer.exceptions import UerFormatError

_EMBEDDING = {
    "embedding.word_embedding.weight": "bert.embeddings.word_embeddings.weight",
    "embedding.position_embedding.weight": "bert.embeddings.position_embeddings.weight",
    "embedding.layer_norm.gamma": "bert.embeddings.LayerNorm.weight",
    "embedding.layer_norm.beta": "bert.embeddings.LayerNorm.bias",
}
_SEGMENT = ("embedding.segment_embedding.weight", "bert.embeddings.token_type_embeddings.weight")
_LAYER = {
    "self_attn.linear_layers.0": "attention.self.query",
    "self_attn.linear_layers.1": "attention.self.key",
    "self_attn.linear_layers.2": "attention.self.value",
    "self_attn.final_linear": "attention.output.dense",
    "feed_forward.linear_1": "intermediate.dense",
    "feed_forward.linear_2": "output.dense",
}
_LAYER_NORM = {"layer_norm_1": "attention.output.LayerNorm", "layer_norm_2": "output.LayerNorm"}
_HEAD = {
    "output_layer_1": "bert.pooler.dense",
    "output_layer_2": "classifier",
}
# Names used by later UER-py / TencentPretrain checkpoints for the same embedding tensors.
_ALIASES = {
    "embedding.word.embedding.weight": "embedding.word_embedding.weight",
    "embedding.pos.embedding.weight": "embedding.position_embedding.weight",
    "embedding.seg.embedding.weight": "embedding.segment_embedding.weight",
}
_LAYER_KEY = re.compile(r"^encoder\.transformer\.(\d+)\.")


def _key_map(layers: int) -> dict[str, str]:
    """UER name -> HF name for everything but the segment embedding."""
    mapping = dict(_EMBEDDING)
    for i in range(layers):
        uer, hf = f"encoder.transformer.{i}.", f"bert.encoder.layer.{i}."
        for src, dst in _LAYER.items():
            for kind in ("weight", "bias"):
                mapping[f"{uer}{src}.{kind}"] = f"{hf}{dst}.{kind}"
        for src, dst in _LAYER_NORM.items():
            mapping[f"{uer}{src}.gamma"] = f"{hf}{dst}.weight"
            mapping[f"{uer}{src}.beta"] = f"{hf}{dst}.bias"
    for src, dst in _HEAD.items():
        for kind in ("weight", "bias"):
            mapping[f"{src}.{kind}"] = f"{dst}.{kind}"
    return mapping


def count_layers(state: dict[str, Any]) -> int:
    found = {int(m.group(1)) for k in state if (m := _LAYER_KEY.match(k))}
    if not found:
        raise UerFormatError("no encoder.transformer.N.* keys: not a UER-py BERT checkpoint")
    return max(found) + 1


def normalize(state: dict[str, Any]) -> dict[str, Any]:
    """Strip DataParallel's `module.` prefix and map later UER embedding names to the classic ones."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        out[_ALIASES.get(key, key)] = value
    return out


def uer_to_hf(state: dict[str, Any]) -> dict[str, Any]:
    """Convert a UER-py classifier state dict to HF BertForSequenceClassification keys."""
    state = normalize(state)
    layers = count_layers(state)
    mapping = _key_map(layers)
    missing = [k for k in [*mapping, _SEGMENT[0]] if k not in state]
    if missing:
        shown = ", ".join(missing[:6]) + (
            f" and {len(missing) - 6} more" if len(missing) > 6 else ""
        )
        raise UerFormatError(f"not a UER-py BERT text classifier: missing {shown}")
    out = {dst: state[src] for src, dst in mapping.items()}
    segment = state[_SEGMENT[0]]
    if segment.shape[0] != 3:
        raise UerFormatError(f"segment embedding has {segment.shape[0]} rows; UER-py BERT has 3")
    out[_SEGMENT[1]] = segment[1:, :]
    return out


def hf_to_uer(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse mapping (as UER-py's huggingface->uer script): a zero padding segment row."""
    import torch

    layers = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("bert.encoder.layer."))
    out = {src: state[dst] for src, dst in _key_map(layers).items()}
    types = state[_SEGMENT[1]]
    out[_SEGMENT[0]] = torch.cat([torch.zeros_like(types[:1]), types], dim=0)
    return out


def config_for(state: dict[str, Any], labels: list[str], heads: int | None = None) -> Any:
    """A BertConfig with the shapes of a converted state dict (UER's LayerNorm eps is 1e-6)."""
    from transformers import BertConfig

    vocab, hidden = state["bert.embeddings.word_embeddings.weight"].shape
    if state["classifier.weight"].shape[0] != len(labels):
        raise UerFormatError(
            f"the classifier has {state['classifier.weight'].shape[0]} outputs but "
            f"{len(labels)} labels were given"
        )
    heads = heads or max(1, hidden // 64)
    if hidden % heads:
        raise UerFormatError(f"hidden size {hidden} is not divisible by {heads} heads")
    return BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=1
        + max(int(k.split(".")[3]) for k in state if k.startswith("bert.encoder.layer.")),
        num_attention_heads=heads,
        intermediate_size=state["bert.encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["bert.embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=2,
        layer_norm_eps=1e-6,
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
        architectures=["BertForSequenceClassification"],
    )


def load_uer_state(path: Path) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle with code in it, truncated file, ...
        raise UerFormatError(f"{path}: cannot read as a tensor-only state dict: {exc}") from exc
    if not isinstance(state, dict):
        raise UerFormatError(f"{path}: not a state dict")
    return state


def tokenizer_for(vocab: Path | None) -> Any:
    """The bundled Google Chinese vocab, or a UER-py `vocab.txt` (one token a line)."""
    from modelstore.presets import build_tokenizer

    if vocab is None:
        return build_tokenizer()
    words = vocab.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    table = {word: i for i, word in enumerate(words)}
    return bert_tokenizer_fast()(vocab=table, do_lower_case=True, model_max_length=512)


def import_uer(
    store: ModelStore,
    name: str,
    path: Path,
    labels: list[str],
    heads: int | None = None,
    vocab: Path | None = None,
) -> str:
    """Convert a UER-py classifier `.bin` and store it as a new version of `name` (safetensors)."""
    from transformers import BertForSequenceClassification

    state = uer_to_hf(load_uer_state(path))
    config = config_for(state, labels, heads)
    tokenizer = tokenizer_for(vocab)
    if len(tokenizer.get_vocab()) != config.vocab_size:
        raise UerFormatError(
            f"the checkpoint's vocab has {config.vocab_size} rows but the tokenizer has "
            f"{len(tokenizer.get_vocab())} tokens; give the matching vocab.txt with --vocab"
        )
    model: Any = BertForSequenceClassification(config)  # its `eval` is unannotated
    result = model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    unexpected = [k for k in result.missing_keys if not k.endswith("position_ids")]
    if unexpected or result.unexpected_keys:
        raise UerFormatError(
            f"weights do not fit: missing {unexpected}, extra {result.unexpected_keys}"
        )
    model.eval()

    def write(tmp: Path) -> ModelCard:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        return ModelCard(
            name=name,
            version="pending",
            created_at=utc_now(),
            source="import-uer",
            labels=labels,
            hyperparameters={
                "imported_from": str(path),
                "imported_sha256": file_sha256(path),
                "layers": config.num_hidden_layers,
                "heads": config.num_attention_heads,
            },
        )

    return store.add_version(name, write)
