"""Pretrain a small BERT by masked-language modelling on the train splits of ../shared/data.

    python -m modelstore.pretrain [--steps N] [--out DIR] [--measure]

Seeded and reproducible on one machine: fixed thread count, a fixed data order from the seed,
fixed masks from a seeded generator. Reads only `<data>/<set>/train.tsv` (never dev or test;
sets without a train split are skipped). The vocabulary is the part of Google's Chinese BERT
vocab seen in that corpus, most frequent first up to `--vocab`, plus [PAD] [UNK] [CLS] [SEP]
[MASK]. Writes a Hugging Face BertForMaskedLM directory (fp32 safetensors, config, vocab.txt,
tokenizer files) and `provenance.json` (data sha256, settings, loss, time, weights sha256).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from modelstore.hf import bert_tokenizer_fast, linear_schedule_with_warmup

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "assets" / "zh-tiny-encoder"
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


class Settings(BaseModel):
    """Everything that decides the weights (recorded in provenance.json)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 20261204
    threads: int = Field(1, ge=1)  # on a busy 2-core machine 2 threads ran 5x slower than 1
    vocab: int = Field(7000, ge=100)  # at most this many tokens besides the specials
    min_count: int = Field(2, ge=1)  # a token must be seen this often to be kept
    hidden: int = 128
    layers: int = 3
    heads: int = 2
    intermediate: int = 512
    max_positions: int = 512
    seq_len: int = Field(64, ge=16, le=512)  # pieces of longer texts become more sequences
    batch_size: int = 32
    steps: int = 3600
    learning_rate: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    mask_prob: float = 0.15


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def corpus_files(data: Path) -> list[Path]:
    """Every `<set>/train.tsv` under `data`, in name order (dev/test are never read)."""
    return sorted(data.glob("*/train.tsv"))


def read_texts(files: list[Path]) -> list[str]:
    texts: list[str] = []
    for path in files:
        lines = path.read_text(encoding="utf-8").split("\n")[1:]
        for line in lines:
            cells = line.split("\t")
            if len(cells) >= 2 and cells[1].strip():
                texts.extend(cell for cell in cells[1:] if cell.strip())
    return texts


def make_tokenizer(vocab: dict[str, int], max_len: int = 512) -> Any:
    return bert_tokenizer_fast()(vocab=vocab, do_lower_case=True, model_max_length=max_len)


def build_vocab(texts: list[str], settings: Settings) -> list[str]:
    """Specials, then the corpus's most frequent Google-vocab tokens (in Google's order)."""
    from modelstore.presets import load_vocab

    google = load_vocab()
    tokenizer = make_tokenizer(google, 10**9)  # counting only: no length warning
    counts: Counter[int] = Counter()
    for start in range(0, len(texts), 2000):
        for ids in tokenizer(texts[start : start + 2000], add_special_tokens=False)["input_ids"]:
            counts.update(ids)
    by_id = {i: w for w, i in google.items()}
    special_ids = {google[s] for s in SPECIALS}
    frequent = [i for i, n in counts.most_common() if n >= settings.min_count]
    kept = sorted(i for i in frequent if i not in special_ids)[: settings.vocab]
    kept = sorted(sorted(kept, key=lambda i: -counts[i])[: settings.vocab])
    return list(SPECIALS) + [by_id[i] for i in kept]


def sequences(texts: list[str], tokenizer: Any, seq_len: int) -> list[list[int]]:
    """Token ids with [CLS]/[SEP]; a long text is cut into consecutive pieces."""
    cls, sep, body = tokenizer.cls_token_id, tokenizer.sep_token_id, seq_len - 2
    out: list[list[int]] = []
    for start in range(0, len(texts), 2000):
        batch = tokenizer(texts[start : start + 2000], add_special_tokens=False)["input_ids"]
        for ids in batch:
            for i in range(0, len(ids), body):
                piece = ids[i : i + body]
                if len(piece) >= 4:
                    out.append([cls, *piece, sep])
    return out


def batches(n: int, batch_size: int, seed: int) -> Any:
    """Endless batches of indices: a fresh seeded permutation per pass over the data."""
    epoch = 0
    while True:
        order = list(range(n))
        random.Random(seed * 1000 + epoch).shuffle(order)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i : i + batch_size]
        epoch += 1


def mask_batch(
    seqs: list[list[int]], vocab_size: int, settings: Settings, gen: Any
) -> dict[str, Any]:
    """Padded ids, attention mask, masked positions and their original ids (BERT's 80/10/10)."""
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), width, dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
    attention = (ids != 0).long()
    maskable = attention.bool() & (ids > len(SPECIALS) - 1)
    chosen = (torch.rand(ids.shape, generator=gen) < settings.mask_prob) & maskable
    if not chosen.any():
        chosen[0, 1] = True
    targets = ids[chosen]
    roll = torch.rand(ids.shape, generator=gen)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = SPECIALS.index("[MASK]")
    random_ids = torch.randint(len(SPECIALS), vocab_size, ids.shape, generator=gen)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[swap] = random_ids[swap]
    return {"input_ids": inputs, "attention_mask": attention, "chosen": chosen, "targets": targets}


def build_model(settings: Settings, vocab_size: int) -> Any:
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=settings.hidden,
        num_hidden_layers=settings.layers,
        num_attention_heads=settings.heads,
        intermediate_size=settings.intermediate,
        max_position_embeddings=settings.max_positions,
        type_vocab_size=2,
        pad_token_id=0,
        architectures=["BertForMaskedLM"],
    )
    return BertForMaskedLM(config)


def mlm_loss(model: Any, batch: dict[str, Any]) -> Any:
    """Cross-entropy on the masked positions only (the head never sees the others)."""
    import torch

    hidden = model.bert(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
    ).last_hidden_state
    logits = model.cls(hidden[batch["chosen"]])
    return torch.nn.functional.cross_entropy(logits, batch["targets"])


def pretrain(settings: Settings, data: Path, out: Path, log_every: int = 50) -> dict[str, Any]:
    import torch

    torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    started = time.monotonic()
    files = corpus_files(data)
    if not files:
        raise SystemExit(f"no <set>/train.tsv under {data}")
    texts = read_texts(files)
    vocab = build_vocab(texts, settings)
    tokenizer = make_tokenizer({w: i for i, w in enumerate(vocab)})
    seqs = sequences(texts, make_tokenizer(tokenizer.get_vocab(), 10**9), settings.seq_len)
    tokens = sum(len(s) for s in seqs)
    print(f"corpus: {len(files)} files, {len(texts)} texts, {len(seqs)} sequences, "
          f"{tokens} tokens; vocab {len(vocab)}", flush=True)  # fmt: skip
    model = build_model(settings, len(vocab))
    model.train()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": settings.weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, lr=settings.learning_rate)
    scheduler = linear_schedule_with_warmup(
        optimizer, int(settings.warmup * settings.steps), settings.steps
    )
    gen = torch.Generator().manual_seed(settings.seed)
    order = batches(len(seqs), settings.batch_size, settings.seed)
    window: list[float] = []
    losses: list[float] = []
    t0 = time.monotonic()
    for step in range(1, settings.steps + 1):
        batch = mask_batch([seqs[i] for i in next(order)], len(vocab), settings, gen)
        loss = mlm_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        losses.append(loss.item())
        if step % log_every == 0 or step == settings.steps:
            rate = step / (time.monotonic() - t0)
            eta = (settings.steps - step) / rate
            print(f"step {step}/{settings.steps} mlm loss {sum(window) / len(window):.4f} "
                  f"{rate:.2f} steps/s eta {eta / 60:.1f} min", flush=True)  # fmt: skip
            window = []
    final = sum(losses[-200:]) / len(losses[-200:])
    seconds = time.monotonic() - started
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    (out / "vocab.txt").write_text("".join(f"{w}\n" for w in vocab), encoding="utf-8")
    weights = out / "model.safetensors"
    record = {
        "command": "python -m modelstore.pretrain " + _argline(settings),
        "settings": settings.model_dump(),
        "data": {str(p.relative_to(data)): sha256(p) for p in files},
        "corpus": {"texts": len(texts), "sequences": len(seqs), "tokens": tokens},
        "vocab_size": len(vocab),
        "parameters": sum(p.numel() for p in model.parameters()),
        "final_mlm_loss": round(final, 4),
        "first_mlm_loss": round(sum(losses[:50]) / len(losses[:50]), 4),
        "seconds": round(seconds, 1),
        "weights_sha256": sha256(weights),
        "weights_bytes": weights.stat().st_size,
        "storage": "float32 safetensors",
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": __import__("transformers").__version__,
            "platform": platform.platform(),
        },
    }
    (out / "provenance.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def write_provenance_md(out: Path) -> None:
    """PROVENANCE.md next to the weights, from provenance.json."""
    r = json.loads((out / "provenance.json").read_text(encoding="utf-8"))
    s = r["settings"]
    data = "\n".join(f"| `{name}` | `{digest}` |" for name, digest in r["data"].items())
    settings = ", ".join(f"{k} {v}" for k, v in s.items())
    text = f"""# zh-tiny-encoder: the pretrained encoder behind `--preset tiny`

A small BERT (hidden {s["hidden"]}, {s["layers"]} layers, {s["heads"]} heads, FFN {s["intermediate"]},
{r["parameters"]} parameters, vocab {r["vocab_size"]}) pretrained by this project with
masked-language modelling (15% of tokens, BERT's 80/10/10; every token of this vocab is one
character or one word piece, so the masking is whole-character) on the unlabeled texts of the
**train splits** of `../shared/data` (never dev or test; `thucnews_titles` has no train split and
is not used). Hugging Face `BertForMaskedLM` format, {r["storage"]}; `--preset tiny` loads it
with `BertForSequenceClassification.from_pretrained` (a new pooler and head, seeded).

- Command: `{r["command"].strip()}` (from the repository root, `../shared/data` present).
- Settings: {settings}.
- Corpus: {r["corpus"]["texts"]} texts, {r["corpus"]["sequences"]} sequences of at most
  {s["seq_len"]} tokens, {r["corpus"]["tokens"]} tokens.
- Vocab: `[PAD] [UNK] [CLS] [SEP] [MASK]`, then the {r["vocab_size"] - 5} tokens of Google's
  Chinese BERT vocab (`modelstore/assets/google_zh_vocab.txt`, Apache-2.0) seen at least
  {s["min_count"]} times in the corpus (the most frequent ones, in Google's order).
- MLM loss: {r["first_mlm_loss"]} over the first 50 steps, {r["final_mlm_loss"]} over the last 200.
- Time: {r["seconds"]:.0f} s on a shared 2-core machine ({s["threads"]} thread).
- Weights: `model.safetensors`, {r["weights_bytes"]} bytes, sha256 `{r["weights_sha256"]}`.
- Machine: {r["machine"]}.

| data file (train splits only) | sha256 |
|---|---|
{data}

Same command, same data and the same library versions give the same weights (seeded masks and
data order, one thread). The data sets carry no licence of their own (see ../shared/data's
PROVENANCE.md); the vocab is Apache-2.0.
"""
    (out / "PROVENANCE.md").write_text(text, encoding="utf-8")


def _argline(settings: Settings) -> str:
    default = Settings()
    return " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in settings.model_dump().items()
        if v != getattr(default, k)
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    for name, field in Settings.model_fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(field.default))
    args = parser.parse_args(argv)
    given = {k: getattr(args, k) for k in Settings.model_fields if getattr(args, k) is not None}
    settings = Settings(**given)
    record = pretrain(settings, args.data, args.out)
    write_provenance_md(args.out)
    print(f"final mlm loss {record['final_mlm_loss']}, {record['seconds']:.0f}s, "
          f"{record['weights_bytes'] / 1e6:.1f} MB -> {args.out}", flush=True)  # fmt: skip
    return 0
