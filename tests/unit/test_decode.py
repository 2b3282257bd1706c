"""Decoding never raises: every bad value gets a kind and a readable reason."""

import json

import pytest

from schemas.deadletter import ErrorKind
from schemas.events import TextEvent
from worker.decode import Rejected, decode_event


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, ErrorKind.TOMBSTONE),
        (b"\xff\xfe", ErrorKind.DECODE),
        (b"not json", ErrorKind.DECODE),
        (b"[1]", ErrorKind.SCHEMA),
        (b'{"id": "a"}', ErrorKind.EMPTY_TEXT),
        (b'{"id": "a", "text": ""}', ErrorKind.EMPTY_TEXT),
        (b'{"id": "a", "text": " \\n\\t"}', ErrorKind.EMPTY_TEXT),
        (b'{"id": 1, "text": "x"}', ErrorKind.SCHEMA),
        (b'{"text": "x"}', ErrorKind.SCHEMA),
        (b'{"id": "a", "text": 5}', ErrorKind.SCHEMA),
        (b'{"id": "", "text": "x"}', ErrorKind.SCHEMA),
        (b"x" * 101, ErrorKind.TOO_LARGE),
    ],
)
def test_rejections(value: bytes | None, kind: ErrorKind) -> None:
    result = decode_event(value, max_bytes=100)
    assert isinstance(result, Rejected)
    assert result.kind == kind
    assert result.message


def test_valid_event_with_unknown_fields() -> None:
    raw = json.dumps(
        {"id": "a", "text": "北京", "text_pair": "两会", "metadata": {"k": 1}, "unknown": True},
        ensure_ascii=False,
    ).encode()
    event = decode_event(raw, max_bytes=1000)
    assert isinstance(event, TextEvent)
    assert (event.id, event.text, event.text_pair, event.metadata) == (
        "a",
        "北京",
        "两会",
        {"k": 1},
    )
