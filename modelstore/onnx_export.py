"""ONNX graphs of a stored version: exported here from its safetensors weights, never downloaded.

`<version>/onnx/` holds `model.onnx` (fp32), `model.int8.onnx` (ONNX Runtime dynamic int8) and
`manifest.json` (sha256 of each file and of the weights they came from); a worker adds
`model.int8-static.onnx` (static int8, calibrated on probe texts: `ensure_static_int8`) when
`auto` considers it. Graphs are written
when a version is created, imported or promoted, and again by a worker that finds them missing
or not matching the manifest. Nothing is unpickled: the graphs are protobuf files checked by
sha256 before a session opens them. Needs the optional `onnx` extra (onnx + onnxruntime).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelstore.exceptions import ModelStoreError
from modelstore.files import ONNX_DIR, WEIGHTS_FILE, file_sha256, utc_now
from schemas.engine import OnnxFile, OnnxManifest

if TYPE_CHECKING:
    from modelstore.integrity import VerifiedVersion

log = logging.getLogger(__name__)

Digest = Callable[[Path], str]  # a file's sha256 (`VerifiedVersion.sha256` reuses a load's)
MANIFEST = "manifest.json"
FILES = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
STATIC_INT8 = "int8-static"  # QDQ, per-channel weights, activations calibrated on probe texts
STATIC_FILE = "model.int8-static.onnx"
# Derived at first use, beside the version's files rather than among them (a runtime cache like
# engine-choice.json, outside the card): the graph and its own manifest, which names the
# weights' sha256 and the graph's.
STATIC_DIR = "onnx-static"
OPSET = 17
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxExportError(ModelStoreError):
    """The graphs could not be exported, or the files do not match their manifest."""


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked via sys.modules[module] = None
        return False


def onnx_available() -> bool:
    """True when the optional `onnx` extra (onnx, onnxruntime) is installed."""
    return installed("onnx") and installed("onnxruntime")


def read_manifest(version_dir: Path) -> OnnxManifest | None:
    path = version_dir / ONNX_DIR / MANIFEST
    if not path.is_file():
        return None
    try:
        return OnnxManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        return None


def verified_path(
    version_dir: Path, precision: str, manifest: OnnxManifest, digest: Digest = file_sha256
) -> Path:
    """The graph file of `precision`, after checking its sha256 against the manifest."""
    entry = manifest.file(precision)
    if entry is None:
        raise OnnxExportError(f"{version_dir}: no {precision} ONNX graph in the manifest")
    path = version_dir / entry.path
    if not path.is_file() or digest(path) != entry.sha256:
        raise OnnxExportError(f"{path}: missing or sha256 does not match the manifest")
    return path


def is_current(
    version_dir: Path,
    manifest: OnnxManifest | None,
    weights_sha256: str,
    digest: Digest = file_sha256,
) -> bool:
    """The manifest belongs to these weights and every file it names is intact."""
    if manifest is None or manifest.weights_sha256 != weights_sha256:
        return False
    try:
        for entry in manifest.files:
            if entry.precision in FILES:  # the static int8 graph: `ensure_static_int8`
                verified_path(version_dir, entry.precision, manifest, digest)
    except OnnxExportError:
        return False
    return {f.precision for f in manifest.files} >= set(FILES)


def ensure_onnx(
    version_dir: Path, model: Any = None, verified: VerifiedVersion | None = None
) -> OnnxManifest | None:
    """The version's intact manifest, exporting the graphs when missing or stale; None when
    the `onnx` extra is not installed. `verified`: the load that checked the version's files
    (their hashes are reused; graphs its card records are never exported again)."""
    if not onnx_available():
        return None
    digest = verified.sha256 if verified is not None else file_sha256
    weights_sha = digest(version_dir / WEIGHTS_FILE)
    manifest = read_manifest(version_dir)
    if is_current(version_dir, manifest, weights_sha, digest):
        return manifest
    if _card_lists_graphs(version_dir, verified):
        raise OnnxExportError(f"{version_dir}: the card's ONNX graphs do not match the weights")
    if manifest is not None:
        log.warning("%s: ONNX graphs missing or stale; exporting them again", version_dir)
    return export_onnx(version_dir, model, weights_sha, verified)


def _card_lists_graphs(version_dir: Path, verified: VerifiedVersion | None) -> bool:
    if verified is not None:
        return verified.card_lists_graphs
    from modelstore.integrity import read_card

    card = read_card(version_dir)
    return card is not None and any(n.startswith(f"{ONNX_DIR}/") for n in card.files)


def try_ensure_onnx(version_dir: Path, model: Any = None) -> OnnxManifest | None:
    """`ensure_onnx`, logging a failure instead of raising: the version still serves on
    torch, and a worker tries the export again at load."""
    try:
        return ensure_onnx(version_dir, model)
    except OnnxExportError as exc:
        log.warning("%s: no ONNX graphs: %s", version_dir, exc)
        return None


def export_onnx(
    version_dir: Path,
    model: Any = None,
    weights_sha256: str | None = None,
    verified: VerifiedVersion | None = None,
) -> OnnxManifest:
    """Export fp32 and dynamic-int8 graphs into `<version_dir>/onnx/`, replacing it whole."""
    started = time.perf_counter()
    weights_sha = weights_sha256 or file_sha256(version_dir / WEIGHTS_FILE)
    if model is None:
        from modelstore.loading import load_classifier

        model, _ = load_classifier(version_dir, weights_sha, verified)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-onnx-", dir=version_dir))
    try:
        exporter = _export_fp32(model, tmp / FILES["fp32"])
        quantizer = _quantize_int8(tmp / FILES["fp32"], tmp / FILES["int8"])
        files = [
            OnnxFile(
                precision=p,
                path=f"{ONNX_DIR}/{name}",
                sha256=file_sha256(tmp / name),
                size_bytes=(tmp / name).stat().st_size,
            )
            for p, name in FILES.items()
        ]
        manifest = OnnxManifest(
            weights_sha256=weights_sha,
            files=files,
            opset=OPSET,
            exporter=exporter,
            quantizer=quantizer,
            exported_at=utc_now(),
            seconds=round(time.perf_counter() - started, 2),
        )
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
        _replace_dir(tmp, version_dir / ONNX_DIR)
    except OnnxExportError:
        raise
    except Exception as exc:  # exporter/quantizer errors come in many types
        raise OnnxExportError(f"{version_dir}: ONNX export failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("%s: exported ONNX graphs in %.1fs", version_dir, manifest.seconds)
    return manifest


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` into place as `target`; an old `target` is moved aside first, then removed."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{os.getpid()}-{time.monotonic_ns()}")
        target.rename(old)
    new.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _export_fp32(model: Any, path: Path) -> str:
    """The legacy (TorchScript) exporter with dynamic batch and sequence axes: it needs no
    extra package and handles BERT's graph; the dynamo exporter would need onnxscript."""
    import warnings

    import torch

    model = model.to("cpu", dtype=torch.float32).eval()
    vocab = int(getattr(model.config, "vocab_size", 100))
    ids = torch.tensor([[1, 2, 3, 4, 0], [1, 2, 3, 4, 5]]) % vocab
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])
    types = torch.zeros_like(ids)
    axes = {name: {0: "batch", 1: "sequence"} for name in INPUTS}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (ids, mask, types),
            str(path),
            input_names=list(INPUTS),
            output_names=["logits"],
            dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    return f"torch.onnx (TorchScript) {torch.__version__}"


def _quantize_int8(src: Path, dst: Path) -> str:
    """Dynamic int8: weights of MatMul/Gemm quantized ahead, activations at run time."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    was, root.disabled = root.disabled, True  # quiet its "consider pre-processing" hint
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        root.disabled = was
    return f"onnxruntime.quantization.quantize_dynamic {onnxruntime.__version__}"


Feed = dict[str, Any]  # input name -> int64 array, one calibration batch


def ensure_static_int8(version_dir: Path, calibration: list[Feed]) -> OnnxManifest:
    """`_ensure_static_int8`; a store it cannot write to (read-only, full) is an
    OnnxExportError, so the worker reports the candidate unavailable and carries on."""
    try:
        return _ensure_static_int8(version_dir, calibration)
    except OSError as exc:
        raise OnnxExportError(f"{version_dir}: cannot write the static int8 graph: {exc}") from exc


def read_static_manifest(version_dir: Path) -> OnnxManifest | None:
    """The static int8 graph's own manifest, or None when there is none (or it is unreadable)."""
    path = version_dir / STATIC_DIR / MANIFEST
    try:
        return OnnxManifest.model_validate_json(path.read_bytes())
    except (OSError, ValueError):
        return None


def _ensure_static_int8(version_dir: Path, calibration: list[Feed]) -> OnnxManifest:
    """The version's manifest with the static int8 graph in it, made now when missing.

    ONNX Runtime `quantize_static`: QDQ format, int8 weights per output channel, uint8
    activations whose ranges are calibrated (min/max) on `calibration` batches; MatMul and Gemm
    only (LayerNorm, Softmax and GELU stay fp32). The graph and its manifest live in
    `STATIC_DIR`, outside the files the card hashes (a worker makes them after the version was
    written); the returned manifest names it, so `verified_path` checks it like the others.
    """
    manifest = ensure_onnx(version_dir)
    if manifest is None:
        raise OnnxExportError("onnx/onnxruntime not installed (the `onnx` extra)")
    static = read_static_manifest(version_dir)
    if static is not None and static.weights_sha256 == manifest.weights_sha256:
        merged = _with_static(manifest, static)
        try:
            verified_path(version_dir, STATIC_INT8, merged)
            return merged
        except OnnxExportError:
            log.warning("%s: static int8 graph missing or altered; making it again", version_dir)
    if not calibration:
        raise OnnxExportError(f"{version_dir}: no calibration texts for static int8")
    started = time.perf_counter()
    src = verified_path(version_dir, "fp32", manifest)
    out_dir = version_dir / STATIC_DIR
    out_dir.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-static-", dir=out_dir))
    try:
        quantizer = _quantize_static(src, tmp / STATIC_FILE, calibration)
        os.replace(tmp / STATIC_FILE, out_dir / STATIC_FILE)
    except OnnxExportError:
        raise
    except Exception as exc:  # quantizer errors come in many types
        raise OnnxExportError(f"{version_dir}: static int8 quantization failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    path = out_dir / STATIC_FILE
    entry = OnnxFile(
        precision=STATIC_INT8,
        path=f"{STATIC_DIR}/{STATIC_FILE}",
        sha256=file_sha256(path),
        size_bytes=path.stat().st_size,
    )
    static = manifest.model_copy(update={"files": [entry], "quantizer": quantizer})
    tmp_manifest = out_dir / f".tmp-{MANIFEST}-{os.getpid()}"
    tmp_manifest.write_text(static.model_dump_json(indent=2), encoding="utf-8")
    os.replace(tmp_manifest, out_dir / MANIFEST)
    log.info("%s: static int8 graph in %.1fs", version_dir, time.perf_counter() - started)
    return _with_static(manifest, static)


def _with_static(manifest: OnnxManifest, static: OnnxManifest) -> OnnxManifest:
    kept = [f for f in manifest.files if f.precision != STATIC_INT8]
    return manifest.model_copy(
        update={
            "files": [*kept, *static.files],
            "quantizer": f"{manifest.quantizer}; {static.quantizer}",
        }
    )


def _quantize_static(src: Path, dst: Path, calibration: list[Feed]) -> str:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = {i.name for i in onnx.load(str(src), load_external_data=False).graph.input}

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.feeds = iter([{k: v for k, v in f.items() if k in names} for f in calibration])

        def get_next(self) -> Feed | None:
            return next(self.feeds, None)

    root = logging.getLogger()
    was, root.disabled = root.disabled, True  # quiet its "consider pre-processing" hint
    try:
        quantize_static(
            str(src),
            str(dst),
            Reader(),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul", "Gemm"],
            per_channel=True,
            # uint8 activations x int8 weights: ORT's fast x86 path (measured here on a
            # 768-wide BERT: 2.3x the int8 x int8 graph, which ran at fp32 speed)
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    finally:
        root.disabled = was
    return f"onnxruntime.quantization.quantize_static (QDQ, per-channel) {onnxruntime.__version__}"
