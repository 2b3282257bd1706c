"""Which backend a version runs on: by setting, or (`engine=auto`) by measurement and agreement.

Every candidate runs the same length-sorted probe batches as fp32 torch (the reference); a
candidate is accepted when its top-1 agreement with the reference is at least
`min_agreement`, and `auto` takes the fastest accepted one. The choice is cached in the version
directory (`engine-choice.json`) under a key of weights, graphs, settings, probe texts and
machine, so a later load with the same key skips the measurement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from schemas.engine import CandidateReport, EngineChoice
from worker.backends.base import REFERENCE, Backend, BackendUnavailable, InferenceFailed, Spec

log = logging.getLogger(__name__)

CHOICE_FILE = "engine-choice.json"
KEEP_CHOICES = 8
Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]  # padded ids, types, mask


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
        return [Spec("torch", "fp32" if dtype == "auto" else dtype)], "explicit"
    if engine == "onnx":
        if not onnx_ok:
            raise BackendUnavailable(
                "onnx engine: onnx/onnxruntime not installed (the `onnx` extra)"
            )
        precision = "fp32" if dtype == "auto" else dtype
        if precision not in ("fp32", "int8"):
            raise BackendUnavailable(f"the onnx engine has fp32 and int8, not {precision}")
        return [Spec("onnx", precision)], "explicit"
    precisions = ["fp32", "bf16", "int8"] if dtype == "auto" else [dtype]
    specs = [Spec("torch", p) for p in precisions]
    if onnx_ok:
        specs += [Spec("onnx", p) for p in precisions if p in ("fp32", "int8")]
    return specs, "auto"


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
def run_probes(backend: Backend, chunks: Sequence[Chunk]) -> tuple[np.ndarray, float]:
    """Logits of every probe row (in chunk order) and texts/s after one warm-up chunk."""
    backend.forward(*chunks[0])
    started = time.perf_counter()
    logits = [backend.forward(*chunk) for chunk in chunks]
    seconds = time.perf_counter() - started
    rows = sum(len(c[0]) for c in chunks)
    return np.concatenate(logits), rows / max(seconds, 1e-9)


def compare(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    """(top-1 agreement, max absolute probability difference)."""
    agree = float((reference.argmax(-1) == candidate.argmax(-1)).mean())
    return agree, float(np.abs(reference - candidate).max())


def choose(
    specs: Sequence[Spec],
    mode: str,
    build: Callable[[Spec], Backend],
    chunks: Sequence[Chunk],
    probabilities: Callable[[np.ndarray], np.ndarray],
    min_agreement: float,
) -> tuple[Backend, EngineChoice]:
    """Measure each spec against fp32 torch; keep the fastest accepted one, release the rest."""
    started = time.perf_counter()
    reference = build(REFERENCE)
    ref_logits, ref_speed = run_probes(reference, chunks)
    ref_probs = probabilities(ref_logits)
    reports: list[CandidateReport] = []
    best: tuple[Backend, CandidateReport] | None = None
    for spec in specs:
        report = CandidateReport(backend=spec.backend, precision=spec.precision)
        reports.append(report)
        if spec == REFERENCE:
            backend: Backend = reference
            report.texts_per_s, report.agreement, report.max_score_diff = ref_speed, 1.0, 0.0
        else:
            try:
                backend = build(spec)
                logits, report.texts_per_s = run_probes(backend, chunks)
            except (BackendUnavailable, RuntimeError) as exc:
                if mode == "explicit":
                    raise
                report.reason = f"unavailable: {exc}"
                log.warning("engine candidate %s unavailable: %s", spec, exc)
                continue
            report.agreement, report.max_score_diff = compare(ref_probs, probabilities(logits))
        report.accepted = report.agreement >= min_agreement
        if not report.accepted:
            report.reason = f"top-1 agreement {report.agreement:.3f} < {min_agreement}"
        if report.accepted and (best is None or report.texts_per_s > best[1].texts_per_s):
            if best is not None and best[0] is not reference:
                best[0].release()
            best = (backend, report)
        elif backend is not reference:
            backend.release()
    if best is None:
        raise PrecisionRefused(
            "no backend agrees with fp32 on the probe texts: "
            + "; ".join(f"{r.backend} {r.precision}: {r.reason}" for r in reports)
        )
    if best[0] is not reference:
        reference.release()
    chosen = best[1]
    candidates = [CandidateReport(**r.model_dump()) for r in reports]
    if REFERENCE not in specs:  # measured only as the reference: say so
        candidates.insert(
            0,
            CandidateReport(
                backend="torch", precision="fp32", texts_per_s=ref_speed, agreement=1.0,
                max_score_diff=0.0, accepted=False, reason="reference only",
            ),
        )  # fmt: skip
    choice = EngineChoice(
        backend=chosen.backend,
        precision=chosen.precision,
        device="",
        mode=mode,
        agreement=chosen.agreement,
        max_score_diff=chosen.max_score_diff,
        texts_per_s=chosen.texts_per_s,
        probe_texts=sum(len(c[0]) for c in chunks),
        candidates=candidates,
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
        measure_seconds=round(time.perf_counter() - started, 2),
    )
    return best[0], choice


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
