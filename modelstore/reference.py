"""A version's drift reference: its answers on its own texts (dev texts recorded by the
trainer, else the shipped probe texts), computed when the version is stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore.probes import PROBE_FILE, read_jsonl, shipped_path
from schemas.drift import DriftReference, build_reference

BATCH = 32
MAX_TOKENS = 256  # enough to rank the labels of a probe text (they are cut to 256 characters)


def drift_reference(
    version_dir: Path, model: Any = None, tokenizer: Any = None, count: int = 512
) -> DriftReference:
    """Classify the version's probe texts (fp32 torch, CPU) and summarise the answers.
    `model`/`tokenizer` default to the ones saved in `version_dir`."""
    import torch

    if model is None or tokenizer is None:
        from modelstore.loading import load_classifier

        model, tokenizer = load_classifier(version_dir)
    own = version_dir / PROBE_FILE
    source = "dev" if own.is_file() else "probes"
    rows = read_jsonl(own if own.is_file() else shipped_path())[:count]
    texts, all_pairs = [r[0] for r in rows], [r[1] for r in rows]
    label_ids: list[int] = []
    top1: list[float] = []
    margins: list[float] = []
    model.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            batch = texts[start : start + BATCH]
            pairs = all_pairs[start : start + BATCH]
            enc = tokenizer(
                batch,
                [p or "" for p in pairs] if any(pairs) else None,
                truncation=True,
                max_length=MAX_TOKENS,
                padding=True,
                return_tensors="pt",
            ).to(device)
            probs = torch.softmax(model(**enc).logits.float(), dim=-1)
            best = torch.topk(probs, min(2, probs.shape[-1]), dim=-1)
            for values, ids in zip(best.values.tolist(), best.indices.tolist(), strict=True):
                label_ids.append(ids[0])
                top1.append(values[0])
                margins.append(values[0] - values[1] if len(values) > 1 else 1.0)
    lengths = [len(t) for t in texts]
    num_labels = int(model.config.num_labels)
    return build_reference(source, num_labels, label_ids, top1, margins, lengths)
