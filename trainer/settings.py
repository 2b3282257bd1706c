"""Trainer-service settings: `STREAMCLF_TRAINER_*`, plus the shared store/control variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.signing import check_control_key


class TrainerSettings(BaseSettings):
    """One frozen object; units are in the field names."""

    model_config = SettingsConfigDict(
        env_prefix="STREAMCLF_TRAINER_", frozen=True, extra="ignore", populate_by_name=True
    )

    jobs_topic: str = "streamclf.train.jobs"
    results_topic: str = "streamclf.train.results"
    feedback_topic: str = "streamclf.train.feedback"
    group_id: str = "streamclf-trainer"
    requested_by: str = "trainer-service"

    # Feedback fine-tuning
    feedback_model: str | None = None  # model a feedback event belongs to when it names none
    feedback_threshold: int = Field(default=100, ge=1)  # new examples that trigger a round
    replay_sample: int = Field(default=1000, ge=0)  # rows of the original train data replayed
    feedback_dev_path: Path | None = None  # dev set for the gate when the card names none
    feedback_epochs: int = Field(default=2, ge=1)
    feedback_promote: bool = True
    # a reviewed example (feedback with source "review") counts this many times in a round
    review_weight: int = Field(default=3, ge=1, le=20)

    # Files named by jobs on the jobs topic must lie inside this directory.
    data_root: Path = Path(".streamclf/data")

    progress_interval_s: float = 5.0
    metrics_port: int | None = None  # None: no /metrics server
    # Where /metrics listens: loopback unless told (containers set 0.0.0.0); the workers' name.
    http_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("STREAMCLF_HTTP_HOST")
    )

    # Shared with the workers and the CLI (same variable names everywhere).
    model_store: Path = Field(
        default=Path(".streamclf/models"),
        validation_alias=AliasChoices("STREAMCLF_MODEL_STORE", "model_store"),
    )
    control_topic: str = Field(
        default="streamclf.control",
        validation_alias=AliasChoices("STREAMCLF_CONTROL_TOPIC", "control_topic"),
    )
    control_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STREAMCLF_CONTROL_KEY", "control_key")
    )
    require_control_key: bool = Field(
        default=False,
        validation_alias=AliasChoices("STREAMCLF_REQUIRE_CONTROL_KEY", "require_control_key"),
    )

    @model_validator(mode="after")
    def _control_key_present(self) -> TrainerSettings:
        check_control_key(self.control_key_value(), self.require_control_key)
        return self

    def control_key_value(self) -> str | None:
        return self.control_key.get_secret_value() if self.control_key else None
