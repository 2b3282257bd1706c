"""Options and output shared by the commands that write to the control topic (swap, rollback,
shadow, canary): one definition, so `models` and its rollout commands agree."""

from __future__ import annotations

import os

import typer

from admin.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    console,
    err_console,
    kafka_settings,
    print_json,
    run,
)
from admin.safe_text import esc
from schemas.control import RolloutCommand

ControlTopicOpt = typer.Option(
    "streamclf.control", "--control-topic", envvar="STREAMCLF_CONTROL_TOPIC", show_envvar=True
)
StatusTopicOpt = typer.Option(
    "streamclf.status", "--status-topic", envvar="STREAMCLF_STATUS_TOPIC", show_envvar=True
)
WaitOpt = typer.Option(False, "--wait", help="Wait until every live worker reports the version")
TimeoutOpt = typer.Option(120.0, "--timeout", help="Seconds --wait waits at most", min=1)
StaleOpt = typer.Option(
    None,
    "--stale-after",
    help="A worker whose last heartbeat is older than this many seconds is not live "
    "(default 3 x STREAMCLF_STATUS_INTERVAL_S)",
)
ByOpt = typer.Option(None, "--by", help="Who asks (default user@host)")


def stale_window(stale_after: float | None) -> float:
    return stale_after or 3 * float(os.environ.get("STREAMCLF_STATUS_INTERVAL_S", "5"))


def announce(
    command: RolloutCommand,
    wait: bool,
    timeout: float,
    stale_after: float | None,
    bootstrap: str | None,
    status_topic: str,
    as_json: bool,
) -> None:
    """Print what was published; with --wait follow the workers (exit 0 / 1 / 3)."""
    from admin.rollouts import wait_rollout

    signed = bool(os.environ.get("STREAMCLF_CONTROL_KEY"))
    doing = "ended" if command.stop else f"started on {command.fraction:.1%}"
    published = command.model_dump(exclude={"signature"}) | {"signed": signed}
    if not as_json:
        note = "signed" if signed else "unsigned: STREAMCLF_CONTROL_KEY is not set"
        console.print(
            f"{command.type} {esc(command.model)}@{esc(command.version)} {doing} ({note})"
        )
    if not wait:
        if as_json:
            print_json(published)
        return
    kafka = kafka_settings(bootstrap)
    outcome = run(wait_rollout(kafka, command, timeout, stale_window(stale_after), status_topic))
    code = {"ok": EXIT_OK, "failed": EXIT_FAILED}.get(outcome.state, EXIT_UNAVAILABLE)
    if as_json:
        print_json(published | {"wait": outcome.__dict__})
    else:
        detail = "; ".join(outcome.errors) or ", ".join(outcome.waiting) or "every live worker"
        (console if code == EXIT_OK else err_console).print(
            f"{outcome.state}: {esc(detail, limit=2000)}"
        )
    raise typer.Exit(code)
