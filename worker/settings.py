"""Worker settings: one frozen object from `STREAMCLF_*` env vars and an optional YAML/TOML file."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from schemas.signing import check_control_key
from worker.routing import Route, parse_route


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerSettings(BaseSettings):
    """Everything a worker needs; units are in the field names."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMCLF_", frozen=True, extra="ignore", populate_by_name=True
    )

    # Streams
    routes: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="IN_TOPIC=MODEL[:OUT_TOPIC], comma-separated in env"
    )
    group_id: str = "streamclf-workers"
    worker_id: str = Field(default_factory=default_worker_id)
    labelled_suffix: str = ".labelled"
    dlq_suffix: str = ".dlq"
    control_topic: str = "streamclf.control"
    status_topic: str = "streamclf.status"
    status_interval_s: float = 5.0
    control_key: SecretStr | None = None
    # Refuse to start without a real control key (compose and Kubernetes set it).
    require_control_key: bool = False

    # Models
    model_store: Path = Path(".streamclf/models")
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # auto: measured at load (fastest backend/precision that agrees with fp32 torch); explicit
    # settings win: torch = fp32 on CPU, bf16/fp16 on CUDA unless `dtype` says; onnx = fp32.
    engine: Literal["auto", "torch", "onnx"] = "auto"
    dtype: Literal["auto", "fp32", "bf16", "fp16", "int8", "int8-static"] = "auto"
    min_dtype_agreement: float = 0.99  # top-1 agreement with fp32 torch on >= 256 probe texts
    # With the trainer's labelled dev probes: accuracy drop vs fp32 at most this (0.005 = 0.5
    # points) and top-1 agreement at least `min_agreement` (docs/worker.md)
    max_accuracy_drop: float = Field(0.005, ge=0, le=1)
    min_agreement: float = Field(0.97, ge=0, le=1)
    torch_threads: int | None = None
    top_k: int = 5

    # Batching
    max_batch: int = 32
    max_wait_ms: float = 10.0
    max_batch_tokens: int = 16384  # batcher: sum of (estimated) tokens per batch
    # engine: padded tokens (longest x rows) per forward pass; None = 1024 on CPU (padding and
    # large matrices cost more than they give there), 16384 on CUDA
    max_padded_tokens: int | None = None
    max_length: int = 512
    max_inflight_batches: int = 2
    max_message_bytes: int = 1_000_000

    # Cache
    redis_url: SecretStr | None = None
    cache_enabled: bool = True
    cache_disabled_routes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    cache_ttl_s: int = 7 * 24 * 3600
    cache_prefix: str = "streamclf"
    cache_lru_size: int = 100_000
    redis_timeout_ms: int = 200
    redis_retry_s: float = 2.0
    # A configured Redis that does not answer at start is a one-line error (a wrong URL is
    # caught at deploy time); false starts without the cache and says `redis-down`.
    redis_required_at_start: bool = True

    # Delivery
    commit_interval_ms: int = 1000
    shutdown_timeout_s: float = 30.0
    # /healthz fails when the event loop, the consume loop or a pipeline with work waiting
    # makes no progress for this long (one batch on the slowest model must fit in it)
    stall_timeout_s: float = 60.0

    # Drift and review (docs/operations.md)
    drift_window_events: int = Field(1000, ge=10)  # answered events per model in the window
    # review topic: the least sure answers (and an audit sample) go there, rate-bounded
    review_topic: str | None = None
    review_margin: float = Field(0.2, ge=0.0, le=1.0)  # top-1 minus top-2 under this
    review_min_score: float = Field(0.0, ge=0.0, le=1.0)  # top-1 under this
    review_sample_rate: float = Field(0.0, ge=0.0, le=1.0)  # random audit share of the rest
    review_rate_per_s: float = Field(5.0, gt=0.0)
    review_burst: int = Field(50, ge=1)
    review_queue_size: int = Field(1000, ge=1)

    # Ops
    metrics_port: int | None = None  # None: no HTTP server (metrics, /healthz, /readyz)
    # Where that server listens: loopback unless told. Containers set 0.0.0.0 (compose and
    # Kubernetes do) so that Prometheus and the kubelet reach it. Old name: METRICS_HOST.
    http_host: str = Field(
        default="127.0.0.1",
        validation_alias=AliasChoices("STREAMCLF_HTTP_HOST", "STREAMCLF_METRICS_HOST"),
    )
    log_level: str = "INFO"

    @field_validator("routes", "cache_disabled_routes", mode="before")
    @classmethod
    def _split_csv(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("routes")
    @classmethod
    def _routes_parse(cls, value: list[str]) -> list[str]:
        for spec in value:
            parse_route(spec)
        return value

    @model_validator(mode="after")
    def _control_key_present(self) -> WorkerSettings:
        key = self.control_key.get_secret_value() if self.control_key else None
        check_control_key(key, self.require_control_key)
        return self

    def engine_options(self) -> dict[str, Any]:
        """The `InferenceEngine` keyword arguments these settings fix (worker and `predict`)."""
        return {
            "device": self.device,
            "dtype": self.dtype,
            "engine": self.engine,
            "max_length": self.max_length,
            "max_batch_tokens": self.max_padded_tokens or 0,
            "top_k": self.top_k,
            "min_dtype_agreement": self.min_dtype_agreement,
            "max_accuracy_drop": self.max_accuracy_drop,
            "min_labelled_agreement": self.min_agreement,
        }

    def parsed_routes(self) -> list[Route]:
        return [parse_route(spec, self.labelled_suffix, self.dlq_suffix) for spec in self.routes]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get("STREAMCLF_CONFIG_FILE")
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise FileNotFoundError(f"STREAMCLF_CONFIG_FILE={config_file}: no such file")
            if path.suffix == ".toml":
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            else:
                sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)
