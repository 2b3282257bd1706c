"""Shared plumbing: the benchmark's model store, machine/version facts, scenario results."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
LABELS = "chinanews"


@dataclass
class Result:
    """One row of the results table: a scenario (or a variant of it) and its figures."""

    scenario: str
    variant: str
    preset: str
    texts_per_s: float | None = None
    tokens_per_s: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    padding_fraction: float | None = None
    count: int = 0
    seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def bench_store_dir() -> Path:
    """Where benchmark models live between runs (gitignored)."""
    state = Path(os.environ.get("STREAMCLF_STATE_DIR", REPO_ROOT / ".streamclf"))
    return Path(os.environ.get("STREAMCLF_BENCH_STORE", state / "bench-models"))


# The roberta-base rows run on the trained stand-in (benchmarks/standin.py) once it is cached;
# this preset name keeps the randomly initialised 12-layer model (an informational row).
RANDOM_INIT = "roberta-base-random"
STANDIN_MODEL = "bench-standin"


def use_standin(preset: str) -> bool:
    """roberta-base runs on the stand-in when it is trained (unless STREAMCLF_BENCH_RANDOM=1)."""
    if preset != "roberta-base" or os.environ.get("STREAMCLF_BENCH_RANDOM") == "1":
        return False
    from benchmarks.standin import find_standin

    return find_standin() is not None


def model_name(preset: str) -> str:
    if use_standin(preset):
        return STANDIN_MODEL
    return "bench-roberta-base" if preset == RANDOM_INIT else f"bench-{preset}"


def model_label(preset: str) -> str:
    """What a row of this preset ran on, in words."""
    if use_standin(preset):
        from benchmarks.standin import StandinSettings, describe

        return f"trained stand-in: {describe(StandinSettings())}"
    if preset in ("roberta-base", RANDOM_INIT):
        return "roberta-base preset, randomly initialised (12 layers)"
    return f"{preset} preset, randomly initialised"


def ensure_model(preset: str, store_dir: Path | None = None) -> Path:
    """The benchmark model of this preset: the trained stand-in for roberta-base once cached
    (copied into the bench store), else randomly initialised (chinanews labels), created once
    into the bench store; never downloaded."""
    from modelstore.labels import PRESET_LABELS
    from modelstore.presets import init_model
    from modelstore.store import ModelStore

    store = ModelStore(store_dir or bench_store_dir())
    name = model_name(preset)
    if name == STANDIN_MODEL:
        return _standin_copy(store)
    version = store.latest(name)
    if version is None:
        base = "roberta-base" if preset == RANDOM_INIT else preset
        version = init_model(store, name, PRESET_LABELS[LABELS], base, seed=0)
    return store.version_dir(name, version)


def _standin_copy(store: Any) -> Path:
    """The cached stand-in as a version of `bench-standin` in the bench store (the worker
    reads that store); copied once per stand-in (same weights: same version)."""
    from benchmarks.standin import find_standin
    from modelstore.store import ModelStore
    from schemas.card import ModelCard

    source = find_standin()
    assert source is not None
    card = ModelCard.model_validate_json((source / "card.json").read_text(encoding="utf-8"))
    for version in reversed(store.versions(STANDIN_MODEL)):
        if store.card(STANDIN_MODEL, version).weights_sha256 == card.weights_sha256:
            return store.version_dir(STANDIN_MODEL, version)
    skip = {"card.json", "engine-choice.json", "probe-reference.json"}

    def write(tmp: Path) -> ModelCard:
        for item in source.iterdir():
            if item.name in skip:
                continue
            target = tmp / item.name
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, target)
        return card

    copier = ModelStore(store.root, export_onnx=False)  # the graphs come with it
    version = copier.add_version(STANDIN_MODEL, write)
    if copier.active(STANDIN_MODEL) != version:
        copier.set_active(STANDIN_MODEL, version)
    return store.version_dir(STANDIN_MODEL, version)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gb"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
    return info


def versions() -> dict[str, Any]:
    import aiokafka
    import tokenizers
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "aiokafka": aiokafka.__version__,
        "streamclf_commit": _git_commit(),
    }


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def sync(device: str) -> None:
    """Wait for queued GPU work so timings are honest."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
