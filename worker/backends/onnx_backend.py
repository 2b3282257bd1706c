"""onnx: ONNX Runtime on the version's exported graphs (fp32, dynamic int8, static int8 calibrated
on probe texts), CPU provider.

The graph file is checked against the manifest's sha256 before a session opens it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelstore.onnx_export import installed
from worker.backends.base import BackendUnavailable, Spec


def available() -> bool:
    return installed("onnxruntime")


class OnnxBackend:
    def __init__(self, graph: Path, precision: str, threads: int) -> None:
        if not available():
            raise BackendUnavailable("onnxruntime is not installed (pip install 'streamclf[onnx]')")
        import onnxruntime as ort

        self.spec = Spec("onnx", precision)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between ops: the worker's event loop shares these cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(
                str(graph), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own types for bad graphs
            raise BackendUnavailable(f"{graph}: ONNX Runtime cannot load it: {exc}") from exc
        self.inputs = {i.name for i in self.session.get_inputs()}

    def forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        out = self.session.run(["logits"], {k: v for k, v in feed.items() if k in self.inputs})
        return np.asarray(out[0], dtype=np.float32)

    def is_oom(self, exc: BaseException) -> bool:
        text = str(exc).lower()
        return "out of memory" in text or "bad_alloc" in text or "failed to allocate" in text

    def release(self) -> None:
        self.session = None
