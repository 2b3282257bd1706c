"""The inference engine: owns one model version, its tokenizer and the backend it runs on.

`prepare` (tokenize, sort by length, cut under the padded-token budget, pad; see
`worker/encoding.py`) and `run` (the backend's forward passes, probabilities, predictions)
are separate so that the next batch is tokenized in one thread while the current one runs in
the engine's own thread; `predict` does both. The backend is chosen at load
(`worker/engine_select.py`): by setting, or by measurement and agreement with fp32 torch. A
sub-batch that runs out of memory is split in halves.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelstore.integrity import verify_version
from modelstore.loading import load_config_and_tokenizer, load_model
from modelstore.onnx_export import (
    FILES,
    STATIC_INT8,
    OnnxExportError,
    ensure_onnx,
    ensure_static_int8,
    onnx_available,
    read_manifest,
    verified_path,
)
from modelstore.probes import ProbeSet, calibration_set, probe_set
from schemas.engine import EngineChoice
from worker import encoding
from worker.backends.base import REFERENCE, Backend, BackendUnavailable, InferenceFailed, Spec
from worker.backends.onnx_backend import OnnxBackend
from worker.backends.torch_backend import TorchBackend
from worker.encoding import BatchStats, Prepared, SubBatch
from worker.engine_select import (
    AcceptRule,
    PrecisionRefused,
    candidate_specs,
    choice_key,
    choose,
    key_parts,
    needs_measuring,
    read_cached,
    read_reference,
    write_cached,
    write_reference,
)

__all__ = [
    "BatchStats",
    "EngineThread",
    "InferenceEngine",
    "InferenceFailed",
    "PrecisionRefused",
    "Prediction",
    "Prepared",
]
log = logging.getLogger(__name__)
PROBE_ROWS = 16  # rows per probe batch, length-sorted


@dataclass(frozen=True)
class Prediction:
    label: str
    label_id: int
    score: float
    scores: list[tuple[str, int, float]]  # top-k (label, id, probability), best first
    truncated: bool = False


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class InferenceEngine:
    """A loaded classifier version ready to classify batches of texts."""

    model_dir: Path
    device: str = "auto"
    dtype: str = "auto"  # auto | fp32 | bf16 | fp16 | int8
    engine: str = "torch"  # torch | onnx | auto (measure, take the fastest that agrees)
    max_length: int = 512
    max_batch_tokens: int = 0  # padded tokens per forward pass; 0 = CPU 1024, CUDA 16384
    top_k: int = 5
    sort_by_length: bool = True
    expected_sha256: str | None = None
    min_dtype_agreement: float = 0.99  # without labelled probe texts
    max_accuracy_drop: float = 0.005  # with labelled probe texts (the trainer's dev labels)
    min_labelled_agreement: float = 0.97  # with them: the floor on top-1 agreement
    cache_choice: bool = True  # reuse / record the choice in the version's engine-choice.json
    last_stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        self.model_dir = Path(self.model_dir)
        self.torch_device = resolve_device(self.device)
        if not self.max_batch_tokens:
            self.max_batch_tokens = 16384 if self.torch_device.type == "cuda" else 1024
        # every file checked against the card, hashed once for this whole load
        self.verified = verify_version(self.model_dir, self.expected_sha256)
        self.weights_sha256 = self.verified.weights_sha256
        config, self.tokenizer = load_config_and_tokenizer(self.model_dir)
        self.max_length = min(self.max_length, int(config.max_position_embeddings))
        self.id2label = {int(k): v for k, v in config.id2label.items()}
        self.num_labels = len(self.id2label)
        self.problem_type = getattr(config, "problem_type", None)
        self._tokenizer_lock = threading.Lock()
        self._fp32: Any = None  # the HF model, loaded only when a torch backend needs it
        self.backend, self.choice = self._select()
        self._fp32 = None  # the backend keeps what it runs on
        reduced = Spec(self.choice.backend, self.choice.precision) != REFERENCE
        self.dtype_agreement = self.choice.agreement if reduced else None
        log.info("%s: engine %s", self.model_dir, self.choice.summary())
        for c in self.choice.candidates:
            log.info("  candidate %s %s: %s texts/s, agreement %s, accuracy %s (%s vs fp32), %s",
                     c.backend, c.precision, _n(c.texts_per_s), _n(c.agreement, 4),
                     _n(c.accuracy, 4), _n(c.accuracy_delta, 4),
                     c.reason or ("accepted" if c.accepted else "-"))  # fmt: skip

    @property
    def files_digest(self) -> str:
        """sha256 over the sha256 of every file of the version (weights, config, tokenizer,
        graphs): with `identity_fields`, this engine's cache identity."""
        return self.verified.digest

    def identity_fields(self) -> dict[str, Any]:
        """The settings that change this engine's answers (part of its cache identity)."""
        return {
            "top_k": self.top_k,
            "max_length": self.max_length,
            "backend": self.choice.backend,
            "precision": self.choice.precision,
            "device": self.torch_device.type,
        }

    # -- choosing the backend -----------------------------------------------------------
    def _select(self) -> tuple[Backend, EngineChoice]:
        specs, mode = candidate_specs(self.engine, self.dtype, self.torch_device, onnx_available())
        device = str(self.torch_device)
        if not needs_measuring(specs):
            return self._build(REFERENCE, copy=False), EngineChoice(
                backend="torch", precision="fp32", device=device, mode=mode
            )
        probes = probe_set(self.model_dir)
        key = choice_key(self._key_settings(specs, probes))
        cached = read_cached(self.model_dir, key) if self.cache_choice else None
        if cached is not None and Spec(cached.backend, cached.precision) in specs:
            try:
                backend = self._build(Spec(cached.backend, cached.precision), copy=False)
                return backend, cached.model_copy(update={"cached": True})
            except BackendUnavailable as exc:
                log.warning("%s: cached choice unusable (%s); measuring", self.model_dir, exc)
        ref_key = choice_key(self._reference_settings(probes))
        cached_ref = read_reference(self.model_dir, ref_key) if self.cache_choice else None
        chunks, gold = self._probe_batches(probes)
        backend, choice, reference = choose(
            specs,
            mode,
            lambda spec: self._build(spec, copy=True),
            chunks,
            self._probabilities,
            self.accept_rule(),
            cached_ref,
            gold,
        )
        if self.cache_choice and cached_ref is None:
            write_reference(self.model_dir, ref_key, reference)
        choice = choice.model_copy(
            update={"device": device, "probe_source": probes.source, "key": key}
        )
        if self.cache_choice:
            write_cached(self.model_dir, choice)
        return backend, choice

    def accept_rule(self) -> AcceptRule:
        return AcceptRule(
            self.min_dtype_agreement, self.max_accuracy_drop, self.min_labelled_agreement
        )

    def _key_settings(self, specs: list[Spec], probes: ProbeSet) -> dict[str, Any]:
        manifest = read_manifest(self.model_dir)
        digest = hashlib.sha256(
            repr((probes.texts, probes.pairs, probes.labels)).encode()
        ).hexdigest()
        return key_parts(
            weights=self.weights_sha256,
            # the exported graphs; static int8 is made from fp32 and the probe file at load
            graphs=[f.sha256 for f in manifest.files if f.precision in FILES] if manifest else None,
            specs=[str(s) for s in specs],
            rule=repr(self.accept_rule()),
            device=str(self.torch_device),
            max_length=self.max_length,
            probes=digest,
        )

    def _reference_settings(self, probes: ProbeSet) -> dict[str, Any]:
        """What fp32 torch's probe probabilities depend on."""
        return {
            "weights": self.weights_sha256,
            "probes": hashlib.sha256(repr((probes.texts, probes.pairs)).encode()).hexdigest(),
            "max_length": self.max_length,
            "device": self.torch_device.type,
            "torch": torch.__version__,
        }

    def _fp32_model(self) -> Any:
        if self._fp32 is None:
            self._fp32 = load_model(self.model_dir)
        return self._fp32

    def _build(self, spec: Spec, copy: bool) -> Backend:
        if spec.backend == "torch":
            return TorchBackend(self._fp32_model(), self.torch_device, spec.precision, copy)
        on_cpu = self._fp32 is not None and next(self._fp32.parameters()).device.type == "cpu"
        try:
            fp32 = self._fp32 if on_cpu else None
            manifest = ensure_onnx(self.model_dir, fp32, self.verified)
            if manifest is None:
                raise BackendUnavailable("onnx/onnxruntime not installed (the `onnx` extra)")
            if spec.precision == STATIC_INT8:
                manifest = ensure_static_int8(self.model_dir, self._calibration_feeds())
            graph = verified_path(self.model_dir, spec.precision, manifest, self.verified.sha256)
        except OnnxExportError as exc:
            raise BackendUnavailable(str(exc)) from exc
        return OnnxBackend(graph, spec.precision, torch.get_num_threads())

    def _calibration_feeds(self) -> list[dict[str, np.ndarray]]:
        """Padded batches of the calibration texts, as ONNX Runtime inputs."""
        probes = calibration_set(self.model_dir)
        prepared = encoding.prepare(
            self.tokenizer, probes.texts, probes.pairs, self.max_length, self.max_batch_tokens
        )
        return [
            {"input_ids": s.ids, "attention_mask": s.mask, "token_type_ids": s.types}
            for s in prepared.sub_batches
        ]

    def _probe_batches(
        self, probes: ProbeSet
    ) -> tuple[list[tuple[np.ndarray, np.ndarray, np.ndarray]], np.ndarray]:
        """Length-sorted probe batches, and the gold label ids in the same order (-1: none)."""
        prepared = encoding.prepare(
            self.tokenizer, probes.texts, probes.pairs, self.max_length, 1 << 30, PROBE_ROWS
        )
        label2id = {name: i for i, name in self.id2label.items()}
        ids = np.array([-1 if i is None else i for i in probes.label_ids(label2id)], np.int64)
        chunks = [(s.ids, s.types, s.mask) for s in prepared.sub_batches]
        order = np.concatenate([np.asarray(s.rows, np.int64) for s in prepared.sub_batches])
        return chunks, ids[order]

    # -- classification ------------------------------------------------------------------
    def warm_up(self) -> None:
        """Run one small batch so the first real batch pays no lazy-initialisation cost."""
        self.predict(["预热文本", "warm up"], [None, "第二句"])

    def prepare(self, texts: Sequence[str], pairs: Sequence[str | None] | None = None) -> Prepared:
        """Tokenize, sort, cut and pad a batch (thread-safe; no model involved)."""
        started = time.perf_counter()
        with self._tokenizer_lock:  # a fast tokenizer must not be used by two threads at once
            prepared = encoding.prepare(
                self.tokenizer, texts, pairs, self.max_length, self.max_batch_tokens,
                sort=self.sort_by_length,
            )  # fmt: skip
        prepared.stats.prepare_seconds = time.perf_counter() - started
        return prepared

    def run(self, prepared: Prepared) -> list[Prediction]:
        """Classify a prepared batch; results in input order."""
        started = time.perf_counter()
        probs = np.zeros((prepared.size, self.num_labels), dtype=np.float32)
        for sub in prepared.sub_batches:
            self._run_sub_batch(sub, probs)
        prepared.stats.seconds = time.perf_counter() - started
        self.last_stats = prepared.stats
        return [self._prediction(probs[i], t) for i, t in enumerate(prepared.truncated)]

    def predict(
        self, texts: Sequence[str], pairs: Sequence[str | None] | None = None
    ) -> list[Prediction]:
        """Classify texts (and optional text pairs); results in input order."""
        return self.run(self.prepare(texts, pairs))

    def _run_sub_batch(self, sub: SubBatch, out: np.ndarray) -> None:
        try:
            logits = self.backend.forward(sub.ids, sub.types, sub.mask)
        except Exception as exc:
            if not self.backend.is_oom(exc):
                raise
            if len(sub.rows) == 1:
                raise InferenceFailed(f"out of memory on a single input: {exc}") from exc
            log.warning("out of memory on %d rows; retrying in halves", len(sub.rows))
            for half in sub.split():
                self._run_sub_batch(half, out)
            return
        out[sub.rows] = self._probabilities(logits)

    def _probabilities(self, logits: np.ndarray) -> np.ndarray:
        """As transformers' text-classification pipeline: sigmoid for one label or
        multi-label problems, softmax otherwise."""
        logits = logits.astype(np.float32, copy=False)
        probabilities: np.ndarray
        if self.num_labels == 1 or self.problem_type == "multi_label_classification":
            probabilities = 1.0 / (1.0 + np.exp(-logits))
        else:
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        return probabilities

    def _prediction(self, probs: np.ndarray, truncated: bool) -> Prediction:
        k = min(self.top_k, probs.shape[-1])
        top = np.argsort(-probs, kind="stable")[:k]
        scores = [(self.id2label[int(i)], int(i), float(probs[i])) for i in top]
        label, label_id, score = scores[0]
        return Prediction(label, label_id, score, scores, truncated)

    def release(self) -> None:
        """Drop the model's memory (called after a swap away from this version)."""
        self.backend.release()


def _n(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class EngineThread:
    """Per model: one thread runs the engine, another prepares the next batch meanwhile, so
    the event loop never blocks on tokenization or the model."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"infer-{name}")
        self._prepare = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"prepare-{name}")

    async def run(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def prepare(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._prepare, fn, *args)

    def shutdown(self) -> None:
        self._prepare.shutdown(wait=True, cancel_futures=False)
        self._executor.shutdown(wait=True, cancel_futures=False)
