"""`streamclf topics create|list|describe`."""

from __future__ import annotations

import typer
from rich.table import Table

from admin.context import (
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
from bus.topics import create_topics, high_water_marks, list_topics

app = typer.Typer(help="Create, list and describe topics.")


@app.command()
def create(
    names: list[str] = typer.Argument(..., help="Topic names"),
    partitions: int = typer.Option(1, "--partitions", "-p", min=1),
    compact: bool = typer.Option(False, "--compact", help="cleanup.policy=compact"),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Create topics (existing ones are left as they are)."""
    configs = {"cleanup.policy": "compact"} if compact else None
    try:
        created = run(create_topics(kafka_settings(bootstrap), names, partitions, configs))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    for name in names:
        console.print(f"{name}: " + ("created" if name in created else "exists"))


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
        table.add_row(name, str(parts))
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
    table = Table("partition", "high water", f"committed ({group})", "lag", title=topic)
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
