"""`streamclf dlq inspect|replay`: look at dead letters and re-send the ones that now decode."""

from __future__ import annotations

from collections import Counter

import typer
from pydantic import ValidationError

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
from bus.producing import produce_many
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from schemas.deadletter import DeadLetter
from schemas.decoding import Rejected, decode_event

app = typer.Typer(help="Inspect and replay dead letters.")


async def read_dead_letters(
    settings: KafkaSettings, topic: str, limit: int | None, timeout_s: float = 2.0
) -> list[DeadLetter]:
    """Dead letters from the start of `topic` until it is quiet (unreadable records skipped)."""
    letters: list[DeadLetter] = []
    for record in await read_until_quiet(settings, [topic], quiet_s=timeout_s):
        try:
            letters.append(DeadLetter.model_validate_json(record.value or b""))
        except ValidationError:
            continue
    return letters[:limit] if limit else letters


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
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    if as_json:
        print_json([letter.model_dump(mode="json") for letter in letters])
        return
    from admin.render import dead_letters_table

    console.print(dead_letters_table(topic, letters))
    counts = Counter(letter.kind.value for letter in letters)
    summary = ", ".join(f"{k}: {n}" for k, n in counts.most_common()) or "no dead letters"
    console.print(summary, markup=False)


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
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    chosen = [
        letter
        for letter in letters
        if all_ or not isinstance(decode_event(letter.value_bytes(), max_bytes), Rejected)
    ]
    records = [(letter.key_bytes(), letter.value_bytes()) for letter in chosen]
    try:
        sent = len(run(produce_many(settings, to, records))) if chosen else 0
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    console.print(
        f"replayed {sent} of {len(letters)} dead letters to {to} "
        f"({len(letters) - sent} still invalid)"
    )
