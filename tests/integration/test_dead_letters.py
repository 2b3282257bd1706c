"""Bad input never stops a worker: every input offset ends as a labelled event or a dead letter."""

from __future__ import annotations

import base64
import json

import pytest

from tests.integration.harness import WorkerProcess, collect, make_topics, produce

pytestmark = pytest.mark.integration

LONG_TEXT = "北京上个月召开了两会，会议讨论了经济发展。" * 100  # ~2000 characters
CASES: list[tuple[str, bytes | None, str]] = [
    ("invalid-utf8", b"\xff\xfe\xfa not utf-8", "decode"),
    ("not-json", b"just some words", "decode"),
    ("json-array", b"[1, 2, 3]", "schema"),
    ("json-string", b'"a string"', "schema"),
    ("missing-text", b'{"id": "m1"}', "empty_text"),
    ("empty-text", b'{"id": "m2", "text": ""}', "empty_text"),
    ("blank-text", b'{"id": "m3", "text": "  \\t\\n "}', "empty_text"),
    ("id-wrong-type", b'{"id": 7, "text": "abc"}', "schema"),
    ("text-wrong-type", b'{"id": "m4", "text": 123}', "schema"),
    ("pair-wrong-type", b'{"id": "m5", "text": "abc", "text_pair": ["x"]}', "schema"),
    (
        "too-large",
        json.dumps(
            {"id": "big", "text": "大" * (10 * 1024 * 1024 // 3)}, ensure_ascii=False
        ).encode(),
        "too_large",
    ),
    ("tombstone", None, "tombstone"),
    # valid JSON that UTF-8 cannot carry: this one used to stop the worker on every restart
    ("lone-surrogate", b'{"id": "s1", "text": "abc\\ud800"}', "decode"),
    ("surrogate-in-metadata", b'{"id": "s2", "text": "x", "metadata": {"\\udc00": 1}}', "decode"),
    ("nan-metadata", b'{"id": "n1", "text": "x", "metadata": {"v": NaN}}', "decode"),
    ("invisible-text", b'{"id": "z1", "text": "\\u200b\\u0000\\u3164"}', "empty_text"),
    (
        "deep-metadata",
        b'{"id": "d1", "text": "x", "metadata": ' + b"[" * 100 + b"]" * 100 + b"}",
        "schema",
    ),
    (
        "odd-but-fine",
        b'{"id": "f1", "text": "\\ud83d\\ude00 ok", "text": "\\u0000x", "metadata": {"n": 1e308, "big": 123456789012345678901234567890}}',
        "labelled",
    ),
    (
        "extra-fields",
        json.dumps(
            {"id": "ok1", "text": "新电影票房", "extra": {"a": 1}}, ensure_ascii=False
        ).encode(),
        "labelled",
    ),
    (
        "over-long",
        json.dumps({"id": "long1", "text": LONG_TEXT}, ensure_ascii=False).encode(),
        "labelled",
    ),
    (
        "good",
        json.dumps({"id": "ok2", "text": "国足输球"}, ensure_ascii=False).encode(),
        "labelled",
    ),
]


async def test_each_kind_of_bad_input_becomes_a_dead_letter(broker, tiny_store, uid, tmp_path):
    topic = f"bad-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    values = [v for _, v, _ in CASES]
    await produce(broker, topic, values, keys=[name.encode() for name, _, _ in CASES])
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path).start()
    try:
        out = await collect(broker, [f"{topic}.labelled", f"{topic}.dlq"], len(CASES), 90, 2)
        assert worker.alive(), worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
    by_offset = {o["source_offset"]: o for o in out}
    assert len(out) == len(CASES) == len(by_offset), "one output per input offset"
    for offset, (name, value, expected) in enumerate(CASES):
        got = by_offset[offset]
        if expected == "labelled":
            assert got["_topic"] == f"{topic}.labelled", (name, got)
            continue
        assert got["_topic"] == f"{topic}.dlq", (name, got)
        assert got["kind"] == expected, (name, got)
        assert got["message"] and got["source_topic"] == topic and got["worker_id"] == "w1"
        assert got["key_b64"] and base64.b64decode(got["key_b64"]) == name.encode()
        if value is None:
            assert got["value_b64"] is None
        elif expected != "too_large":
            assert base64.b64decode(got["value_b64"]) == value, "original bytes are kept"
        else:
            assert value.startswith(base64.b64decode(got["value_b64"])), "a prefix is kept"
    long_out = next(o for o in out if o.get("id") == "long1")
    assert long_out["truncated"] is True
    assert next(o for o in out if o.get("id") == "ok2")["truncated"] is False


# The property test over the whole input domain is tests/integration/test_full_domain.py.
