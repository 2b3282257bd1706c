"""The demo's classifier: trained by the trainer on the shipped ChnSentiCorp sample.

The first version is trained once, from `PRESET` on the first half of the training sample, and
cached under `<state>/demo-cache/<key>` (key: sha256 of the sample, the recipe, the preset and,
for a pretrained preset, the encoder's weights), so later runs copy it. `PRESET` stays
`tiny-random`: fine-tuned with this recipe, the shipped encoder (`tiny-encoder`) labelled 0.80 of 800
held-out reviews right and three showcase reviews wrong, below the random model's figures. The
second version is trained on every run, from the first, on the whole sample, and must pass the
accuracy gate.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from admin.commands.train import ProgressView
from admin.context import console
from admin.safe_text import esc
from modelstore.store import ModelStore

MODEL = "reviews"
LABELS = ["negative", "positive"]
DATA = Path(__file__).resolve().parent / "data"
TRAIN, DEV = DATA / "chnsenticorp-train.tsv", DATA / "chnsenticorp-dev.tsv"
PRESET = "tiny-random"
# A tiny BERT from scratch needs a far larger learning rate than fine-tuning (UER's 3e-5).
FIRST = dict(epochs=3, max_seq_len=64, batch_size=32, learning_rate=1e-3, seed=7, warmup=0.1)
FIRST_ROWS = 800  # the first half of the training sample
SECOND = dict(epochs=1, max_seq_len=64, batch_size=32, learning_rate=1e-4, seed=8, warmup=0.0)


@dataclass(frozen=True)
class Trained:
    version: str
    dev_accuracy: float
    seconds: float
    cached: bool = False


def cache_key() -> str:
    digest = hashlib.sha256()
    for path in (TRAIN, DEV):
        digest.update(path.read_bytes())
    from modelstore.presets import PRETRAINED, encoder_sha256

    recipe: dict[str, object] = {"recipe": FIRST, "rows": FIRST_ROWS, "preset": PRESET}
    if PRESET in PRETRAINED:  # a new encoder must not reuse a model trained from the old one
        recipe["encoder"] = encoder_sha256(PRETRAINED[PRESET])
    digest.update(json.dumps(recipe, sort_keys=True).encode())
    return digest.hexdigest()[:16]


def _threads() -> None:
    """One thread: the same result on every run (the gate's comparison below depends on it),
    and on a busy 2-core machine two threads are several times slower than one."""
    import torch

    torch.set_num_threads(1)


def _train(store: ModelStore, train_file: Path = TRAIN, **config: object) -> Trained:
    from trainer.config import TrainConfig
    from trainer.train import train

    _threads()
    started = time.monotonic()
    cfg = TrainConfig(model=MODEL, train=str(train_file), dev=str(DEV), device="cpu", **config)
    view = ProgressView()
    with view.bar:
        outcome = train(cfg, store, view)
    accuracy = float(outcome.card.dev_metrics["accuracy"])
    return Trained(outcome.version, accuracy, time.monotonic() - started)


def first_version(store_root: Path, cache_root: Path) -> Trained:
    """v1 in a fresh store at `store_root`: copied from the cache, else trained and cached."""
    cached = cache_root / cache_key()
    if (cached / "store").is_dir():
        shutil.copytree(cached / "store", store_root)
        meta = json.loads((cached / "trained.json").read_text())
        return Trained(meta["version"], meta["dev_accuracy"], meta["seconds"], cached=True)
    from modelstore.hf import disable_progress_bar
    from modelstore.presets import build_model, build_tokenizer

    disable_progress_bar()
    tmp = cached.with_name(cached.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    half = cache_root / f"{cached.name}-train-first-{FIRST_ROWS}.tsv"  # stays: the card names it
    lines = TRAIN.read_text(encoding="utf-8").split("\n")
    half.write_text("\n".join(lines[: FIRST_ROWS + 1]) + "\n", encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="demo-base-") as base:
        build_model(PRESET, LABELS, seed=7).save_pretrained(base, safe_serialization=True)
        build_tokenizer(PRESET).save_pretrained(base)
        trained = _train(ModelStore(store_root), half, base_dir=base, labels=LABELS, **FIRST)
    shutil.copytree(store_root, tmp / "store", ignore=shutil.ignore_patterns(".checkpoints"))
    (tmp / "trained.json").write_text(json.dumps(trained.__dict__))
    tmp.rename(cached)
    return trained


def second_version(store_root: Path) -> Trained:
    """A new version trained from the active one on the whole sample (twice the rows, one
    epoch at a tenth of the learning rate)."""
    return _train(ModelStore(store_root), TRAIN, **SECOND)


def gate(store_root: Path, version: str) -> str:
    """The trainer's accuracy gate; raises `PromotionRefused` with both figures."""
    from trainer.promote import check_gate

    decision = check_gate(ModelStore(store_root), MODEL, version)
    console.print(f"gate: {esc(decision.reason)}")
    return decision.reason
