"""`streamclf dlq inspect|replay`: look at dead letters and re-send the ones that now decode."""

from __future__ import annotations

import asyncio
from collections import Counter

import typer
from pydantic import ValidationError
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
from bus.clients import make_consumer, make_producer
from bus.settings import KafkaSettings
from schemas.deadletter import DeadLetter
from worker.decode import Rejected, decode_event

app = typer.Typer(help="Inspect and replay dead letters.")


async def read_dead_letters(
    settings: KafkaSettings, topic: str, limit: int | None, timeout_s: float = 2.0
) -> list[DeadLetter]:
    consumer = make_consumer(settings, topic)
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        loop = asyncio.get_running_loop()
        quiet_until = loop.time() + timeout_s
        while loop.time() < quiet_until and (limit is None or len(letters) < limit):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                quiet_until = loop.time() + timeout_s
                for record in records:
                    try:
                        letters.append(DeadLetter.model_validate_json(record.value))
                    except (ValidationError, TypeError):
                        continue
        return letters[:limit] if limit else letters
    finally:
        await consumer.stop()


@app.command()
def inspect(
    topic: str,
    limit: int | None = typer.Option(None, "--limit", "-n"),
    bootstrap: str | None = BootstrapOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Show dead letters as a table: where they came from, the kind and the reason."""
    try:
        letters = run(read_dead_letters(kafka_settings(bootstrap), topic, limit))
    except Exception as exc:
        fail(f"cannot read {topic}: {exc}", EXIT_UNAVAILABLE)
    if as_json:
        print_json([letter.model_dump(mode="json") for letter in letters])
        return
    table = Table("source", "kind", "message", "value (start)", title=f"{topic}: {len(letters)}")
    for letter in letters:
        raw = letter.value_bytes()
        preview = "null" if raw is None else raw[:40].decode("utf-8", "replace")
        table.add_row(letter.where, letter.kind.value, letter.message[:80], preview)
    console.print(table)
    counts = Counter(letter.kind.value for letter in letters)
    console.print(", ".join(f"{k}: {n}" for k, n in counts.most_common()) or "no dead letters")


async def _replay(
    settings: KafkaSettings, letters: list[DeadLetter], to: str, max_bytes: int
) -> int:
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for letter in letters:
            futures.append(await producer.send(to, letter.value_bytes(), key=letter.key_bytes()))
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


@app.command()
def replay(
    topic: str,
    to: str = typer.Option(..., "--to", help="Input topic to re-send to"),
    all_: bool = typer.Option(False, "--all", help="Re-send even those that still fail to decode"),
    max_bytes: int = typer.Option(1_000_000, "--max-bytes"),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Re-send dead letters whose value is now a valid TextEvent (or all, with --all)."""
    settings = kafka_settings(bootstrap)
    try:
        letters = run(read_dead_letters(settings, topic, None))
    except Exception as exc:
        fail(f"cannot read {topic}: {exc}", EXIT_UNAVAILABLE)
    chosen = [
        letter
        for letter in letters
        if all_ or not isinstance(decode_event(letter.value_bytes(), max_bytes), Rejected)
    ]
    sent = run(_replay(settings, chosen, to, max_bytes)) if chosen else 0
    console.print(
        f"replayed {sent} of {len(letters)} dead letters to {to} "
        f"({len(letters) - sent} still invalid)"
    )
