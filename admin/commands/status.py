"""`streamclf status [--watch]`: the live workers, from their heartbeats on the status topic."""

from __future__ import annotations

import os
import time
from typing import Any

import typer

from admin.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    BootstrapOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    print_json,
    run,
)
from admin.render import status_table, unsigned_warning, worker_row
from bus.exceptions import BusError
from bus.settings import KafkaSettings


def _snapshot(
    kafka: KafkaSettings, topic: str, stale_s: float, lookback_s: float
) -> list[dict[str, Any]]:
    from admin.swapping import live_workers

    live, stale = run(live_workers(kafka, stale_s, lookback_s, topic))
    now_ms = int(time.time() * 1000)
    return [worker_row(s, False, now_ms) for s in live] + [
        worker_row(s, True, now_ms) for s in stale
    ]


def _exit_code(rows: list[dict[str, Any]]) -> int:
    live = [r for r in rows if r["state"] != "stale"]
    if not live:
        return EXIT_UNAVAILABLE
    return EXIT_OK if all(r["state"] == "ready" for r in live) else EXIT_FAILED


def status(
    watch: bool = typer.Option(False, "--watch", "-w", help="Refresh until Ctrl-C"),
    interval_s: float = typer.Option(2.0, "--interval", help="Seconds between refreshes"),
    stale_after: float | None = typer.Option(
        None,
        "--stale-after",
        help="Seconds after which a silent worker is stale (default 3 x STREAMCLF_STATUS_INTERVAL_S)",
    ),
    lookback_s: float = typer.Option(
        300.0, "--lookback", help="Show workers heard from within this many seconds"
    ),
    status_topic: str = typer.Option(
        "streamclf.status", "--status-topic", envvar="STREAMCLF_STATUS_TOPIC", show_envvar=True
    ),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Live workers (stale ones marked): versions, lag, throughput, cache hit ratio, errors.

    Exit 0 when every live worker is ready, 1 when one is not, 3 when none is live.
    """
    stale_s = stale_after or 3 * float(os.environ.get("STREAMCLF_STATUS_INTERVAL_S", "5"))
    kafka = kafka_settings(bootstrap)
    title = f"{status_topic} (stale after {stale_s:.0f}s)"
    try:
        if not watch:
            rows = _snapshot(kafka, status_topic, stale_s, lookback_s)
            if warning := unsigned_warning(rows):
                err_console.print(f"[bold red]{warning}[/]")
            if as_json:
                print_json(rows)
            elif rows:
                console.print(status_table(rows, title))
            else:
                console.print(
                    f"no worker heartbeats on {status_topic} in the last {lookback_s:.0f}s"
                )
            raise typer.Exit(_exit_code(rows))
        _watch(kafka, status_topic, stale_s, lookback_s, interval_s, title, as_json)
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


def _watch(
    kafka: KafkaSettings,
    topic: str,
    stale_s: float,
    lookback_s: float,
    interval_s: float,
    title: str,
    as_json: bool,
) -> None:
    import json

    from rich.live import Live

    try:
        if as_json:  # one JSON document per line and refresh
            while True:
                rows = _snapshot(kafka, topic, stale_s, lookback_s)
                typer.echo(json.dumps({"at_ms": int(time.time() * 1000), "workers": rows}))
                time.sleep(interval_s)
        with Live(console=console, auto_refresh=False) as live:
            while True:
                rows = _snapshot(kafka, topic, stale_s, lookback_s)
                live.update(status_table(rows, f"{title} — {time.strftime('%H:%M:%S')}"))
                live.refresh()
                time.sleep(interval_s)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_OK) from None
