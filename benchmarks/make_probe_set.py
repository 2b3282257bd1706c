"""Writes the probe set that ships with the package (`modelstore/assets/probe_texts_zh.jsonl`):
a seeded sample of real sentences from the dev splits under `../shared/data`, 56 per dataset,
at most 40 characters each, plus 24 text pairs made of two such sentences.

`python -m benchmarks.make_probe_set` (run once; its output is committed with PROVENANCE).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from benchmarks.texts import default_data_dir, read_tsv_texts

DATASETS = ("tnews", "thucnews_titles", "smp2020_ewect_usual", "book_review", "chnsenticorp")
PER_DATASET, PAIRS, MAX_CHARS, SEED = 56, 24, 40, 14
OUT = Path(__file__).resolve().parent.parent / "modelstore" / "assets" / "probe_texts_zh.jsonl"


def main() -> None:
    rng = random.Random(SEED)
    rows: list[dict[str, str]] = []
    for name in DATASETS:
        every = read_tsv_texts(default_data_dir() / name / "dev.tsv")
        texts = [t for t in every if len(t) <= MAX_CHARS]
        rows += [{"text": t} for t in rng.sample(texts, PER_DATASET)]
    for _ in range(PAIRS):
        a, b = rng.sample(rows[: len(DATASETS) * PER_DATASET], 2)
        rows.append({"text": a["text"], "text_pair": b["text"]})
    rng.shuffle(rows)  # pairs spread through the file: any prefix has some
    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    print(f"wrote {len(rows)} probe texts to {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
