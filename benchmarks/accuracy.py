"""Trainer accuracy: our loop (tiny-random preset, from scratch) vs a TF-IDF char n-gram LR baseline.

    python -m benchmarks.accuracy [--quick] [--gpu]

Reads ../shared/data (chnsenticorp: train/dev/test; thucnews_titles: no train split, so the
first 8000 rows of dev train, the last 2000 are dev, and test is test — see PROVENANCE.md).
Both methods see exactly the same rows. Writes benchmarks/results/accuracy-<mode>.json.
With CUDA (or --gpu), also fine-tunes the roberta-base preset (random init: no pretrained
weights here) with the UER recipe.
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

from modelstore.presets import init_model
from modelstore.store import ModelStore
from trainer.config import TrainConfig
from trainer.data import Example, load_dataset, write_jsonl
from trainer.record import library_versions
from trainer.train import train

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"

# From scratch a tiny BERT needs a far larger learning rate than fine-tuning (3e-5).
TINY = {
    "chnsenticorp": dict(epochs=2, max_seq_len=64, batch_size=32, learning_rate=1e-3),
    "thucnews_titles": dict(epochs=2, max_seq_len=32, batch_size=32, learning_rate=1e-3),
}
UER_RECIPE = dict(epochs=3, max_seq_len=512, batch_size=32, learning_rate=3e-5)


def labels_of(name: str) -> list[str]:
    table = json.loads((DATA / name / "labels.json").read_text(encoding="utf-8"))
    return [table[k] for k in sorted(table, key=int)]


def splits(name: str, labels: list[str], quick: bool, work: Path) -> dict[str, list[Example]]:
    """Train/dev/test examples; --quick takes a stratification-free random subset."""
    if name == "thucnews_titles":
        pool = load_dataset(DATA / name / "dev.tsv", labels).examples
        random.Random(0).shuffle(pool)
        out = {"train": pool[:8000], "dev": pool[8000:], "test": None}
        out["test"] = load_dataset(DATA / name / "test.tsv", labels).examples
    else:
        out = {
            k: load_dataset(DATA / name / f"{k}.tsv", labels).examples
            for k in ("train", "dev", "test")
        }
    if quick:
        sizes = {"train": 3000, "dev": 500, "test": 1000}
        out = {k: random.Random(1).sample(v, min(sizes[k], len(v))) for k, v in out.items()}
    return out


def baseline(data: dict[str, list[Example]], cs: tuple[float, ...] = (10.0,)) -> dict[str, Any]:
    """TF-IDF over character 1-3-grams + logistic regression (scikit-learn); with several
    `cs`, the regularisation with the best dev accuracy is kept."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    start = time.monotonic()
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2)
    x_train = vectorizer.fit_transform([e.text for e in data["train"]])
    x_dev = vectorizer.transform([e.text for e in data["dev"]])
    best: tuple[float, float, Any] | None = None
    for c in cs:
        candidate = LogisticRegression(C=c, max_iter=2000)
        candidate.fit(x_train, [e.label for e in data["train"]])
        score = float(accuracy_score([e.label for e in data["dev"]], candidate.predict(x_dev)))
        if best is None or score > best[0]:
            best = (score, c, candidate)
    assert best is not None
    model = best[2]
    seconds = time.monotonic() - start
    result: dict[str, Any] = {"train_seconds": round(seconds, 2), "C": best[1]}
    for split in ("dev", "test"):
        pred = model.predict(vectorizer.transform([e.text for e in data[split]]))
        gold = [e.label for e in data[split]]
        result[f"{split}_accuracy"] = round(float(accuracy_score(gold, pred)), 4)
        result[f"{split}_macro_f1"] = round(float(f1_score(gold, pred, average="macro")), 4)
    result["train_examples_per_s"] = round(len(data["train"]) / seconds, 1)
    return result


def ours(
    name: str,
    data: dict[str, list[Example]],
    labels: list[str],
    preset: str,
    hyper: dict[str, Any],
    work: Path,
) -> dict[str, Any]:
    """Our trainer, from a randomly initialised preset, keeping the best dev epoch."""
    files = {}
    for split, examples in data.items():
        files[split] = work / f"{name}-{split}.jsonl"
        write_jsonl(files[split], examples, labels)
    store = ModelStore(work / "store")
    model = f"{name}-{preset}"
    init_model(store, model, labels, preset, seed=0)
    config = TrainConfig(model=model, train=str(files["train"]), dev=str(files["dev"]),
                         test=str(files["test"]), **hyper)  # fmt: skip
    last = [0.0]

    def progress(p: Any) -> None:
        if p.phase == "eval":
            m = p.metrics
            print(f"  {model} epoch {m['epoch']}: dev acc {m['dev_accuracy']:.4f}", flush=True)
        elif p.phase == "train" and time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            print(f"  {model} epoch {p.epoch} step {p.step}/{p.steps} loss {p.loss:.3f} "
                  f"{p.examples_per_s:.0f} ex/s", flush=True)  # fmt: skip

    outcome = train(config, store, progress)
    card = outcome.card
    return {
        "preset": preset,
        "hyperparameters": hyper,
        "best_epoch": outcome.best_epoch,
        "dev_accuracy": round(card.dev_metrics["accuracy"], 4),
        "dev_macro_f1": round(card.dev_metrics["macro_f1"], 4),
        "test_accuracy": round(card.test_metrics["accuracy"], 4),
        "test_macro_f1": round(card.test_metrics["macro_f1"], 4),
        "train_examples_per_s": round(outcome.examples_per_s, 1),
        "train_seconds": round(card.epochs[-1]["train_seconds"], 1),
        "epochs": card.epochs,
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'dataset':<16} {'method':<34} {'test acc':>8} {'macro-F1':>8} {'train ex/s':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['dataset']:<16} {r['method']:<34} {r['test_accuracy']:>8.4f} "
                     f"{r['test_macro_f1']:>8.4f} {r['train_examples_per_s']:>10.1f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="random subsets: 3000/500/1000 rows")
    parser.add_argument("--gpu", action="store_true", help="also roberta-base (UER recipe)")
    parser.add_argument("--datasets", default="chnsenticorp,thucnews_titles")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"skipped: {DATA} is not there (the accuracy benchmark needs ../shared/data)")
        return 0
    import torch

    gpu = torch.cuda.is_available()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="streamclf-acc-") as tmp:
        for name in args.datasets.split(","):
            labels = labels_of(name)
            data = splits(name, labels, args.quick, Path(tmp))
            sizes = {k: len(v) for k, v in data.items()}
            print(f"{name}: {sizes}", flush=True)
            base = baseline(data)
            rows.append(
                {"dataset": name, "method": "TF-IDF char 1-3gram + LR", **base, "sizes": sizes}
            )
            hyper = TINY[name]
            res = ours(name, data, labels, "tiny-random", hyper, Path(tmp))
            rows.append(
                {"dataset": name, "method": "streamclf tiny (from scratch)", **res, "sizes": sizes}
            )
            if gpu or args.gpu:
                recipe = UER_RECIPE | ({"epochs": 1} if args.quick else {})
                res = ours(name, data, labels, "roberta-base", recipe, Path(tmp))
                rows.append({"dataset": name, "method": "streamclf roberta-base (random init)",
                             **res, "sizes": sizes})  # fmt: skip
    print(table(rows))
    machine = {"python": platform.python_version(), "cpus": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if gpu else None, **library_versions()}  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    mode = ("quick" if args.quick else "full") + ("-gpu" if gpu else "-cpu")
    out = RESULTS / f"accuracy-{mode}.json"
    out.write_text(
        json.dumps({"mode": mode, "machine": machine, "rows": rows}, indent=2), encoding="utf-8"
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
