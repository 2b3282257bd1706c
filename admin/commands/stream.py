"""`streamclf produce` and `streamclf tail`: events in and out for people."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import typer

from admin.context import EXIT_UNAVAILABLE, BootstrapOpt, console, fail, kafka_settings, run
from bus.clients import make_consumer, make_producer
from bus.settings import KafkaSettings


def line_to_event(line: str) -> dict[str, object] | None:
    """A JSON object line is taken as a TextEvent (an id is added if missing); anything else
    is plain text."""
    line = line.rstrip("\n")
    if not line.strip():
        return None
    if line.lstrip().startswith("{"):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            obj.setdefault("id", uuid.uuid4().hex)
            return obj
    return {"id": uuid.uuid4().hex, "text": line}


async def _produce(settings: KafkaSettings, topic: str, lines: list[str]) -> int:
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for line in lines:
            event = line_to_event(line)
            if event is None:
                continue
            key = str(event["id"]).encode()
            futures.append(
                await producer.send(topic, json.dumps(event, ensure_ascii=False).encode(), key=key)
            )
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


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
        count = run(_produce(kafka_settings(bootstrap), topic, text.split("\n")))
    except Exception as exc:
        fail(f"cannot produce to {topic}: {exc}", EXIT_UNAVAILABLE)
    console.print(f"produced {count} events to {topic}", highlight=False)


async def _tail(
    settings: KafkaSettings, topic: str, max_events: int | None, timeout_s: float
) -> int:
    consumer = make_consumer(settings, topic)
    await consumer.start()
    seen = 0
    try:
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + timeout_s
        while loop.time() < quiet_until and (max_events is None or seen < max_events):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if max_events is not None and seen >= max_events:
                        break
                    value = record.value.decode("utf-8", "replace") if record.value else "null"
                    typer.echo(value)
                    seen += 1
                    quiet_until = loop.time() + timeout_s
        return seen
    finally:
        await consumer.stop()


def tail(
    topic: str,
    max_events: int | None = typer.Option(None, "--max", help="Stop after N events"),
    timeout: float = typer.Option(5.0, "--timeout", help="Stop after S seconds without events"),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Print a topic's events as JSON lines, from the beginning."""
    try:
        run(_tail(kafka_settings(bootstrap), topic, max_events, timeout))
    except Exception as exc:
        fail(f"cannot read {topic}: {exc}", EXIT_UNAVAILABLE)
