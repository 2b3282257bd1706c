"""Model backends behind one interface: a forward pass from padded int64 arrays to fp32 logits.

Tokenization, batching and probabilities live in the engine (`worker/inference.py`); a
backend only runs the network: `torch_backend` (fp32, bf16, fp16, dynamic int8 on CPU) and
`onnx_backend` (ONNX Runtime fp32 and dynamic int8; needs the optional `onnx` extra).
"""

from worker.backends.base import Backend, BackendUnavailable, Spec

__all__ = ["Backend", "BackendUnavailable", "Spec"]
