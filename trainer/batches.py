"""Tokenizing examples once, length-grouped batch order, and dynamic padding."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trainer.data import Example

# Batches are formed inside pools of this many batches, sorted by length: little padding, and
# still a different mix of examples in every epoch.
POOL_BATCHES = 50


@dataclass(frozen=True)
class Encoded:
    """Token ids per example (unpadded), segment ids and labels."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.labels)

    def lengths(self) -> list[int]:
        return [len(ids) for ids in self.input_ids]


def encode(examples: Sequence[Example], tokenizer: Any, max_seq_len: int) -> Encoded:
    """Tokenize (truncating to `max_seq_len` tokens, [CLS] and [SEP] included)."""
    ids: list[list[int]] = []
    types: list[list[int]] = []
    singles = [i for i, e in enumerate(examples) if e.text_pair is None]
    pairs = [i for i, e in enumerate(examples) if e.text_pair is not None]
    out: dict[int, tuple[list[int], list[int]]] = {}
    for group, with_pair in ((singles, False), (pairs, True)):
        if not group:
            continue
        texts = [examples[i].text for i in group]
        second = [examples[i].text_pair for i in group] if with_pair else None
        enc = tokenizer(
            texts, second, truncation=True, max_length=max_seq_len, return_token_type_ids=True
        )
        for i, input_ids, type_ids in zip(
            group, enc["input_ids"], enc["token_type_ids"], strict=True
        ):
            out[i] = (input_ids, type_ids)
    for i in range(len(examples)):
        ids.append(out[i][0])
        types.append(out[i][1])
    return Encoded(ids, types, [e.label for e in examples])


def batch_order(lengths: Sequence[int], batch_size: int, seed: int) -> list[list[int]]:
    """Shuffled batches of indices, each made of examples of similar length.

    Deterministic in `seed`, so a resumed epoch sees the same batches in the same order.
    """
    rng = random.Random(seed)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * POOL_BATCHES
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def sequential_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Evaluation batches: sorted by length (little padding), every index exactly once."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(data: Encoded, indices: Sequence[int], pad_id: int = 0) -> dict[str, Any]:
    """Pad one batch to its longest member; returns torch tensors."""
    import torch

    width = max(len(data.input_ids[i]) for i in indices)
    ids = torch.full((len(indices), width), pad_id, dtype=torch.long)
    types = torch.zeros((len(indices), width), dtype=torch.long)
    mask = torch.zeros((len(indices), width), dtype=torch.long)
    for row, i in enumerate(indices):
        n = len(data.input_ids[i])
        ids[row, :n] = torch.tensor(data.input_ids[i])
        types[row, :n] = torch.tensor(data.token_type_ids[i])
        mask[row, :n] = 1
    labels = torch.tensor([data.labels[i] for i in indices], dtype=torch.long)
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask, "labels": labels}
