"""`streamclf dlq replay`: re-send dead letters to an input topic, each once.

A bookmark (the consumer group `streamclf.dlq-replay:SOURCE:TARGET`, never joined; see
`bus/bookmark.py`) remembers how far SOURCE has been replayed to TARGET. It moves past a chunk
only after the broker acknowledged every record re-sent from it, so a second run re-sends only
dead letters that arrived since, and an interrupted run re-sends at most one chunk again.

The DLQ is untrusted like any topic: a record that is not a well-formed `DeadLetter` (garbage
bytes, deep nesting, invalid base64, oversized) is skipped and reported, never fatal.
"""

from __future__ import annotations

import binascii
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from bus.bookmark import open_bookmark
from bus.control import CONTROL_TOPIC, STATUS_TOPIC
from bus.creating import legal_topic_name
from bus.producing import Sender, sender
from bus.reading import Record, require_topics
from bus.settings import KafkaSettings
from schemas.deadletter import DeadLetter
from schemas.decoding import Rejected, decode_event

# What a dead letter may add around the base64 of its key and value (message, coordinates).
LETTER_OVERHEAD_BYTES = 64 * 1024
CHUNK_RECORDS = 500
EXAMPLES = 10  # skipped records named one by one; the rest are counted
# Naming conventions of topics that are never an input: worker outputs, dead letters, shadow
# results; the control, status and trainer topics by their default names.
OUTPUT_SUFFIXES = (".labelled", ".dlq", ".shadow")
TRAINER_TOPICS = ("streamclf.train.jobs", "streamclf.train.results", "streamclf.train.feedback")


@dataclass(frozen=True)
class Letter:
    """A readable dead letter, with its original key and value decoded."""

    where: str  # the dead letter's own coordinates on the DLQ
    letter: DeadLetter
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True)
class Skipped:
    """A DLQ record that is not a readable dead letter, or one the broker refused."""

    where: str
    reason: str


@dataclass
class Progress:
    """What a replay has done so far (`remaining` is fixed when it starts)."""

    source: str
    to: str
    group: str
    remaining: int = 0
    read: int = 0
    chosen: int = 0  # readable, and valid or --include-invalid: what is (or would be) sent
    sent: int = 0
    invalid: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)  # by the reason's first words
    refused: int = 0  # re-sent, and refused for good by the broker (e.g. too large)
    examples: list[Skipped] = field(default_factory=list)  # the first EXAMPLES of both

    def skip(self, bad: Skipped) -> None:
        self.unreadable[bad.reason.split(":", 1)[0]] += 1
        self._example(bad)

    def refuse(self, bad: Skipped) -> None:
        self.refused += 1
        self._example(bad)

    def _example(self, bad: Skipped) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(bad)

    @property
    def letters(self) -> int:
        return self.read - self.unreadable.total()


def bookmark_group(source: str, to: str) -> str:
    """The bookmark of SOURCE replayed to TO (':' is not allowed in topic names)."""
    return f"streamclf.dlq-replay:{source}:{to}"


def decode_letter(record: Record, max_bytes: int) -> Letter | Skipped:
    """A `Letter`, or why this DLQ record is not one. Never raises."""
    raw = record.value
    if raw is None:
        return Skipped(record.where, "tombstone: null value")
    limit = 4 * max_bytes + LETTER_OVERHEAD_BYTES
    if len(raw) > limit:
        return Skipped(record.where, f"too large: {len(raw)} bytes, limit {limit}")
    try:
        letter = DeadLetter.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "value"
        return Skipped(record.where, f"not a dead letter: {loc}: {first['msg']}")
    try:
        key, value = _b64(letter.key_b64), _b64(letter.value_b64)
    except (binascii.Error, ValueError) as exc:
        return Skipped(record.where, f"bad base64: {exc}")
    return Letter(record.where, letter, key, value)


def _b64(text: str | None) -> bytes | None:
    return None if text is None else binascii.a2b_base64(text.encode("ascii"), strict_mode=True)


def refusal(source: str, to: str) -> str | None:
    """Why `to` must not receive dead letters from `source`, or None."""
    for option, name in (("TOPIC", source), ("--to", to)):
        if not legal_topic_name(name):  # and so not echoed: it may hold anything
            return f"{option} is not a topic name (1-249 of letters, digits, '.', '_', '-')"
    if to == source:
        return f"--to {to} is the dead-letter topic being replayed"
    if to.startswith("__"):
        return f"--to {to} is an internal topic of the broker"
    names, suffixes, outputs = _protected()
    if to in names:
        return f"--to {to} is a control, status or trainer topic, not an input topic"
    if to in outputs:
        return f"--to {to} is the output of a configured route, not an input topic"
    for suffix in suffixes:
        if to.endswith(suffix):
            return f"--to {to} is an output topic (*{suffix}), not an input topic"
    return None


def _protected() -> tuple[set[str], set[str], set[str]]:
    """(topic names, suffixes, route outputs) never replayed to: the conventions, and what the
    worker and trainer settings of this environment name."""
    from trainer.settings import TrainerSettings
    from worker.settings import WorkerSettings

    names = {CONTROL_TOPIC, STATUS_TOPIC, *TRAINER_TOPICS}
    suffixes, outputs = set(OUTPUT_SUFFIXES), set[str]()
    # Settings that do not parse here (pydantic's ValidationError and RouteError are
    # ValueErrors, a missing config file an OSError) leave the conventions alone.
    with contextlib.suppress(ValueError, OSError):
        ws = WorkerSettings()
        names |= {ws.control_topic, ws.status_topic}
        suffixes |= {ws.labelled_suffix, ws.dlq_suffix}
        outputs = {r.out_topic for r in ws.parsed_routes()}
    with contextlib.suppress(ValueError, OSError):
        ts = TrainerSettings()
        names |= {ts.jobs_topic, ts.results_topic, ts.feedback_topic, ts.control_topic}
    return names, {s for s in suffixes if s}, outputs


async def replay(
    settings: KafkaSettings,
    source: str,
    to: str,
    *,
    max_bytes: int,
    include_invalid: bool = False,
    from_start: bool = False,
    dry_run: bool = False,
    on_chunk: Callable[[Progress, list[Letter]], None] | None = None,
) -> Progress:
    """Re-send the dead letters of `source` past its bookmark (from the start with
    `from_start`) whose value is now a valid TextEvent (all of them with `include_invalid`)
    to `to`; move the bookmark after each acknowledged chunk. `dry_run` sends nothing and
    leaves the bookmark. `on_chunk` sees the progress and the letters chosen from each chunk."""
    await require_topics(settings, [source, to])
    group = bookmark_group(source, to)
    progress = Progress(source, to, group)
    async with (
        open_bookmark(settings, source, group, from_start=from_start) as mark,
        _maybe_sender(settings, dry_run) as out,
    ):
        progress.remaining = mark.remaining
        async for chunk in mark.chunks(CHUNK_RECORDS):
            chosen = _choose(progress, chunk.records, max_bytes, include_invalid)
            if out is not None:
                results = await out.send_each(to, [(c.key, c.value) for c in chosen])
                for letter, result in zip(chosen, results, strict=True):
                    if isinstance(result, Exception):
                        progress.refuse(Skipped(letter.where, f"refused by {to}: {result!r}"))
                    else:
                        progress.sent += 1
                await mark.advance(chunk)
            if on_chunk is not None:
                on_chunk(progress, chosen)
    return progress


def _choose(
    progress: Progress, records: list[Record], max_bytes: int, include_invalid: bool
) -> list[Letter]:
    chosen: list[Letter] = []
    for record in records:
        progress.read += 1
        decoded = decode_letter(record, max_bytes)
        if isinstance(decoded, Skipped):
            progress.skip(decoded)
        elif include_invalid or not isinstance(decode_event(decoded.value, max_bytes), Rejected):
            chosen.append(decoded)
        else:
            progress.invalid += 1
    progress.chosen += len(chosen)
    return chosen


@contextlib.asynccontextmanager
async def _maybe_sender(settings: KafkaSettings, dry_run: bool) -> AsyncIterator[Sender | None]:
    if dry_run:
        yield None
        return
    async with sender(settings) as out:
        yield out
