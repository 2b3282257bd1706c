"""The trainer service's Prometheus metrics, each declared once."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, start_http_server

# job and feedback records skipped: declared once in bus/rejected.py, shared by every reader
from bus.rejected import REJECTED_RECORDS as REJECTED_RECORDS

RESULTS = Counter("streamclf_trainer_results_total", "Results published, by status", ["status"])
FEEDBACK = Counter(
    "streamclf_trainer_feedback_total", "Corrected labels stored, by model", ["model"]
)
EXAMPLES_PER_S = Gauge(
    "streamclf_trainer_examples_per_second", "Training throughput of the last job", ["model"]
)


def serve(port: int | None) -> None:
    """Expose /metrics on `port` (nothing when None)."""
    if port:
        start_http_server(port)
