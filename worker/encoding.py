"""From texts to padded sub-batches, off the inference thread.

A batch is tokenized once without padding (one tokenizer call per kind, single or pair; only
rows over `max_length` are tokenized again with truncation and flagged), sorted by length,
cut into sub-batches whose padded size (`longest x rows`) fits the token budget, and each
sub-batch is padded into int64 arrays that any backend takes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class BatchStats:
    rows: int = 0
    sub_batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0
    prepare_seconds: float = 0.0

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


@dataclass
class SubBatch:
    rows: list[int]  # positions in the input batch
    ids: np.ndarray
    types: np.ndarray
    mask: np.ndarray

    def split(self) -> tuple[SubBatch, SubBatch]:
        """Two halves, each trimmed to its own longest row (after an out-of-memory error)."""
        half = len(self.rows) // 2
        return self._part(slice(0, half)), self._part(slice(half, None))

    def _part(self, part: slice) -> SubBatch:
        mask = self.mask[part]
        width = int(mask.sum(axis=1).max())
        return SubBatch(
            self.rows[part], self.ids[part, :width], self.types[part, :width], mask[:, :width]
        )


@dataclass
class Prepared:
    """A tokenized, sorted, padded batch, ready for `InferenceEngine.run`."""

    size: int
    sub_batches: list[SubBatch]
    truncated: list[bool]
    stats: BatchStats = field(default_factory=BatchStats)


def encode(
    tokenizer: Any, texts: Sequence[str], pairs: Sequence[str | None], max_length: int
) -> list[tuple[list[int], list[int], bool]]:
    """(input ids, token type ids, truncated) per text, unpadded."""
    rows: dict[int, tuple[list[int], list[int], bool]] = {}
    singles = [i for i, p in enumerate(pairs) if p is None]
    doubles = [i for i, p in enumerate(pairs) if p is not None]
    for group, with_pair in ((singles, False), (doubles, True)):
        if not group:
            continue
        a = [texts[i] for i in group]
        b = [pairs[i] for i in group] if with_pair else None
        # verbose=False: a row over the model's length is expected here and truncated below,
        # so transformers' "Token indices sequence length is longer..." warning is noise.
        enc = tokenizer(a, b, truncation=False, return_attention_mask=False, verbose=False)
        for j, i in enumerate(group):
            ids = enc["input_ids"][j]
            types = enc["token_type_ids"][j] if "token_type_ids" in enc else [0] * len(ids)
            truncated = len(ids) > max_length
            if truncated:
                one = tokenizer(
                    a[j],
                    b[j] if b else None,
                    truncation="longest_first",
                    max_length=max_length,
                    return_attention_mask=False,
                )
                ids = one["input_ids"]
                types = one.get("token_type_ids", [0] * len(ids))
            rows[i] = (ids, types, truncated)
    return [rows[i] for i in range(len(texts))]  # every index is a single or a double


def plan(lengths: Sequence[int], max_tokens: int, max_rows: int, sort: bool) -> list[list[int]]:
    """Cut the (length-sorted) order into sub-batches: `longest x rows <= max_tokens` and at
    most `max_rows` rows each."""
    order = list(range(len(lengths)))
    if sort:
        order.sort(key=lengths.__getitem__)
    chunks: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for index in order:
        new_longest = max(longest, lengths[index])
        full = new_longest * (len(current) + 1) > max_tokens or len(current) >= max_rows
        if current and full:
            chunks.append(current)
            current, new_longest = [], lengths[index]
        current.append(index)
        longest = new_longest
    if current:
        chunks.append(current)
    return chunks


def pad(rows: list[int], encoded: list[tuple[list[int], list[int], bool]], pad_id: int) -> SubBatch:
    """One sub-batch padded to its longest row."""
    width = max(len(encoded[i][0]) for i in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    types = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, i in enumerate(rows):
        seq, seq_types, _ = encoded[i]
        ids[r, : len(seq)] = seq
        types[r, : len(seq)] = seq_types
        mask[r, : len(seq)] = 1
    return SubBatch(list(rows), ids, types, mask)


def prepare(
    tokenizer: Any,
    texts: Sequence[str],
    pairs: Sequence[str | None] | None,
    max_length: int,
    max_tokens: int,
    max_rows: int = 1 << 30,
    sort: bool = True,
) -> Prepared:
    pairs = list(pairs) if pairs is not None else [None] * len(texts)
    encoded = encode(tokenizer, texts, pairs, max_length)
    lengths = [len(e[0]) for e in encoded]
    stats = BatchStats(rows=len(texts), real_tokens=sum(lengths))
    pad_id = tokenizer.pad_token_id or 0
    subs = [pad(rows, encoded, pad_id) for rows in plan(lengths, max_tokens, max_rows, sort)]
    stats.sub_batches = len(subs)
    stats.padded_tokens = sum(s.ids.size for s in subs)
    return Prepared(len(texts), subs, [e[2] for e in encoded], stats)
