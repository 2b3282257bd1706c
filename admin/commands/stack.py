"""`streamclf stack up|down|status`: the embedded local broker, and whether Redis answers."""

from __future__ import annotations

import os

import typer
from rich.table import Table

from admin.context import EXIT_UNAVAILABLE, JsonOpt, console, fail, print_json, state_dir
from admin.localstack import LocalBroker, StackError

app = typer.Typer(help="Run the embedded local stack (Kafka-protocol broker; Redis is external).")

PortOpt = typer.Option(19092, "--port", help="Broker port on 127.0.0.1")


def redis_status(url: str | None = None) -> tuple[str, bool]:
    url = url or os.environ.get("STREAMCLF_REDIS_URL") or "redis://127.0.0.1:6379/0"
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        return url.split("@")[-1], True
    except Exception:
        return url.split("@")[-1], False


@app.command()
def up(port: int = PortOpt) -> None:
    """Start the broker on 127.0.0.1:PORT (in memory) and wait until it accepts connections."""
    broker = LocalBroker(state_dir(), port=port)
    try:
        state = broker.start()
    except StackError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    console.print(
        f"[green]broker up[/] at {state.address} (pid {state.pid}, log {broker.log_file})"
    )
    where, ok = redis_status()
    console.print(f"redis {where}: " + ("[green]answers[/]" if ok else "[yellow]not answering[/]"))


@app.command()
def down(port: int = PortOpt) -> None:
    """Stop the broker started by `stack up`."""
    stopped = LocalBroker(state_dir(), port=port).stop()
    console.print("broker stopped" if stopped else "no broker was running")


@app.command()
def status(port: int = PortOpt, as_json: bool = JsonOpt) -> None:
    """Say whether the broker and Redis answer; exit 3 if the broker does not."""
    state = LocalBroker(state_dir(), port=port).state()
    where, redis_ok = redis_status()
    if as_json:
        print_json(
            {
                "broker": {"address": state.address, "running": state.running, "pid": state.pid},
                "redis": {"url": where, "ok": redis_ok},
            }
        )
    else:
        table = Table("service", "address", "state")
        table.add_row("broker", state.address, "up" if state.running else "down")
        table.add_row("redis", where, "up" if redis_ok else "down")
        console.print(table)
    if not state.running:
        raise typer.Exit(EXIT_UNAVAILABLE)
