"""What a chaos run does (ChaosConfig, with the worker settings it uses) and its model store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ChaosConfig:
    """What the run does; the worker settings it uses are recorded with the figures."""

    events: int = 20_000  # good events; poison records come on top
    poison_every: int = 40
    partitions: int = 4
    workers: int = 3
    rate_per_s: float = 200.0  # production pace, so that the chaos overlaps the stream
    kill_every_s: float = 4.0
    restart_after_s: float = 1.0
    min_kills: int = 5
    redis_down_s: float = 4.0
    tail_events: int = 40  # sent at the end: all must be answered by the swapped-in version
    # texts repeat after this many events: between the Redis restart and the swap, and after
    # the swap, repeats must come soon enough for the cache to be seen answering again
    distinct_texts: int = 900
    # the rebalance storm: once `storm_at` of the inputs are answered, every `storm_every_s` a
    # worker in any state is SIGTERMed and a new one started, `storm_cycles` times; each must
    # be gone within STREAMCLF_SHUTDOWN_TIMEOUT_S + `exit_slack_s`
    storm_cycles: int = 10
    storm_every_s: float = 3.0
    storm_at: float = 0.6
    exit_slack_s: float = 5.0
    # poison records on the control topic before the workers start (poison.CONTROL_POISON)
    control_poison: bool = True
    # a `trainer serve` sent the same poison on its jobs and feedback topics
    trainer_poison: bool = True
    timeout_s: float = 900.0
    seed: int = 0
    worker_env: dict[str, str] = field(
        default_factory=lambda: {
            "STREAMCLF_MAX_BATCH": "32",
            "STREAMCLF_MAX_INFLIGHT_BATCHES": "2",
            "STREAMCLF_COMMIT_INTERVAL_MS": "200",
            "STREAMCLF_KAFKA_SESSION_TIMEOUT_MS": "6000",
            "STREAMCLF_KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "STREAMCLF_SHUTDOWN_TIMEOUT_S": "15",
            "STREAMCLF_REDIS_RETRY_S": "1",
            "STREAMCLF_STATUS_INTERVAL_S": "1",
            "STREAMCLF_TORCH_THREADS": "1",
            # The engine is not what this run is about; `auto` would measure backends at the
            # first start of every version (tests/unit/test_backends covers that).
            "STREAMCLF_ENGINE": "torch",
            "STREAMCLF_METRICS_HOST": "127.0.0.1",
            "STREAMCLF_LOG_LEVEL": "WARNING",
        }
    )


def shutdown_timeout_s(cfg: ChaosConfig) -> float:
    return float(cfg.worker_env.get("STREAMCLF_SHUTDOWN_TIMEOUT_S", "30"))


def make_store(root: Path) -> Path:
    """A tiny `news` model: v1 active, v2 ready to be swapped in."""
    from modelstore.labels import PRESET_LABELS
    from modelstore.presets import init_model
    from modelstore.store import ModelStore

    store = ModelStore(root)
    init_model(store, "news", PRESET_LABELS["chinanews"], "tiny", seed=1)
    init_model(store, "news", PRESET_LABELS["chinanews"], "tiny", seed=7)
    store.set_active("news", "v1")
    return root
