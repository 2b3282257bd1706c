"""Every Prometheus metric of the worker, declared once. Recorded where the thing happens."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram, Info

# control records skipped: declared once in bus/rejected.py, shared by every reader
from bus.rejected import REJECTED_RECORDS as REJECTED_RECORDS
from schemas.drift import DriftSnapshot
from schemas.engine import EngineChoice

EVENTS_IN = Counter("streamclf_events_in_total", "Events consumed", ["topic"])
EVENTS_OUT = Counter("streamclf_events_out_total", "Labelled events published", ["topic", "model"])
DEAD_LETTERS = Counter(
    "streamclf_dead_letters_total", "Events sent to the dead-letter topic", ["topic", "kind"]
)
BATCH_SIZE = Histogram(
    "streamclf_batch_size",
    "Events per inference batch",
    ["model"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
BATCH_TOKENS = Histogram(
    "streamclf_batch_tokens",
    "Padded tokens per forward pass",
    ["model"],
    buckets=(64, 256, 1024, 4096, 8192, 16384, 32768, 65536),
)
BATCH_WAIT = Histogram(
    "streamclf_batch_wait_seconds",
    "Time from a batch's first event to its dispatch",
    ["model"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)
INFERENCE_LATENCY = Histogram(
    "streamclf_inference_seconds",
    "Model time per batch",
    ["model"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
E2E_LATENCY = Histogram(
    "streamclf_end_to_end_seconds",
    "Broker timestamp of the input to acknowledged output (per batch: its oldest event)",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CACHE_HITS = Counter("streamclf_cache_hits_total", "Results served from the cache", ["model"])
CACHE_MISSES = Counter("streamclf_cache_misses_total", "Cache lookups that missed", ["model"])
CACHE_ERRORS = Counter("streamclf_cache_errors_total", "Cache operations that failed")
CACHE_CORRUPT = Counter(
    "streamclf_cache_corrupt_total", "Cached values that are not a prediction (misses)", ["model"]
)
CACHE_UP = Gauge("streamclf_cache_up", "1 when the cache backend answers, 0 when bypassed")
CONSUMER_LAG = Gauge(
    "streamclf_consumer_lag", "High-water mark minus position", ["topic", "partition"]
)
MODEL_VERSION = Info("streamclf_model", "Active model version per model")
ACTIVE_VERSION = Gauge("streamclf_model_active", "1 for the active version", ["model", "version"])
ENGINE = Gauge(
    "streamclf_engine",
    "1 for the backend and precision the active version runs on",
    ["model", "version", "backend", "precision", "mode"],
)
ENGINE_TEXTS_PER_S = Gauge(
    "streamclf_engine_probe_texts_per_second",
    "Speed of the chosen backend on the probe texts, measured at load",
    ["model", "backend", "precision"],
)
ENGINE_AGREEMENT = Gauge(
    "streamclf_engine_agreement",
    "Top-1 agreement of the chosen backend with fp32 torch on the probe texts",
    ["model", "backend", "precision"],
)
CANDIDATE_AGREEMENT = Gauge(
    "streamclf_engine_candidate_agreement",
    "Top-1 agreement with fp32 torch of each backend measured at load, on the probe texts",
    ["model", "version", "backend", "precision"],
)
CANDIDATE_ACCURACY_DELTA = Gauge(
    "streamclf_engine_candidate_accuracy_delta",
    "Accuracy on the labelled probe texts minus fp32 torch's, per backend measured at load",
    ["model", "version", "backend", "precision"],
)
SWAPS = Counter("streamclf_swaps_total", "Hot swaps completed", ["model"])
SWAP_FAILURES = Counter("streamclf_swap_failures_total", "Hot swaps that failed", ["model"])
STORE_INTEGRITY_FAILURES = Counter(
    "streamclf_store_integrity_failures_total",
    "Loads refused because a stored file differs from the version's card",
    ["model", "version"],
)
SWAP_SECONDS = Histogram(
    "streamclf_swap_seconds",
    "Load + warm-up + switch time of a swap",
    ["model"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)
INFLIGHT = Gauge("streamclf_inflight_events", "Events consumed but not yet handled")
OLDEST_UNCOMMITTED = Gauge(
    "streamclf_oldest_uncommitted_age_seconds",
    "Seconds since the oldest consumed but not yet committed event of the partition was read",
    ["topic", "partition"],
)
READY = Gauge("streamclf_ready", "1 when the worker has joined its group and loaded its models")
ROLLOUT_FRACTION = Gauge(
    "streamclf_rollout_fraction",
    "Fraction of a shadow (events) or canary (keys) in force; 0 once ended",
    ["model", "kind", "version"],
)
SHADOW_EVENTS = Counter(
    "streamclf_shadow_events_total", "Events classified by a shadow version", ["model", "version"]
)
SHADOW_AGREEMENT = Gauge(
    "streamclf_shadow_agreement",
    "Share of shadowed events where the candidate's label equals the active version's",
    ["model", "version"],
)
CANARY_EVENTS = Counter(
    "streamclf_canary_events_total", "Events answered by a canary version", ["model", "version"]
)


def record_engine(model: str, version: str, choice: EngineChoice | None, active: bool) -> None:
    """Set the engine gauges of a version becoming active (or 0 for one leaving)."""
    if choice is None:
        return
    backend, precision = choice.backend, choice.precision
    ENGINE.labels(model, version, backend, precision, choice.mode).set(1 if active else 0)
    if active:
        ENGINE_TEXTS_PER_S.labels(model, backend, precision).set(choice.texts_per_s or 0.0)
        agreement = 1.0 if choice.agreement is None else choice.agreement
        ENGINE_AGREEMENT.labels(model, backend, precision).set(agreement)
    for c in choice.candidates:
        labels = (model, version, c.backend, c.precision)
        for gauge, value in (
            (CANDIDATE_AGREEMENT, c.agreement),
            (CANDIDATE_ACCURACY_DELTA, c.accuracy_delta),
        ):
            if value is None:
                continue
            if active:
                gauge.labels(*labels).set(value)
            else:  # a version leaving: its series go
                with contextlib.suppress(KeyError):
                    gauge.remove(*labels)


def _drift_gauge(name: str, doc: str) -> Gauge:
    return Gauge(f"streamclf_drift_{name}", doc, ["model", "version"])


DRIFT_WINDOW_EVENTS = _drift_gauge("window_events", "Answered events in the drift window")
DRIFT_LABEL_PSI = _drift_gauge(
    "label_psi", "PSI of the window's label shares against the version's reference"
)
DRIFT_LENGTH_PSI = _drift_gauge(
    "length_psi", "PSI of the window's text-length buckets against the version's reference"
)
DRIFT_MEAN_TOP1 = _drift_gauge("mean_top1", "Mean top-1 score over the window")
DRIFT_TOP1_DROP = _drift_gauge(
    "top1_drop", "Reference mean top-1 score minus the window's (positive: less sure)"
)
DRIFT_LOW_MARGIN = _drift_gauge(
    "low_margin_share", "Share of answers whose top-1 minus top-2 score is under the margin"
)
DRIFT_LOW_MARGIN_RISE = _drift_gauge(
    "low_margin_rise", "Low-margin share of the window minus the version's reference share"
)
DRIFT_TRUNCATED = _drift_gauge("truncated_share", "Share of texts cut at max_length")
DRIFT_DEAD = _drift_gauge(
    "dead_letter_share", "Share of the window's events that became dead letters"
)
_DRIFT_GAUGES = (
    DRIFT_WINDOW_EVENTS,
    DRIFT_LABEL_PSI,
    DRIFT_LENGTH_PSI,
    DRIFT_MEAN_TOP1,
    DRIFT_TOP1_DROP,
    DRIFT_LOW_MARGIN,
    DRIFT_LOW_MARGIN_RISE,
    DRIFT_TRUNCATED,
    DRIFT_DEAD,
)
REVIEW_SENT = Counter(
    "streamclf_review_sent_total", "Review requests acknowledged by the broker", ["model"]
)
REVIEW_DROPPED = Counter(
    "streamclf_review_dropped_total",
    "Review requests not sent (rate: over the token bucket; queue: queue full; failed: the "
    "broker refused or the send failed)",
    ["model", "reason"],
)


def record_drift(model: str, snap: DriftSnapshot) -> None:
    """Set the drift gauges of a model's active version (once per batch)."""
    v = snap.version
    DRIFT_WINDOW_EVENTS.labels(model, v).set(snap.window_events)
    pairs = (
        (DRIFT_LABEL_PSI, snap.label_psi),
        (DRIFT_LENGTH_PSI, snap.length_psi),
        (DRIFT_MEAN_TOP1, snap.mean_top1),
        (DRIFT_LOW_MARGIN, snap.low_margin_share),
        (DRIFT_TRUNCATED, snap.truncated_share),
        (DRIFT_DEAD, snap.dead_letter_share),
    )
    for gauge, value in pairs:
        if value is not None:
            gauge.labels(model, v).set(value)
    if (drop := snap.top1_drop) is not None:
        DRIFT_TOP1_DROP.labels(model, v).set(drop)
    if (rise := snap.low_margin_rise) is not None:
        DRIFT_LOW_MARGIN_RISE.labels(model, v).set(rise)


def forget_drift(model: str, version: str) -> None:
    """Drop a version's drift series once it no longer serves."""
    for gauge in _DRIFT_GAUGES:
        with contextlib.suppress(KeyError):
            gauge.remove(model, version)
