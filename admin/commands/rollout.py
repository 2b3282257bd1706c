"""`streamclf models shadow|canary|compare`: prove a version on live traffic before it takes over."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from admin.commands.control_cli import (
    ByOpt,
    ControlTopicOpt,
    StaleOpt,
    StatusTopicOpt,
    TimeoutOpt,
    announce,
)
from admin.context import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    BootstrapOpt,
    JsonOpt,
    StoreOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    model_store,
    print_json,
    run,
)
from admin.safe_text import esc
from bus.exceptions import BusError
from schemas.control import RolloutCommand, RolloutKind

FeedbackTopicOpt = typer.Option(
    "streamclf.train.feedback",
    "--feedback-topic",
    envvar="STREAMCLF_TRAINER_FEEDBACK_TOPIC",
    show_envvar=True,
)
WaitOpt = typer.Option(False, "--wait", help="Wait until every live worker applied it")


def _publish(
    kind: RolloutKind,
    name: str,
    version: str | None,
    fraction: float | None,
    stop: bool,
    by: str | None,
    store: Path | None,
    bootstrap: str | None,
    control_topic: str,
) -> RolloutCommand:
    from admin.rollouts import request_rollout, stop_rollout
    from admin.swapping import SwapRefused

    key = os.environ.get("STREAMCLF_CONTROL_KEY") or None
    kafka = kafka_settings(bootstrap)
    try:
        if stop:
            return run(stop_rollout(kafka, model_store(store), kind, name, key, control_topic, by))
        if version is None or fraction is None:
            fail(f"give VERSION and --fraction to start a {kind}, or --stop to end it", EXIT_USAGE)
        return run(
            request_rollout(
                kafka, model_store(store), kind, name, version, fraction, key, control_topic, by
            )
        )
    except SwapRefused as exc:
        fail(f"{kind} refused, nothing published: {exc}", EXIT_USAGE if exc.unknown else 1)
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def shadow(
    name: str,
    version: str | None = typer.Argument(None, help="The candidate (not with --stop)"),
    fraction: float = typer.Option(1.0, "--fraction", help="Share of events (by hash of id)"),
    stop: bool = typer.Option(False, "--stop", help="End the shadow of NAME"),
    wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    stale_after: float | None = StaleOpt,
    by: str | None = ByOpt,
    store: Path | None = StoreOpt,
    bootstrap: str | None = BootstrapOpt,
    control_topic: str = ControlTopicOpt,
    status_topic: str = StatusTopicOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Every worker serving NAME also classifies a sample of events with VERSION.

    The results go to IN.shadow (never to the labelled topic); `models compare` reads them.
    Durable like a swap: workers started later join it. `--stop` ends it.
    """
    command = _publish("shadow", name, version, fraction, stop, by, store, bootstrap, control_topic)
    announce(command, wait, timeout, stale_after, bootstrap, status_topic, as_json)


def canary(
    name: str,
    version: str | None = typer.Argument(None, help="The candidate (not with --stop)"),
    fraction: float | None = typer.Option(
        None, "--fraction", help="Share of keys (events without a key: by id) VERSION serves"
    ),
    stop: bool = typer.Option(False, "--stop", help="End the canary (same as models rollback)"),
    wait: bool = WaitOpt,
    timeout: float = TimeoutOpt,
    stale_after: float | None = StaleOpt,
    by: str | None = ByOpt,
    store: Path | None = StoreOpt,
    bootstrap: str | None = BootstrapOpt,
    control_topic: str = ControlTopicOpt,
    status_topic: str = StatusTopicOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve VERSION for a stable fraction of keys; `version` in each output says which answered.

    `models swap NAME VERSION` completes it; `models rollback NAME` (or --stop) ends it.
    """
    command = _publish("canary", name, version, fraction, stop, by, store, bootstrap, control_topic)
    announce(command, wait, timeout, stale_after, bootstrap, status_topic, as_json)


def compare(
    name: str,
    version: str,
    topic: list[str] = typer.Option(
        [], "--topic", help="Shadow topic(s) to read (default every *.shadow topic)"
    ),
    feedback_topic: str = FeedbackTopicOpt,
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """How VERSION did against the active version in its shadow run.

    Agreement, label confusion, per-class counts, latency, throughput and accuracy on the
    feedback topic's labels, from the shadow topic(s). Exit 3 when there are no results.
    """
    from admin.render import compare_tables
    from admin.rollouts import gather_report

    try:
        report = run(
            gather_report(kafka_settings(bootstrap), name, version, topic or None, feedback_topic)
        )
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        print_json(report.model_dump())
    elif report.events:
        for table in compare_tables(report):
            console.print(table)
    else:
        err_console.print(f"no shadow results for {esc(name)}@{esc(version)}")
    raise typer.Exit(EXIT_OK if report.events else EXIT_UNAVAILABLE)


def register(models_app: typer.Typer) -> None:
    models_app.command("shadow")(shadow)
    models_app.command("canary")(canary)
    models_app.command("compare")(compare)
