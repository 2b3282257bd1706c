"""`streamclf produce` and `streamclf tail`: events in and out for people."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import select
import sys
import uuid
from pathlib import Path
from typing import Any

import orjson
import typer

from admin.context import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    BootstrapOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    run,
)
from admin.safe_text import printable
from bus.exceptions import BusError
from bus.producing import produce_many
from bus.reading import StopWhen, iter_records, require_topics
from bus.settings import KafkaSettings
from schemas.decoding import MAX_DEPTH, nests_too_deep

DEFAULT_QUIET_S = 5.0  # `tail` stops after this long without events


class BadLine(ValueError):
    """A line `produce` will not send; the message says why."""


def line_to_event(line: str) -> dict[str, object] | None:
    """A JSON object line is taken as a TextEvent (an id is added if missing); anything else
    is plain text. A JSON line nested deeper than an event may be raises `BadLine`."""
    line = line.rstrip("\n")
    if not line.strip():
        return None
    if line.lstrip().startswith("{"):
        try:
            obj = orjson.loads(line)  # bounded: no recursion error, however deep
        except orjson.JSONDecodeError as exc:
            if "limit exceeded" in exc.msg:  # orjson stops at depth 1024
                raise BadLine(f"JSON nests deeper than {MAX_DEPTH} levels") from None
            obj = None  # not JSON: the line is plain text
        if nests_too_deep(obj):
            raise BadLine(f"JSON nests deeper than {MAX_DEPTH} levels")
        if isinstance(obj, dict):
            obj.setdefault("id", uuid.uuid4().hex)
            return obj
    return {"id": uuid.uuid4().hex, "text": line}


def _records(lines: list[str]) -> list[tuple[bytes, bytes]]:
    """(key, value) per line; the first bad line raises `BadLine` naming its number."""
    events = []
    for number, line in enumerate(lines, 1):
        try:
            event = line_to_event(line)
        except BadLine as exc:
            raise BadLine(f"line {number}: {exc}; nothing was produced") from None
        if event is not None:
            events.append(event)
    return [(str(e["id"]).encode(), json.dumps(e, ensure_ascii=False).encode()) for e in events]


def produce(
    topic: str,
    file: Path | None = typer.Option(
        None, "--file", "-f", help="Read lines from FILE (default stdin)"
    ),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Produce one TextEvent per line (plain text or JSON objects) with generated ids."""
    text = file.read_text(encoding="utf-8") if file else sys.stdin.read()
    try:
        records = _records(text.split("\n"))
    except BadLine as exc:
        fail(str(exc), EXIT_USAGE)
    settings = kafka_settings(bootstrap)
    try:
        run(require_topics(settings, [topic]))  # never create a topic by a typo
        count = len(run(produce_many(settings, topic, records)))
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    console.print(f"produced {count} events to {topic}", highlight=False)


async def _tail(
    settings: KafkaSettings,
    topic: str,
    stop: StopWhen,
    from_end: bool,
    group: str | None,
    wait_s: float,
) -> int:
    seen = 0
    reader = iter_records(
        settings,
        [topic],
        start="end" if from_end else "beginning",
        group_id=group,
        stop=stop,
        wait_for_topics_s=wait_s,
        on_wait=lambda _: _say_waiting(topic, wait_s),
    )
    watcher = asyncio.create_task(_watch_reader(asyncio.current_task()))
    shown = _shown if sys.stdout.isatty() else str  # a pipe gets the values as they are
    try:
        async with contextlib.aclosing(reader):
            async for record in reader:
                value = record.value.decode("utf-8", "replace") if record.value else "null"
                sys.stdout.write(shown(value) + "\n")
                sys.stdout.flush()
                seen += 1
    except asyncio.CancelledError:
        if watcher.done() and not watcher.cancelled():
            raise BrokenPipeError("the reader closed the pipe") from None
        raise
    finally:
        watcher.cancel()
    return seen


def _say_waiting(topic: str, wait_s: float) -> None:
    limit = "until it does (Ctrl-C stops)" if math.isinf(wait_s) else f"up to {wait_s:g} s"
    err_console.print(
        f"waiting for topic {topic} to exist, {limit}",
        soft_wrap=True,
        highlight=False,
        markup=False,
    )


def _shown(value: str) -> str:
    """A value as a terminal may show it: control characters (`\\x1b[2J`) made visible."""
    return printable(value, limit=sys.maxsize)


def _reader_gone() -> bool:
    """Whether stdout is a pipe whose reading end was closed (POLLERR/POLLHUP)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # error events are always reported
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (OSError, ValueError, AttributeError):
        return False


async def _watch_reader(task: asyncio.Task[Any] | None) -> None:
    """Stop a following tail as soon as its reader goes away, not at the next event."""
    while not _reader_gone():
        await asyncio.sleep(0.2)
    if task is not None:
        task.cancel()


def _quiet_broken_pipe() -> None:
    """The reader closed the pipe (`| head`): point stdout at /dev/null so the interpreter's
    final flush cannot fail, and leave without a traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise typer.Exit(0)


def tail(
    topic: str,
    max_events: int | None = typer.Option(None, "--max", help="Stop after N events"),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        help="Stop after S seconds without events (default 5); a topic that does not exist "
        "yet is waited for up to S seconds",
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        "-f",
        help="Keep waiting for new events, and for the topic if it does not exist yet "
        "(Ctrl-C stops)",
    ),
    from_end: bool = typer.Option(
        False, "--from-end", help="Only events produced from now on (default: from the start)"
    ),
    group: str | None = typer.Option(
        None,
        "--group",
        "-g",
        help="Read as this consumer group: continue where it left off and commit what is shown",
    ),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Print a topic's events as JSON lines, from the beginning (or the end, or a group's offsets).

    A missing topic is an error at once, unless --timeout or --follow says how long to wait
    for it (as a worker creates its output topics when it starts)."""
    quiet_s = DEFAULT_QUIET_S if timeout is None else timeout
    stop = StopWhen(quiet_s=None if follow else quiet_s, max_records=max_events)
    wait_s = math.inf if follow else (timeout or 0.0)
    try:
        run(_tail(kafka_settings(bootstrap), topic, stop, from_end, group, wait_s))
    except BrokenPipeError:
        _quiet_broken_pipe()
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
