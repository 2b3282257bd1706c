"""Benchmark texts: real Chinese sentences from `../shared/data` when present, generated otherwise.

The data files are UER TSV (`label<TAB>text_a` with a header line), split on `\\n` only.
Generated text draws single CJK characters and punctuation from the bundled vocab, so its
token counts behave like real Chinese (one token per character).
"""

from __future__ import annotations

import os
import random
from functools import lru_cache
from pathlib import Path

from modelstore.presets import vocab_path

PUNCTUATION = "，。！？、；："


def default_data_dir() -> Path:
    """`STREAMCLF_BENCH_DATA`, else `../shared/data` beside the repository."""
    override = os.environ.get("STREAMCLF_BENCH_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def read_tsv_texts(path: Path) -> list[str]:
    """`text_a` of every row of a UER TSV file (header skipped, split on `\\n` only)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    texts = []
    for line in lines[1:]:
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1].strip():
            texts.append(parts[1])
    return texts


def real_texts(data_dir: Path | None = None) -> dict[str, list[str]]:
    """Dataset name -> texts of its `test.tsv`; empty when no data is present."""
    root = data_dir or default_data_dir()
    if not root.is_dir():
        return {}
    found = {}
    for path in sorted(root.glob("*/test.tsv")):
        texts = read_tsv_texts(path)
        if texts:
            found[path.parent.name] = texts
    return found


@lru_cache(maxsize=1)
def cjk_characters() -> tuple[str, ...]:
    """Single CJK characters of the bundled vocab (the bulk of its 21128 entries)."""
    lines = vocab_path().read_text(encoding="utf-8").split("\n")
    return tuple(t for t in lines if len(t) == 1 and "\u4e00" <= t <= "\u9fff")


def generated_text(rng: random.Random, length: int) -> str:
    """A Chinese-like string of exactly `length` characters with punctuation every ~12."""
    chars = cjk_characters()
    out = []
    for i in range(length):
        if i and i % 12 == 0 and rng.random() < 0.7:
            out.append(rng.choice(PUNCTUATION))
        else:
            out.append(rng.choice(chars))
    return "".join(out)


def sentences(n: int, seed: int = 0, data_dir: Path | None = None) -> tuple[list[str], str]:
    """`n` texts and their source: real sentences interleaved across the datasets (so each
    dataset is equally represented), repeated if `n` exceeds them; generated otherwise."""
    rng = random.Random(seed)
    found = real_texts(data_dir)
    if found:
        pools = [rng.sample(texts, len(texts)) for texts in found.values()]
        mixed = [pool[i] for i in range(max(map(len, pools))) for pool in pools if i < len(pool)]
        texts = [mixed[i % len(mixed)] for i in range(n)]
        return texts, "shared/data: " + ",".join(found)
    texts = [generated_text(rng, rng.randint(8, 80)) for _ in range(n)]
    return texts, "generated"


def mixed_lengths(
    n: int, seed: int = 0, low: int = 10, high: int = 500, data_dir: Path | None = None
) -> list[str]:
    """`n` texts of lengths drawn uniformly from [low, high] characters: real sentences joined
    and cut to length when data is present, generated text otherwise."""
    rng = random.Random(seed)
    found = real_texts(data_dir)
    corpus = "".join(t for texts in found.values() for t in texts[:2000]) if found else ""
    out = []
    for _ in range(n):
        length = rng.randint(low, high)
        if len(corpus) > high:
            start = rng.randrange(0, len(corpus) - length)
            out.append(corpus[start : start + length])
        else:
            out.append(generated_text(rng, length))
    return out


def unique_texts(texts: list[str], tag: str) -> list[str]:
    """Make every text distinct (so no cache or in-batch dedupe hides the model's work)."""
    return [f"{t}〔{tag}{i}〕" for i, t in enumerate(texts)]
