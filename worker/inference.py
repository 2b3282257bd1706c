"""The inference engine: owns one model version, its device and dtype; classifies batches.

`predict` is synchronous and meant to run in the engine's own thread (see `run_in_thread`):
it tokenizes a batch without padding, sorts by length, cuts it into sub-batches under a
token budget (`max_len_in_sub_batch * rows <= max_batch_tokens`), pads each one, and runs
them under `torch.inference_mode()`. A sub-batch that runs out of memory is split in halves.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from modelstore.loading import load_classifier

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Prediction:
    label: str
    label_id: int
    score: float
    scores: list[tuple[str, int, float]]  # top-k (label, id, probability), best first
    truncated: bool = False


@dataclass
class BatchStats:
    rows: int = 0
    sub_batches: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    seconds: float = 0.0

    @property
    def padding_fraction(self) -> float:
        return 1.0 - self.real_tokens / self.padded_tokens if self.padded_tokens else 0.0


class InferenceFailed(RuntimeError):
    """One input could not be classified even alone (e.g. out of memory)."""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """fp32 on CPU unless asked; bf16 on CUDA when supported, else fp16."""
    if dtype != "auto":
        return DTYPES[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


@dataclass
class InferenceEngine:
    """A loaded classifier version ready to classify batches of texts."""

    model_dir: Path
    device: str = "auto"
    dtype: str = "auto"
    max_length: int = 512
    max_batch_tokens: int = (
        0  # padded tokens per forward pass; 0 = by device (CPU 1024, CUDA 16384)
    )
    top_k: int = 5
    sort_by_length: bool = True
    expected_sha256: str | None = None
    min_dtype_agreement: float = 0.99
    last_stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self.torch_device = resolve_device(self.device)
        self.torch_dtype = resolve_dtype(self.dtype, self.torch_device)
        if not self.max_batch_tokens:
            self.max_batch_tokens = 16384 if self.torch_device.type == "cuda" else 1024
        model, self.tokenizer = load_classifier(Path(self.model_dir), self.expected_sha256)
        self.max_length = min(self.max_length, int(model.config.max_position_embeddings))
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.num_labels = len(self.id2label)
        self.problem_type = getattr(model.config, "problem_type", None)
        self.model = model.to(self.torch_device)
        self.dtype_agreement: float | None = None
        if self.torch_dtype != torch.float32:
            self._cast_with_agreement_check()

    # -- precision ---------------------------------------------------------------------
    def _cast_with_agreement_check(self) -> None:
        """Reduced precision is opt-in and checked: top-1 must agree with fp32 on probes."""
        probes = [
            "北京上个月召开了两会",
            "这家酒店的服务非常好，房间干净，下次还会再来。",
            "国足再次输球，球迷失望透顶",
            "央行宣布下调存款准备金率0.5个百分点",
            "质量太差了，用了两天就坏了，不推荐购买",
            "新电影票房突破十亿元",
            "台风即将登陆，沿海地区做好防范",
            "这本书写得很一般，没什么新意",
        ]
        reference = self._logits(probes, [None] * len(probes))
        self.model = self.model.to(self.torch_dtype)
        reduced = self._logits(probes, [None] * len(probes))
        agree = (reference.argmax(-1) == reduced.argmax(-1)).float().mean().item()
        self.dtype_agreement = agree
        if agree < self.min_dtype_agreement:
            raise InferenceFailed(
                f"{self.model_dir}: {self.torch_dtype} top-1 agreement with fp32 is {agree:.3f} "
                f"< {self.min_dtype_agreement}; refusing reduced precision"
            )
        log.info(
            "%s: %s agrees with fp32 on %.1f%% of probes",
            self.model_dir,
            self.torch_dtype,
            agree * 100,
        )

    # -- classification ----------------------------------------------------------------
    def warm_up(self) -> None:
        """Run one small batch so the first real batch pays no lazy-initialisation cost."""
        self.predict(["预热文本", "warm up"], [None, "第二句"])

    def predict(
        self, texts: Sequence[str], pairs: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Classify texts (and optional text pairs); results in input order."""
        started = time.perf_counter()
        pairs = list(pairs) if pairs is not None else [None] * len(texts)
        encoded = self._encode(texts, pairs)
        order = list(range(len(texts)))
        if self.sort_by_length:
            order.sort(key=lambda i: len(encoded[i]["input_ids"]))
        stats = BatchStats(rows=len(texts))
        probs: list[torch.Tensor | None] = [None] * len(texts)
        for chunk in self._chunks(order, encoded):
            for index, row in zip(chunk, self._run_chunk(chunk, encoded, stats), strict=True):
                probs[index] = row
        stats.seconds = time.perf_counter() - started
        self.last_stats = stats
        return [self._prediction(p, encoded[i]["truncated"]) for i, p in enumerate(probs)]

    def _encode(self, texts: Sequence[str], pairs: list[str | None]) -> list[dict[str, Any]]:
        """Tokenize without padding. One tokenizer call per kind (single / pair); only rows
        longer than `max_length` are tokenized again with truncation (and flagged)."""
        rows: list[dict[str, Any] | None] = [None] * len(texts)
        singles = [i for i, p in enumerate(pairs) if p is None]
        doubles = [i for i, p in enumerate(pairs) if p is not None]
        for group, with_pair in ((singles, False), (doubles, True)):
            if not group:
                continue
            a = [texts[i] for i in group]
            b = [pairs[i] for i in group] if with_pair else None
            enc = self.tokenizer(a, b, truncation=False, return_attention_mask=False)
            for j, i in enumerate(group):
                ids = enc["input_ids"][j]
                types = enc["token_type_ids"][j] if "token_type_ids" in enc else [0] * len(ids)
                truncated = len(ids) > self.max_length
                if truncated:
                    one = self.tokenizer(
                        a[j],
                        b[j] if b else None,
                        truncation="longest_first",
                        max_length=self.max_length,
                        return_attention_mask=False,
                    )
                    ids = one["input_ids"]
                    types = one.get("token_type_ids", [0] * len(ids))
                rows[i] = {"input_ids": ids, "token_type_ids": types, "truncated": truncated}
        return rows  # type: ignore[return-value]

    def _chunks(self, order: list[int], encoded: list[dict[str, Any]]) -> list[list[int]]:
        """Cut the (sorted) order into sub-batches whose padded size fits the token budget."""
        chunks: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order:
            length = len(encoded[index]["input_ids"])
            new_longest = max(longest, length)
            if current and new_longest * (len(current) + 1) > self.max_batch_tokens:
                chunks.append(current)
                current, new_longest = [], length
            current.append(index)
            longest = new_longest
        if current:
            chunks.append(current)
        return chunks

    def _run_chunk(
        self, chunk: list[int], encoded: list[dict[str, Any]], stats: BatchStats
    ) -> list[torch.Tensor]:
        try:
            return list(self._forward(chunk, encoded, stats))
        except Exception as exc:
            if not _is_oom(exc):
                raise
            if self.torch_device.type == "cuda":
                torch.cuda.empty_cache()
            if len(chunk) == 1:
                raise InferenceFailed(f"out of memory on a single input: {exc}") from exc
            half = len(chunk) // 2
            log.warning("out of memory on %d rows; retrying in halves", len(chunk))
            return self._run_chunk(chunk[:half], encoded, stats) + self._run_chunk(
                chunk[half:], encoded, stats
            )

    def _forward(
        self, chunk: list[int], encoded: list[dict[str, Any]], stats: BatchStats
    ) -> torch.Tensor:
        width = max(len(encoded[i]["input_ids"]) for i in chunk)
        ids = torch.full((len(chunk), width), self.tokenizer.pad_token_id or 0, dtype=torch.long)
        types = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, index in enumerate(chunk):
            seq = encoded[index]["input_ids"]
            ids[row, : len(seq)] = torch.tensor(seq)
            types[row, : len(seq)] = torch.tensor(encoded[index]["token_type_ids"])
            mask[row, : len(seq)] = 1
            stats.real_tokens += len(seq)
        stats.padded_tokens += len(chunk) * width
        stats.sub_batches += 1
        logits = self._logits_tensors(ids, types, mask)
        return self._probabilities(logits).cpu()

    def _logits(self, texts: list[str], pairs: list[str | None]) -> torch.Tensor:
        encoded = self._encode(texts, pairs)
        stats = BatchStats()
        rows = []
        for i in range(len(texts)):
            seq = encoded[i]
            ids = torch.tensor([seq["input_ids"]])
            types = torch.tensor([seq["token_type_ids"]])
            rows.append(self._logits_tensors(ids, types, torch.ones_like(ids)).float())
            stats.rows += 1
        return torch.cat(rows)

    def _logits_tensors(
        self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        dev = self.torch_device
        with torch.inference_mode():
            out = self.model(
                input_ids=ids.to(dev, non_blocking=True),
                token_type_ids=types.to(dev, non_blocking=True),
                attention_mask=mask.to(dev, non_blocking=True),
            )
        return out.logits.float()

    def _probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """As transformers' text-classification pipeline: sigmoid for one label or
        multi-label problems, softmax otherwise."""
        if self.num_labels == 1 or self.problem_type == "multi_label_classification":
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=-1)

    def _prediction(self, probs: torch.Tensor | None, truncated: bool) -> Prediction:
        assert probs is not None
        k = min(self.top_k, probs.shape[-1])
        values, indices = probs.topk(k)
        scores = [
            (self.id2label[int(i)], int(i), float(v))
            for v, i in zip(values.tolist(), indices.tolist(), strict=True)
        ]
        label, label_id, score = scores[0]
        return Prediction(label, label_id, score, scores, truncated)

    def release(self) -> None:
        """Drop the model's memory (called after a swap away from this version)."""
        self.model = None  # type: ignore[assignment]
        if self.torch_device.type == "cuda":
            torch.cuda.empty_cache()


class EngineThread:
    """One thread per engine owner: the event loop never blocks on the model."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._lock = threading.Lock()

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
