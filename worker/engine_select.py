"""Which backend a version runs on: by setting, or (`engine=auto`) by measurement and agreement.

Every candidate runs the same length-sorted probe batches as fp32 torch (the reference) and is
judged by `AcceptRule`: when the probe texts carry the trainer's dev labels, by its accuracy
change against fp32 (a drop of at most `max_accuracy_drop`) and a floor on top-1 agreement
(`min_labelled_agreement`); without labels, by agreement alone (`min_agreement`). `auto` takes
the fastest accepted one (timed on a few probe batches spread over the length range). The
reference probabilities are kept in the version directory (`probe-reference.json`), so only
the first load of a version pays for them. The choice is cached in the version directory
(`engine-choice.json`) under a key of weights, graphs, settings, rule, probe texts and their
labels, and machine, so a later load with the same key skips the measurement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modelstore.onnx_export import STATIC_INT8
from schemas.engine import CandidateReport, EngineChoice
from worker.backends.base import REFERENCE, Backend, BackendUnavailable, InferenceFailed, Spec

log = logging.getLogger(__name__)

CHOICE_FILE = "engine-choice.json"
REFERENCE_FILE = "probe-reference.json"  # fp32 torch probabilities on the probe texts
KEEP_CHOICES = 8
TIMED_BATCHES = 4  # probe batches each candidate is timed on
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # padded ids, types, mask
ONNX_PRECISIONS = ("fp32", "int8", STATIC_INT8)
TORCH_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
MIN_LABELLED = 64  # fewer labelled probe texts than this: the accuracy change is not judged


@dataclass(frozen=True)
class AcceptRule:
    """When a backend may stand in for fp32 torch.

    With at least MIN_LABELLED labelled probe texts: accuracy (on them) at most
    `max_accuracy_drop` below fp32's and top-1 agreement at least `min_labelled_agreement`.
    Without: top-1 agreement at least `min_agreement`.
    """

    min_agreement: float = 0.99
    max_accuracy_drop: float = 0.005
    min_labelled_agreement: float = 0.97

    def refusal(self, agreement: float, accuracy_delta: float | None) -> str | None:
        """Why a candidate is refused, or None when it is accepted."""
        if accuracy_delta is None:
            if agreement < self.min_agreement:
                return f"top-1 agreement {agreement:.3f} < {self.min_agreement}"
            return None
        if -accuracy_delta > self.max_accuracy_drop + 1e-9:
            return f"accuracy drop {-accuracy_delta:.3f} > {self.max_accuracy_drop}"
        if agreement < self.min_labelled_agreement:
            return f"top-1 agreement {agreement:.3f} < {self.min_labelled_agreement}"
        return None

    def describe(self, labelled: bool) -> str:
        if labelled:
            return (
                f"accuracy drop <= {self.max_accuracy_drop:g} and top-1 agreement >= "
                f"{self.min_labelled_agreement:g} on labelled probe texts"
            )
        return f"top-1 agreement >= {self.min_agreement:g} (no labelled probe texts)"


class PrecisionRefused(InferenceFailed):
    """No candidate (or not the one asked for) agrees with fp32 on enough probe texts."""


def candidate_specs(
    engine: str, dtype: str, device: torch.device, onnx_ok: bool
) -> tuple[list[Spec], str]:
    """The specs to consider and the mode: `auto` measures several, `explicit` checks one."""
    if device.type == "cuda":  # keep torch in bf16 (fp16 without bf16 support) on CUDA
        if engine == "onnx":
            raise BackendUnavailable("the onnx engine runs on CPU here; use torch on CUDA")
        reduced = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        mode = "auto" if engine == "auto" else "explicit"
        return [Spec("torch", reduced if dtype == "auto" else dtype)], mode
    if engine == "torch":
        if dtype not in ("auto", *TORCH_PRECISIONS):
            raise BackendUnavailable(f"the torch engine has no {dtype}; it is an onnx precision")
        return [Spec("torch", "fp32" if dtype == "auto" else dtype)], "explicit"
    if engine == "onnx":
        if not onnx_ok:
            raise BackendUnavailable(
                "onnx engine: onnx/onnxruntime not installed (the `onnx` extra)"
            )
        precision = "fp32" if dtype == "auto" else dtype
        if precision not in ONNX_PRECISIONS:
            raise BackendUnavailable(
                f"the onnx engine has {', '.join(ONNX_PRECISIONS)}, not {precision}"
            )
        return [Spec("onnx", precision)], "explicit"
    precisions = ["fp32", *(["bf16"] if cpu_has_bf16() else []), "int8"]
    precisions = precisions if dtype == "auto" else [dtype]
    specs = [Spec("torch", p) for p in precisions if p in TORCH_PRECISIONS]
    if onnx_ok:
        precisions += [STATIC_INT8] if dtype == "auto" else []
        specs += [Spec("onnx", p) for p in precisions if p in ONNX_PRECISIONS]
    return specs, "auto"


def cpu_has_bf16() -> bool:
    """The CPU computes bf16 natively (avx512_bf16 or AMX): only then is torch bf16 a
    candidate of `auto` on CPU (elsewhere it is emulated, slower than fp32; still settable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def needs_measuring(specs: Sequence[Spec]) -> bool:
    return list(specs) != [REFERENCE]


# -- the cache -------------------------------------------------------------------------
def choice_key(parts: dict[str, Any]) -> str:
    """A key over everything the measurement depends on (see `key_parts`)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def key_parts(**settings: Any) -> dict[str, Any]:
    """Settings plus the machine and library versions the speeds were measured on."""
    try:
        import onnxruntime

        ort_version = onnxruntime.__version__
    except ImportError:
        ort_version = None
    return {
        **settings,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onnxruntime": ort_version,
    }


def read_cached(version_dir: Path, key: str) -> EngineChoice | None:
    path = version_dir / CHOICE_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        found = entries.get(key)
        return EngineChoice.model_validate(found) if found else None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); measuring again", path, exc)
        return None


def write_cached(version_dir: Path, choice: EngineChoice) -> None:
    """Add `choice` under its key (keeping the last few); a read-only store only logs."""
    path = version_dir / CHOICE_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        entries.pop(choice.key, None)
        entries[choice.key] = choice.model_dump(mode="json")
        entries = dict(list(entries.items())[-KEEP_CHOICES:])
        tmp = path.with_name(f".tmp-{CHOICE_FILE}-{os.getpid()}")
        tmp.write_text(json.dumps(entries, indent=2, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        log.warning("%s: choice not cached (%s)", path, exc)


# -- measuring -------------------------------------------------------------------------
def spread(chunks: Sequence[Chunk], count: int) -> list[Chunk]:
    """`count` probe batches spread over the length range (they are length-sorted)."""
    step = max(1, len(chunks) // count)
    return list(chunks[::step][:count])


def time_probes(backend: Backend, chunks: Sequence[Chunk]) -> float:
    """texts/s on a few probe batches after one warm-up batch."""
    timed = spread(chunks, TIMED_BATCHES)
    backend.forward(*timed[0])
    started = time.perf_counter()
    for chunk in timed:
        backend.forward(*chunk)
    return sum(len(c[0]) for c in timed) / max(time.perf_counter() - started, 1e-9)


def logits_of(backend: Backend, chunks: Sequence[Chunk]) -> np.ndarray:
    return np.concatenate([backend.forward(*chunk) for chunk in chunks])


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, max absolute probability difference)."""
    agree = float((reference.argmax(-1) == candidate.argmax(-1)).mean())
    return agree, float(np.abs(reference - candidate).max())


def accuracy(probs: np.ndarray, gold: np.ndarray | None) -> float | None:
    """Top-1 accuracy on the labelled rows (`gold` -1: unlabelled); None below MIN_LABELLED."""
    if gold is None:
        return None
    known = gold >= 0
    if int(known.sum()) < MIN_LABELLED:
        return None
    return float((probs[known].argmax(-1) == gold[known]).mean())


def choose(
    specs: Sequence[Spec],
    mode: str,
    build: Callable[[Spec], Backend],
    chunks: Sequence[Chunk],
    probabilities: Callable[[np.ndarray], np.ndarray],
    rule: AcceptRule | float,
    reference_probs: np.ndarray | None = None,
    gold: np.ndarray | None = None,
) -> tuple[Backend, EngineChoice, np.ndarray]:
    """Check each spec against fp32 torch (agreement and, with `gold` label ids in probe-batch
    order, accuracy change on every probe text; speed on a few probe batches); keep the
    fastest accepted one, release the rest. Returns the reference probabilities too (computed
    here unless given), for the caller to keep."""
    if not isinstance(rule, AcceptRule):  # a bare number: the agreement-only floor
        rule = AcceptRule(min_agreement=float(rule))
    started = time.perf_counter()
    reference: Backend | None = None
    if reference_probs is None or REFERENCE in specs:
        reference = build(REFERENCE)
    if reference_probs is None:
        assert reference is not None
        reference_probs = probabilities(logits_of(reference, chunks))
    ref_speed = time_probes(reference, chunks) if reference is not None else None
    ref_accuracy = accuracy(reference_probs, gold)
    labelled = 0 if ref_accuracy is None or gold is None else int((gold >= 0).sum())
    reports: list[CandidateReport] = []
    best: tuple[Backend, CandidateReport] | None = None
    for spec in specs:
        report = CandidateReport(backend=spec.backend, precision=spec.precision)
        reports.append(report)
        if spec == REFERENCE:
            assert reference is not None
            backend: Backend = reference
            report.texts_per_s, report.agreement, report.max_score_diff = ref_speed, 1.0, 0.0
            report.accuracy = ref_accuracy
            report.accuracy_delta = None if ref_accuracy is None else 0.0
        else:
            try:
                backend = build(spec)
                report.texts_per_s = time_probes(backend, chunks)
                logits = logits_of(backend, chunks)
            except (BackendUnavailable, RuntimeError) as exc:
                if mode == "explicit":
                    raise
                report.reason = f"unavailable: {exc}"
                log.warning("engine candidate %s unavailable: %s", spec, exc)
                continue
            probs = probabilities(logits)
            agreement, diff = compare(reference_probs, probs)
            report.agreement, report.max_score_diff = agreement, diff
            report.accuracy = accuracy(probs, gold)
            if report.accuracy is not None and ref_accuracy is not None:
                report.accuracy_delta = report.accuracy - ref_accuracy
        report.reason = rule.refusal(report.agreement or 0.0, report.accuracy_delta)
        report.accepted = report.reason is None
        speed = report.texts_per_s or 0.0
        if report.accepted and (best is None or speed > (best[1].texts_per_s or 0.0)):
            if best is not None and best[0] is not reference:
                best[0].release()
            best = (backend, report)
        elif backend is not reference:
            backend.release()
    if best is None:
        if reference is not None:
            reference.release()
        raise PrecisionRefused(
            "no backend agrees with fp32 on the probe texts: "
            + "; ".join(f"{r.backend} {r.precision}: {r.reason}" for r in reports)
        )
    if reference is not None and best[0] is not reference:
        reference.release()
    chosen = best[1]
    candidates = [CandidateReport(**r.model_dump()) for r in reports]
    if REFERENCE not in specs and ref_speed is not None:  # measured only as the reference
        candidates.insert(
            0,
            CandidateReport(
                backend="torch", precision="fp32", texts_per_s=ref_speed, agreement=1.0,
                max_score_diff=0.0, accuracy=ref_accuracy,
                accuracy_delta=None if ref_accuracy is None else 0.0,
                accepted=False, reason="reference only",
            ),
        )  # fmt: skip
    choice = EngineChoice(
        backend=chosen.backend,
        precision=chosen.precision,
        device="",
        mode=mode,
        agreement=chosen.agreement,
        max_score_diff=chosen.max_score_diff,
        accuracy=chosen.accuracy,
        accuracy_delta=chosen.accuracy_delta,
        labelled_probes=labelled,
        rule=rule.describe(labelled > 0),
        texts_per_s=chosen.texts_per_s,
        probe_texts=sum(len(c[0]) for c in chunks),
        candidates=candidates,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        measure_seconds=round(time.perf_counter() - started, 2),
    )
    return best[0], choice, reference_probs


def read_reference(version_dir: Path, key: str) -> np.ndarray | None:
    """fp32 torch probabilities on the probe texts, kept from an earlier load (JSON)."""
    path = version_dir / REFERENCE_FILE
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get(key) if path.is_file() else None
        return np.asarray(found, dtype=np.float32) if found else None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); computing the reference again", path, exc)
        return None


def write_reference(version_dir: Path, key: str, probs: np.ndarray) -> None:
    path = version_dir / REFERENCE_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        entries[key] = np.round(probs.astype(np.float64), 7).tolist()
        entries = dict(list(entries.items())[-KEEP_CHOICES:])
        tmp = path.with_name(f".tmp-{REFERENCE_FILE}-{os.getpid()}")
        tmp.write_text(json.dumps(entries), encoding="utf-8")
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        log.warning("%s: reference not kept (%s)", path, exc)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
