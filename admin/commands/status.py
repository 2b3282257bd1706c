"""`streamclf status [--watch]`: the live workers, from their heartbeats on the status topic."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import RenderableType
from rich.measure import Measurement

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
from admin.heartbeats import DEFAULT_MAX_SKEW_S, MAX_SKEW_ENV
from admin.render import is_live, status_view, unsigned_warning, worker_rows
from bus.exceptions import BusError
from bus.settings import KafkaSettings


def _snapshot(
    kafka: KafkaSettings, topic: str, stale_s: float, lookback_s: float, skew_s: float
) -> list[dict[str, Any]]:
    from admin.heartbeats import read_workers

    return worker_rows(run(read_workers(kafka, stale_s, lookback_s, topic, skew_s)))


def _exit_code(rows: list[dict[str, Any]]) -> int:
    live = [r for r in rows if is_live(r)]
    if not live:
        return EXIT_UNAVAILABLE
    return EXIT_OK if all(r["state"] == "ready" for r in live) else EXIT_FAILED


WIDE_MAX = 400  # columns the wide table may take when the terminal is narrower


def _print_wide(view: RenderableType) -> None:
    """The wide table at its natural width, even when the terminal is narrower (like
    `kubectl -o wide`); nothing is cut."""
    natural = Measurement.get(console, console.options.update_width(WIDE_MAX), view).maximum
    narrow = console.width
    console.width = max(narrow, min(natural, WIDE_MAX))
    try:
        console.print(view)
    finally:
        console.width = narrow


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
    max_skew_s: float = typer.Option(
        DEFAULT_MAX_SKEW_S,
        "--max-skew",
        envvar=MAX_SKEW_ENV,
        show_envvar=True,
        min=0,
        help="A heartbeat stamped more than this many seconds ahead of this clock is shown as "
        "clock-skew, never as the worker's state",
    ),
    wide: bool = typer.Option(
        False, "--wide", help="Every column: host, engines, in/out/dlq, cache, swap, rollouts"
    ),
    status_topic: str = typer.Option(
        "streamclf.status", "--status-topic", envvar="STREAMCLF_STATUS_TOPIC", show_envvar=True
    ),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Live workers (stale ones marked): what they serve, lag, throughput, errors; `--wide`
    adds engines, cache, swaps and rollouts.

    Exit 0 when every live worker is ready, 1 when one is not, 3 when none is live.
    """
    stale_s = stale_after or 3 * float(os.environ.get("STREAMCLF_STATUS_INTERVAL_S", "5"))
    kafka = kafka_settings(bootstrap)
    title = f"{status_topic} (stale after {stale_s:.0f}s)"
    try:
        if not watch:
            rows = _snapshot(kafka, status_topic, stale_s, lookback_s, max_skew_s)
            if warning := unsigned_warning(rows):
                err_console.print(warning, style="bold red", markup=False, highlight=False)
            if as_json:
                print_json(rows)
            elif rows and wide:
                _print_wide(status_view(rows, title, wide=True))
            elif rows:
                console.print(status_view(rows, title))
            else:
                console.print(
                    f"no worker heartbeats on {status_topic} in the last {lookback_s:.0f}s",
                    markup=False,
                )
            raise typer.Exit(_exit_code(rows))
        view = _View(kafka, status_topic, stale_s, lookback_s, max_skew_s, title, wide)
        _watch(view, interval_s, as_json)
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)


@dataclass(frozen=True)
class _View:
    kafka: KafkaSettings
    topic: str
    stale_s: float
    lookback_s: float
    skew_s: float
    title: str
    wide: bool

    def rows(self) -> list[dict[str, Any]]:
        return _snapshot(self.kafka, self.topic, self.stale_s, self.lookback_s, self.skew_s)


def _watch(view: _View, interval_s: float, as_json: bool) -> None:
    import json

    from rich.live import Live

    try:
        if as_json:  # one JSON document per line and refresh
            while True:
                rows = view.rows()
                typer.echo(json.dumps({"at_ms": int(time.time() * 1000), "workers": rows}))
                time.sleep(interval_s)
        with Live(console=console, auto_refresh=False) as live:
            while True:
                title = f"{view.title} — {time.strftime('%H:%M:%S')}"
                live.update(status_view(view.rows(), title, view.wide))
                live.refresh()
                time.sleep(interval_s)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_OK) from None
