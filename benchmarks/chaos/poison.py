"""The chaos run's input: good text events with poison records of every class mixed in.

Every poison class is something a producer can really send and that must end as a dead
letter (never a labelled event, never a stuck worker).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

OVERSIZE_BYTES = 1_100_000  # over the worker's default max_message_bytes (1,000,000)
TEXTS = [
    "北京上个月召开了两会",
    "这家酒店的服务非常好",
    "国足再次输球，球迷失望",
    "央行宣布降准",
    "质量太差了，不推荐",
    "新电影票房突破十亿",
]


def _event(event_id: str, text: str, **extra: object) -> bytes:
    return json.dumps({"id": event_id, "text": text, **extra}, ensure_ascii=False).encode()


def _raw(template: str) -> Callable[[str], bytes]:
    """A poison record written as JSON text (escapes kept as written); `{id}` is filled in."""
    return lambda pid: template.replace("{id}", pid).encode()


POISON: dict[str, Callable[[str], bytes | None]] = {
    "invalid_utf8": lambda pid: f'{{"id":"{pid}","text":"'.encode() + b'\xff\xfe\xed\xa0\x80"}',
    "not_json": lambda pid: f"just words, not JSON {pid}".encode(),
    "lone_surrogate_text": _raw('{"id":"{id}","text":"\\ud800 北京"}'),
    "lone_surrogate_pair": _raw('{"id":"{id}","text":"北京","text_pair":"\\udfff"}'),
    "lone_surrogate_metadata": _raw('{"id":"{id}","text":"北京","metadata":{"\\udc00":1}}'),
    "nul_only": _raw('{"id":"{id}","text":"\\u0000\\u0000\\u0000"}'),
    "invisible_only": _raw('{"id":"{id}","text":"\\u200b\\ufeff\\u3164 \\u2060"}'),
    "deep_metadata": lambda pid: _raw(
        '{"id":"{id}","text":"北京","metadata":' + '{"a":' * 200 + "1" + "}" * 200 + "}"
    )(pid),
    "deep_document": lambda pid: ("[" * 5000 + "]" * 5000).encode(),
    "nan": _raw('{"id":"{id}","text":"北京","metadata":{"x":NaN}}'),
    "infinity": _raw('{"id":"{id}","text":"北京","metadata":{"x":-Infinity}}'),
    "huge_float": _raw('{"id":"{id}","text":"北京","metadata":{"x":1e400}}'),
    "huge_int": lambda pid: (
        _raw('{"id":"{id}","text":"北京","metadata":{"x":1' + "0" * 400)(pid) + b"}}"
    ),
    "missing_text": _raw('{"id":"{id}"}'),
    "empty_text": _raw('{"id":"{id}","text":""}'),
    "wrong_type_id": _raw('{"id":7,"text":"北京"}'),
    "wrong_type_text": _raw('{"id":"{id}","text":["北京"]}'),
    "not_an_object": _raw('["{id}", "北京"]'),
    "oversized": lambda pid: _event(pid, "大" * (OVERSIZE_BYTES // 3 + 10)),
    "tombstone": lambda pid: None,
}
RARE = {"oversized": 25}
# Records for the control topic (compacted: each under its own key, so restarts read it too)
# Control-topic poison, written before the workers start: each start folds them and must skip
# them (counted as rejected), and the running control task must too.
CONTROL_POISON: dict[str, bytes] = {
    "deep_document": b"[" * 2000 + b"]" * 2000,
    "invalid_utf8": b'{"type": "swap", "model": "\xff\xfe"}',
    "lone_surrogate": b'{"type": "swap", "model": "\\ud800", "version": "v1"}',
    "unknown_type": b'{"type": "format-disk", "model": "chaos"}',
    "wrong_types": b'{"type": "swap", "model": 7, "version": [], "sequence": "x"}',
    "not_json": b"swap chaos v2 please",
    "huge": b'{"type": "swap", "model": "' + b"x" * 200_000 + b'", "version": "v1"}',
}


def control_poison() -> list[tuple[bytes, bytes]]:
    """(key, value) of every control-topic poison record."""
    return [
        (f"chaos-poison-{kind}".encode(), value) for kind, value in CONTROL_POISON.items()
    ]  # one in N turns of the cycle: these records are large


@dataclass(frozen=True)
class Input:
    """One record to send: its key, value, id (None when it has no readable id) and class."""

    key: bytes
    value: bytes | None
    event_id: str | None
    kind: str  # "good" or a poison class


def inputs(
    events: int, poison_every: int, prefix: str = "c", distinct_texts: int = 900
) -> Iterator[Input]:
    """`events` good events (ids `{prefix}0`, ...), with one poison record after every
    `poison_every` of them, cycling through the poison classes (the rare ones less often).
    Texts cycle after `distinct_texts`, so the cache has repeats to answer."""
    classes = list(POISON)
    turn = 0
    rounds = max(1, distinct_texts // len(TEXTS))
    for i in range(events):
        text = f"{TEXTS[i % len(TEXTS)]}{(i // len(TEXTS)) % rounds}"
        eid = f"{prefix}{i}"
        yield Input(f"k{eid}".encode(), _event(eid, text), eid, "good")
        if poison_every and (i + 1) % poison_every == 0:
            kind = classes[turn % len(classes)]
            cycle = turn // len(classes)
            turn += 1
            if kind in RARE and cycle % RARE[kind]:
                kind = "not_json"
            pid = f"p{turn}"
            yield Input(f"pk{turn}".encode(), POISON[kind](pid), None, kind)
