"""`streamclf topics create|list|describe`."""

from __future__ import annotations

import typer
from rich.table import Table

from admin.context import (
    EXIT_FAILED,
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
from admin.safe_text import cell, esc
from bus.exceptions import BusError
from bus.topics import create_topics_report, high_water_marks, list_topics

app = typer.Typer(help="Create, list and describe topics.")


@app.command()
def create(
    names: list[str] = typer.Argument(..., help="Topic names"),
    partitions: int = typer.Option(1, "--partitions", "-p", min=1),
    compact: bool = typer.Option(False, "--compact", help="cleanup.policy=compact"),
    replication_factor: int | None = typer.Option(
        None,
        "--replication-factor",
        min=1,
        help="Replicas per partition (default STREAMCLF_KAFKA_REPLICATION_FACTOR, else "
        "min(3, brokers))",
    ),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Create topics (existing ones are left as they are); one line per topic: created,
    exists, or failed and why (exit 1 when any failed)."""
    configs = {"cleanup.policy": "compact"} if compact else None
    settings = kafka_settings(bootstrap)
    try:
        outcomes = run(
            create_topics_report(settings, names, partitions, configs, replication_factor)
        )
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        print_json([{"topic": o.name, "state": o.state, "error": o.error} for o in outcomes])
    for o in outcomes if not as_json else []:
        if o.state == "failed":
            err_console.print(f"{esc(o.name)}: [red]failed[/]: {esc(o.error)}")
        else:
            console.print(f"{esc(o.name)}: {esc(o.state)}")
    if any(o.state == "failed" for o in outcomes):
        raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_(bootstrap: str | None = BootstrapOpt, as_json: bool = JsonOpt) -> None:
    """List topics with their partition counts."""
    try:
        topics = run(list_topics(kafka_settings(bootstrap)))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        print_json(topics)
        return
    table = Table("topic", "partitions")
    for name, parts in topics.items():
        table.add_row(cell(name), str(parts))
    console.print(table)


@app.command()
def describe(
    topic: str,
    group: str = typer.Option("streamclf-workers", "--group", "-g", help="Consumer group for lag"),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Partitions, high-water marks and the group's committed offsets and lag."""
    try:
        infos = run(high_water_marks(kafka_settings(bootstrap), topic, group_id=group))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        print_json(
            [
                {
                    "partition": i.partition,
                    "high_water": i.high_water,
                    "committed": i.committed,
                    "lag": i.lag,
                }
                for i in infos
            ]
        )
        return
    table = Table("partition", "high water", f"committed ({esc(group)})", "lag", title=cell(topic))
    for info in infos:
        table.add_row(
            str(info.partition),
            str(info.high_water),
            "-" if info.committed is None else str(info.committed),
            "-" if info.lag is None else str(info.lag),
        )
    console.print(table)
    total = sum(i.lag or 0 for i in infos)
    console.print(f"total lag: {total}")
