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
    assert "sequence length is longer" not in worker.log_path.read_text(errors="replace")


# The property test over the whole input domain is tests/integration/test_full_domain.py.


async def test_an_output_the_broker_refuses_is_a_publish_dead_letter(
    broker, tiny_store, uid, tmp_path
):
    """An input just under the size limit whose labelled event (the input's metadata plus the
    label) is over it: the producer refuses that record for good; it becomes a `publish` dead
    letter with the input's bytes, and the events around it are labelled."""
    topic = f"big-{uid}"
    await make_topics(broker, [topic, f"{topic}.labelled", f"{topic}.dlq"], 1)
    limit = 200_000
    big = {"id": "big1", "text": "北京", "metadata": {"pad": ""}}
    pad = limit - 200 - len(json.dumps(big, ensure_ascii=False).encode())
    big["metadata"]["pad"] = "x" * pad
    values = [
        json.dumps({"id": "ok-a", "text": "国足输球"}, ensure_ascii=False).encode(),
        json.dumps(big, ensure_ascii=False).encode(),
        json.dumps({"id": "ok-b", "text": "央行宣布降准"}, ensure_ascii=False).encode(),
    ]
    assert len(values[1]) < limit
    env = {
        "STREAMCLF_MAX_MESSAGE_BYTES": str(limit),
        "STREAMCLF_KAFKA_MAX_MESSAGE_BYTES": str(limit),
    }
    await produce(broker, topic, values)
    worker = WorkerProcess(broker, tiny_store, [f"{topic}=news"], f"g-{uid}", tmp_path, env=env)
    worker.start()
    try:
        out = await collect(broker, [f"{topic}.labelled", f"{topic}.dlq"], 3, 90, 2)
        assert worker.alive(), worker.log()
    finally:
        assert worker.stop() == 0, worker.log()
    by_offset = {o["source_offset"]: o for o in out}
    assert len(out) == 3 == len(by_offset)
    assert by_offset[0]["_topic"] == by_offset[2]["_topic"] == f"{topic}.labelled"
    letter = by_offset[1]
    assert letter["_topic"] == f"{topic}.dlq" and letter["kind"] == "publish", letter
    assert letter["event_id"] == "big1" and "MessageSizeTooLarge" in letter["message"]
    assert values[1].startswith(base64.b64decode(letter["value_b64"]))
