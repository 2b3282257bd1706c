"""`streamclf worker`: run the stream processor."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from admin.context import EXIT_UNAVAILABLE, EXIT_USAGE, fail, kafka_settings
from bus.settings import KafkaSettings

if TYPE_CHECKING:
    from worker.settings import WorkerSettings


def worker(
    route: list[str] = typer.Option(
        [], "--route", "-r", help="IN_TOPIC=MODEL[:OUT_TOPIC]; repeatable (or STREAMCLF_ROUTES)"
    ),
    group: str | None = typer.Option(None, "--group", help="Consumer group (STREAMCLF_GROUP_ID)"),
    store: Path | None = typer.Option(None, "--store", help="Model store (STREAMCLF_MODEL_STORE)"),
    bootstrap: str | None = typer.Option(None, "--bootstrap", "-b"),
    redis_url: str | None = typer.Option(None, "--redis-url", help="STREAMCLF_REDIS_URL"),
    max_batch: int | None = typer.Option(None, "--max-batch"),
    max_wait_ms: float | None = typer.Option(None, "--max-wait-ms"),
    metrics_port: int | None = typer.Option(None, "--metrics-port"),
    worker_id: str | None = typer.Option(None, "--worker-id"),
    log_level: str | None = typer.Option(None, "--log-level", help="STREAMCLF_LOG_LEVEL"),
    review_topic: str | None = typer.Option(
        None,
        "--review-topic",
        help="Send the least sure answers here, rate-bounded (STREAMCLF_REVIEW_TOPIC; "
        "thresholds: STREAMCLF_REVIEW_MARGIN, _MIN_SCORE, _SAMPLE_RATE, _RATE_PER_S)",
    ),
) -> None:
    """Consume text events, classify them, publish labelled events (until SIGTERM/SIGINT)."""
    from pydantic import ValidationError

    from worker.app import Worker
    from worker.settings import WorkerSettings

    overrides: dict[str, Any] = {
        "log_level": log_level,
        "routes": route or None,
        "group_id": group,
        "model_store": store,
        "redis_url": redis_url,
        "max_batch": max_batch,
        "max_wait_ms": max_wait_ms,
        "metrics_port": metrics_port,
        "worker_id": worker_id,
        "review_topic": review_topic,
    }
    try:
        settings = WorkerSettings(**{k: v for k, v in overrides.items() if v is not None})
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        logging.getLogger("aiokafka").setLevel(logging.WARNING)
        kafka = kafka_settings(bootstrap)
        app = Worker(settings, kafka, hard_exit=True)
    except (ValidationError, ValueError) as exc:
        fail(str(exc), 2)
    _preflight(settings, kafka)
    from modelstore.exceptions import IntegrityError

    try:
        code = asyncio.run(app.run())
    except IntegrityError as exc:  # a stored file differs from its card: refused, one line
        fail(str(exc), EXIT_UNAVAILABLE)
    raise typer.Exit(code)


def _preflight(settings: WorkerSettings, kafka: KafkaSettings) -> None:
    """One line and exit 3 (unavailable) or 2 (missing model) instead of a traceback."""
    from admin.preflight import PreflightError, check_models, check_redis, check_topics

    routes = settings.parsed_routes()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # the error below says it all
    try:
        check_models(settings.model_store, sorted({r.model for r in routes}))
    except PreflightError as exc:
        fail(str(exc), EXIT_USAGE)
    try:
        if settings.redis_url and settings.cache_enabled and settings.redis_required_at_start:
            check_redis(settings.redis_url.get_secret_value())
        asyncio.run(check_topics(kafka, sorted({r.in_topic for r in routes})))
    except PreflightError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
