"""Decoding never raises: every bad value gets a kind and a readable reason."""

import json

import orjson
import pytest

from schemas.deadletter import ErrorKind
from schemas.decoding import MAX_DEPTH, Rejected, decode_event
from schemas.events import TextEvent


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


@pytest.mark.parametrize(
    "value",
    [
        b'{"id": "a", "text": "abc\\ud800"}',  # used to pass decoding and kill the worker
        b'{"id": "a", "text": "\\udc00x"}',
        b'{"id": "a", "text": "x", "text_pair": "\\ud83d"}',
        b'{"id": "\\ud800", "text": "x"}',
        b'{"id": "a", "text": "x", "metadata": {"\\udfff": 1}}',
        b'{"id": "a", "text": "x", "metadata": {"k": ["\\ud800"]}}',
        b'{"id": "a", "text": "\xed\xa0\x80"}',  # a surrogate encoded as raw bytes
        b'{"id": "a", "text": "x", "metadata": {"k": NaN}}',
        b'{"id": "a", "text": "x", "metadata": {"k": -Infinity}}',
        b'{"id": "a", "text": "x", "metadata": {"k": 1e999}}',
        b'\xef\xbb\xbf{"id": "a", "text": "x"}',
    ],
)
def test_what_utf8_or_finite_json_cannot_carry_is_a_decode_error(value: bytes) -> None:
    result = decode_event(value, max_bytes=1000)
    assert isinstance(result, Rejected), result
    assert result.kind == ErrorKind.DECODE and result.message


@pytest.mark.parametrize(
    "text",
    [
        "\\u0000",
        "\\u0000\\u0000 ",
        "\\u200b\\u200d\\ufeff",
        "\\u3164\\u2800",
        "\\u2028\\u00a0\\u3000",
    ],
)
def test_invisible_only_text_is_empty(text: str) -> None:
    result = decode_event(b'{"id": "a", "text": "' + text.encode() + b'"}', max_bytes=1000)
    assert isinstance(result, Rejected), result
    assert result.kind == ErrorKind.EMPTY_TEXT


def test_visible_text_with_invisible_characters_is_kept() -> None:
    event = decode_event(b'{"id": "a", "text": "\\u200b\\u0000x\\u200b"}', max_bytes=1000)
    assert isinstance(event, TextEvent) and event.text == "\u200b\x00x\u200b"


def test_nesting_past_the_limit_is_refused_and_below_it_kept() -> None:
    def nested(depth: int) -> bytes:
        return (
            b'{"id": "a", "text": "x", "metadata": '
            + b'{"k": ' * depth
            + b"1"
            + b"}" * depth
            + b"}"
        )

    assert isinstance(decode_event(nested(MAX_DEPTH), max_bytes=10_000), TextEvent)
    deep = decode_event(nested(MAX_DEPTH + 1), max_bytes=10_000)
    assert isinstance(deep, Rejected) and deep.kind == ErrorKind.SCHEMA
    too_deep_for_json = decode_event(nested(2000), max_bytes=100_000)
    assert isinstance(too_deep_for_json, Rejected)


def test_duplicate_keys_last_wins_and_huge_ints_become_doubles() -> None:
    raw = (
        b'{"id": "a", "text": "x", "text": "y", "metadata": {"n": 123456789012345678901234567890}}'
    )
    event = decode_event(raw, max_bytes=1000)
    assert isinstance(event, TextEvent) and event.text == "y"
    assert event.metadata == {"n": 1.2345678901234568e29}
    again = orjson.dumps(event.model_dump())  # serialises again
    assert orjson.loads(again)["metadata"] == event.metadata
