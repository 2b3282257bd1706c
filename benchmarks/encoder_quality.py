"""The tiny-encoder preset (our pretrained encoder, fine-tuned) vs TF-IDF char n-grams + LR, per data set.

    python -m benchmarks.encoder_quality [--datasets a,b] [--cap 6000] [--out FILE]

Every labelled set in ../shared/data: train on (at most `--cap` rows of) train, keep the epoch
(or, for the baseline, the C) with the best dev accuracy, score on test. thucnews_titles has no
train split: its dev.tsv is shuffled, the last 1000 rows are the dev split and the others
(capped) train; test is test. Both methods see exactly the same rows. Results are merged, per
data set, into benchmarks/results/encoder_quality.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.accuracy import DATA, RESULTS, baseline, labels_of, ours, table
from modelstore.presets import encoder_path, encoder_sha256
from trainer.data import Example, load_dataset
from trainer.record import library_versions

# The trainer's defaults (UER recipe: warm-up 0.1, weight decay 0.01, batch 32, best dev epoch)
# with a shorter sequence (64) and a learning rate sized for a 128-wide model (3e-4).
RECIPE = dict(epochs=3, max_seq_len=64, batch_size=32, learning_rate=3e-4, device="cpu")
DEV_CAP = 2000
CS = (1.0, 3.0, 10.0, 30.0)
OUT = RESULTS / "encoder_quality.json"


def datasets() -> list[str]:
    return sorted(p.parent.name for p in DATA.glob("*/test.tsv"))


def splits(name: str, labels: list[str], cap: int) -> tuple[dict[str, list[Example]], str]:
    rng = random.Random(0)
    if not (DATA / name / "train.tsv").is_file():
        pool = load_dataset(DATA / name / "dev.tsv", labels).examples
        rng.shuffle(pool)
        train, dev = pool[:-1000], pool[-1000:]
        note = "no train split: dev.tsv shuffled (seed 0), last 1000 rows dev, the rest train"
    else:
        train = load_dataset(DATA / name / "train.tsv", labels).examples
        dev = load_dataset(DATA / name / "dev.tsv", labels).examples
        rng.shuffle(train)
        rng.shuffle(dev)
        note = "train/dev/test splits as shipped"
    test = load_dataset(DATA / name / "test.tsv", labels).examples
    return {"train": train[:cap], "dev": dev[:DEV_CAP], "test": test}, note


def run(name: str, cap: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    labels = labels_of(name)
    data, note = splits(name, labels, cap)
    sizes = {k: len(v) for k, v in data.items()}
    print(f"{name}: {sizes} ({note})", flush=True)
    base = baseline(data, CS)
    with tempfile.TemporaryDirectory(prefix="streamclf-encq-") as tmp:
        tiny = ours(name, data, labels, "tiny-encoder", dict(RECIPE), Path(tmp))
    return {
        "dataset": name,
        "splits": note,
        "sizes": sizes,
        "baseline": base,
        "tiny": tiny,
        "tiny_beats_baseline": tiny["test_accuracy"] > base["test_accuracy"],
        "margin": round(tiny["test_accuracy"] - base["test_accuracy"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=None, help="comma-separated (default: all)")
    parser.add_argument("--cap", type=int, default=6000, help="at most this many train rows")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not there (this benchmark needs ../shared/data)")
        return 0
    names = args.datasets.split(",") if args.datasets else datasets()
    for name in names:
        started = time.monotonic()
        row = run(name, args.cap)
        row["seconds"] = round(time.monotonic() - started, 1)
        previous = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": {}}
        rows = previous["rows"] | {name: row}
        payload = {
            "benchmark": "encoder_quality",
            "command": "python -m benchmarks.encoder_quality" + f" --cap {args.cap}",
            "recipe": RECIPE,
            "train_cap": args.cap,
            "dev_cap": DEV_CAP,
            "baseline": f"TF-IDF char 1-3-grams (min_df 2, sublinear tf) + LR, C in {list(CS)} "
            "chosen on dev",
            "encoder": {"path": str(encoder_path().name), "sha256": encoder_sha256()},
            "machine": {"python": platform.python_version(), "threads": 1, **library_versions()},
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "rows": dict(sorted(rows.items())),
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        flat = [
            {"dataset": name, "method": m, **row[k]}
            for k, m in (("baseline", "TF-IDF char 1-3gram + LR"), ("tiny", "tiny (encoder)"))
        ]
        print(table(flat), flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
