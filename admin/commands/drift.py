"""`streamclf models drift NAME [--json]`: the drift of a model's stream, from the workers'
latest heartbeats (each worker counts its own window; see docs/operations.md)."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from admin.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    BootstrapOpt,
    JsonOpt,
    console,
    fail,
    kafka_settings,
    print_json,
    run,
)
from bus.exceptions import BusError
from schemas.drift import MIN_WINDOW_EVENTS, THRESHOLDS


def drift_rows(statuses: list[Any], model: str) -> list[dict[str, Any]]:
    """One row per live worker that serves `model`: its figures and those over threshold."""
    rows = []
    for status in statuses:
        snap = status.drift.get(model)
        if snap is None:
            continue
        rows.append(
            {
                "worker_id": status.worker_id,
                **snap.model_dump(),
                "top1_drop": snap.top1_drop,
                "low_margin_rise": snap.low_margin_rise,
                "over": snap.over(),
            }
        )
    return rows


def _fmt(value: float | None, over: bool) -> str:
    text = "-" if value is None else f"{value:.3f}"
    return f"[bold red]{text}[/]" if over else text


def drift_table(rows: list[dict[str, Any]], model: str) -> Table:
    table = Table(title=escape(f"drift of {model} (thresholds: docs/operations.md)"))
    table.add_column("worker")
    table.add_column("version")
    table.add_column("window", justify="right")
    for name, limit in THRESHOLDS.items():
        table.add_column(f"{name} (>{limit:g})", justify="right")
    table.add_column("reference")
    for row in rows:
        table.add_row(
            escape(row["worker_id"]),
            escape(row["version"]),
            str(row["window_events"]),
            *(_fmt(row[name], name in row["over"]) for name in THRESHOLDS),
            escape(row["reference_source"] or "none"),
        )
    return table


def drift(
    model: str = typer.Argument(..., metavar="NAME", help="Model name"),
    stale_after: float | None = typer.Option(
        None, "--stale-after", help="Seconds after which a silent worker is left out"
    ),
    lookback_s: float = typer.Option(300.0, "--lookback", help="Heartbeats within this long"),
    status_topic: str = typer.Option(
        "streamclf.status", "--status-topic", envvar="STREAMCLF_STATUS_TOPIC", show_envvar=True
    ),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Drift gauges of NAME's active version per live worker: label and text-length PSI,
    top-1 drop, low-margin rise, truncated and dead-letter shares, against their defaults.

    Exit 0 when none is over its threshold, 1 when one is, 3 when no live worker serves NAME.
    """
    from admin.commands.control_cli import stale_window
    from admin.swapping import live_workers

    stale_s = stale_window(stale_after)
    try:
        live, _ = run(live_workers(kafka_settings(bootstrap), stale_s, lookback_s, status_topic))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    rows = drift_rows(live, model)
    if as_json:
        print_json(rows)
    elif rows:
        console.print(drift_table(rows, model))
        small = [r["worker_id"] for r in rows if r["window_events"] < MIN_WINDOW_EVENTS]
        if small:
            note = f"fewer than {MIN_WINDOW_EVENTS} answers in the window of: {', '.join(small)}"
            console.print(escape(note))
    if not rows:
        if not as_json:
            fail(f"no live worker reports drift for {model}", EXIT_UNAVAILABLE)
        raise typer.Exit(EXIT_UNAVAILABLE)
    raise typer.Exit(EXIT_FAILED if any(r["over"] for r in rows) else EXIT_OK)


def register(models_app: typer.Typer) -> None:
    models_app.command("drift")(drift)
