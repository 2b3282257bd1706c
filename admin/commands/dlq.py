"""`streamclf dlq inspect|replay`: look at dead letters and re-send the ones that now decode."""

from __future__ import annotations

import time
from collections import Counter

import typer

from admin import dlq_replay
from admin.context import (
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    BootstrapOpt,
    JsonOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    print_json,
    run,
)
from admin.dlq_replay import Letter, Progress, decode_letter, refusal
from admin.safe_text import printable
from bus.exceptions import BusError
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from schemas.deadletter import DeadLetter

app = typer.Typer(help="Inspect and replay dead letters.")
DEFAULT_MAX_BYTES = 1_000_000  # the worker's default STREAMCLF_MAX_MESSAGE_BYTES


async def read_dead_letters(
    settings: KafkaSettings, topic: str, limit: int | None, timeout_s: float = 2.0
) -> list[DeadLetter]:
    """Dead letters from the start of `topic` until it is quiet (unreadable records skipped)."""
    letters: list[DeadLetter] = []
    for record in await read_until_quiet(settings, [topic], quiet_s=timeout_s):
        decoded = decode_letter(record, DEFAULT_MAX_BYTES)
        if isinstance(decoded, Letter):
            letters.append(decoded.letter)
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
    include_invalid: bool = typer.Option(
        False, "--include-invalid", help="Re-send even those that still fail to decode"
    ),
    from_start: bool = typer.Option(
        False,
        "--from-start",
        help="Replay every dead letter again, not only those since the last run",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="List what would be sent; send nothing, remember nothing"
    ),
    max_bytes: int = typer.Option(DEFAULT_MAX_BYTES, "--max-bytes"),
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Re-send dead letters whose value is now a valid TextEvent (or all, with
    --include-invalid), each once: a bookmark per TOPIC and --to remembers what was sent."""
    refused = refusal(topic, to)
    if refused:
        fail(f"refused: {refused}", EXIT_USAGE)
    ticker = _Ticker(dry_run)
    try:
        done = run(
            dlq_replay.replay(
                kafka_settings(bootstrap),
                topic,
                to,
                max_bytes=max_bytes,
                include_invalid=include_invalid,
                from_start=from_start,
                dry_run=dry_run,
                on_chunk=ticker,
            )
        )
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    for bad in done.examples:
        _say(f"skipped {bad.where}: {bad.reason}", err=True)
    if done.unreadable:
        counts = ", ".join(f"{k}: {n}" for k, n in done.unreadable.most_common())
        _say(f"skipped {done.unreadable.total()} unreadable records ({counts})", err=True)
    verb, count = ("would replay", done.chosen) if dry_run else ("replayed", done.sent)
    _say(
        f"{verb} {count} of {done.letters} dead letters to {to} ({done.invalid} still invalid, "
        f"{done.refused} refused by the broker, {done.unreadable.total()} unreadable skipped)"
    )
    if dry_run:
        _say("dry run: nothing sent, bookmark unchanged")
    elif done.read:
        _say(f"bookmark {done.group} moved past them")


class _Ticker:
    """Progress on stderr every few seconds of a long replay; the list of a dry run."""

    def __init__(self, dry_run: bool, every_s: float = 2.0) -> None:
        self.dry_run, self.every_s = dry_run, every_s
        self.last = time.monotonic()

    def __call__(self, progress: Progress, chosen: list[Letter]) -> None:
        if self.dry_run:
            for c in chosen:
                event = printable(c.letter.event_id or "-", 60)
                size = "null" if c.value is None else f"{len(c.value)} bytes"
                _say(f"would send {c.where} ({c.letter.kind.value}, event {event}, {size})")
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            _say(
                f"{progress.source} -> {progress.to}: {progress.read} of about "
                f"{progress.remaining} read, {progress.sent} sent, {progress.invalid} still "
                f"invalid, {progress.refused} refused, {progress.unreadable.total()} unreadable",
                err=True,
            )


def _say(line: str, err: bool = False) -> None:
    """One plain line: no markup, no highlighting, never wrapped."""
    (err_console if err else console).print(line, markup=False, highlight=False, soft_wrap=True)
