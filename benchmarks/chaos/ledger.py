"""Delivery accounting from the output and dead-letter topics alone.

Every input record is known by its coordinates (partition, offset), taken from the producer's
acknowledgements, and by its id when it has a readable one. Each labelled event and dead letter
names the coordinates it answers (`source_partition`, `source_offset`) and the worker that
wrote it, so lost inputs, duplicates and the uncommitted window of a killed worker can all be
counted from the topics, with nothing taken from the workers' own word.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Coord = tuple[int, int]  # (partition, offset)


@dataclass
class Ledger:
    """What the topics say happened to the inputs."""

    events: int
    answered: int  # inputs with at least one output or dead letter
    outputs: int  # labelled events, copies included
    dead_letters: int  # dead letters, copies included
    dead_letters_by_kind: dict[str, int]
    duplicates: int  # copies beyond the first, over all inputs
    duplicated_inputs: int
    lost: list[Coord] = field(default_factory=list)
    unexpected: list[Coord] = field(default_factory=list)  # answers for no input we sent
    wrong_id: list[Coord] = field(default_factory=list)  # answer's id is not the input's id
    mixed: list[Coord] = field(default_factory=list)  # copies disagree (labelled vs dead)

    def figures(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "answered": self.answered,
            "outputs": self.outputs,
            "dead_letters": self.dead_letters,
            "dead_letters_by_kind": dict(sorted(self.dead_letters_by_kind.items())),
            "duplicates": self.duplicates,
            "duplicated_inputs": self.duplicated_inputs,
            "lost": len(self.lost),
            "unexpected": len(self.unexpected),
            "wrong_id": len(self.wrong_id),
            "mixed": len(self.mixed),
        }


def outcome(record: Mapping[str, Any]) -> str:
    """`labelled`, or the dead letter's kind."""
    return str(record["kind"]) if "kind" in record else "labelled"


def answer_id(record: Mapping[str, Any]) -> str | None:
    return record.get("event_id") if "kind" in record else record.get("id")


def account(sent: Mapping[Coord, str | None], answers: Iterable[Mapping[str, Any]]) -> Ledger:
    """Match every answer to the input it names. `sent` maps coordinates to the input's id
    (None when the record has no readable id)."""
    copies: Counter[Coord] = Counter()
    kinds: dict[Coord, set[str]] = {}
    by_kind: Counter[str] = Counter()
    outputs = 0
    wrong: set[Coord] = set()
    unexpected: set[Coord] = set()
    for rec in answers:
        coord = (int(rec["source_partition"]), int(rec["source_offset"]))
        kind = outcome(rec)
        if kind == "labelled":
            outputs += 1
        else:
            by_kind[kind] += 1
        if coord not in sent:
            unexpected.add(coord)
            continue
        copies[coord] += 1
        kinds.setdefault(coord, set()).add(kind)
        expected_id, got_id = sent[coord], answer_id(rec)
        if expected_id is not None and got_id is not None and got_id != expected_id:
            wrong.add(coord)
    return Ledger(
        events=len(sent),
        answered=len(copies),
        outputs=outputs,
        dead_letters=sum(by_kind.values()),
        dead_letters_by_kind=dict(by_kind),
        duplicates=sum(n - 1 for n in copies.values()),
        duplicated_inputs=sum(1 for n in copies.values() if n > 1),
        lost=sorted(c for c in sent if c not in copies),
        unexpected=sorted(unexpected),
        wrong_id=sorted(wrong),
        mixed=sorted(c for c, k in kinds.items() if len(k) > 1),
    )


def uncommitted_window(
    answers: Iterable[Mapping[str, Any]], worker_id: str, committed: Mapping[int, int]
) -> int:
    """Answers that `worker_id` wrote at or past the group's committed offset of their
    partition, read right after that worker was killed: exactly what a successor redoes."""
    return sum(
        1
        for rec in answers
        if rec.get("worker_id") == worker_id
        and int(rec["source_offset"]) >= committed.get(int(rec["source_partition"]), 0)
    )
