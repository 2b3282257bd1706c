"""`streamclf dlq inspect` and `dlq replay` against the real broker."""

from __future__ import annotations

import json

import pytest

from admin.dlq_replay import bookmark_group
from bus.bookmark import Chunk, open_bookmark
from bus.reading import read_until_quiet
from schemas.deadletter import DeadLetter, ErrorKind
from tests.cli import one_line_error, streamclf
from tests.integration.harness import (
    collect,
    committed_equals_high_water,
    committed_offsets,
    make_topics,
    produce,
)

pytestmark = pytest.mark.integration


def _letter(kind: ErrorKind, value: bytes | None, offset: int, **fields: object) -> bytes:
    letter = DeadLetter(
        kind=kind,
        message="test",
        key_b64=DeadLetter.encode_bytes(b"k%d" % offset),
        value_b64=DeadLetter.encode_bytes(value),
        source_topic="in",
        source_partition=0,
        source_offset=offset,
    )
    return letter.model_copy(update=fields).model_dump_json().encode()


def _event(event_id: str) -> bytes:
    return json.dumps({"id": event_id, "text": "北京两会"}, ensure_ascii=False).encode()


async def _values(broker, topic: str) -> list[bytes | None]:
    return [r.value for r in await read_until_quiet(broker, [topic], quiet_s=1.0)]


def _replay(broker, dlq: str, target: str, *extra: str, **env: str):
    bootstrap = broker.bootstrap_servers
    return streamclf("dlq", "replay", dlq, "--to", target, *extra, "-b", bootstrap, **env)


async def test_inspect_and_replay(broker, uid):
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    await produce(
        broker,
        dlq,
        [
            _letter(ErrorKind.INFERENCE, _event("g1"), 0),
            _letter(ErrorKind.DECODE, b"\xff", 1),
            _letter(ErrorKind.TOMBSTONE, None, 2),
        ],
    )
    bootstrap = ["-b", broker.bootstrap_servers]
    shown = streamclf("dlq", "inspect", dlq, "--json", *bootstrap)
    assert shown.returncode == 0, shown.stderr
    letters = json.loads(shown.stdout)
    assert [letter["kind"] for letter in letters] == ["inference", "decode", "tombstone"]
    table = streamclf("dlq", "inspect", dlq, *bootstrap)
    assert "inference: 1" in table.stdout and "in[0]@1" in table.stdout
    replay = _replay(broker, dlq, target)
    assert replay.returncode == 0, replay.stderr
    assert "replayed 1 of 3" in replay.stdout
    resent = await collect(broker, [target], 1, 20, quiet_s=1)
    assert resent == [{"id": "g1", "text": "北京两会", "_topic": target, "_key": b"k0"}]


async def test_replay_twice_sends_only_what_arrived_since(broker, uid):
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 2)
    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, _event(f"a{i}"), i) for i in range(4)])
    first = _replay(broker, dlq, target)
    assert first.returncode == 0, first.stderr
    assert "replayed 4 of 4" in first.stdout
    assert await committed_equals_high_water(broker, dlq, bookmark_group(dlq, target))

    second = _replay(broker, dlq, target)
    assert second.returncode == 0, second.stderr
    assert "replayed 0 of 0" in second.stdout

    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, _event("b0"), 9)])
    third = _replay(broker, dlq, target)
    assert "replayed 1 of 1" in third.stdout, third.stdout + third.stderr
    ids = sorted(json.loads(v or b"null")["id"] for v in await _values(broker, target))
    assert ids == ["a0", "a1", "a2", "a3", "b0"]  # each once

    again = _replay(broker, dlq, target, "--from-start")  # deliberately, everything again
    assert "replayed 5 of 5" in again.stdout, again.stdout + again.stderr
    assert len(await _values(broker, target)) == 10


@pytest.mark.parametrize(
    "target",
    [
        "{dlq}",
        "other.dlq",
        "in-{uid}.labelled",
        "in-{uid}.shadow",
        "streamclf.control",
        "streamclf.status",
        "streamclf.train.jobs",
        "streamclf.train.feedback",
        "routed-out-{uid}",
        "__consumer_offsets",
        "[/]evil",
    ],
)
async def test_replay_refuses_targets_that_are_not_inputs(broker, uid, target):
    dlq = f"in-{uid}.dlq"
    await make_topics(broker, [dlq], 1)
    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, _event("g1"), 0)])
    to = target.format(dlq=dlq, uid=uid)
    routes = f"in-{uid}=news:routed-out-{uid}"
    proc = streamclf(
        "dlq", "replay", dlq, "--to", to, "-b", broker.bootstrap_servers, STREAMCLF_ROUTES=routes
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "refused" in one_line_error(proc)


async def test_refused_labelled_topic_gets_nothing(broker, uid):
    dlq, labelled = f"in-{uid}.dlq", f"in-{uid}.labelled"
    await make_topics(broker, [dlq, labelled], 1)
    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, _event("g1"), 0)])
    assert _replay(broker, dlq, labelled).returncode == 2
    assert await _values(broker, labelled) == []


async def test_dry_run_lists_and_sends_nothing(broker, uid):
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    await produce(
        broker,
        dlq,
        [
            _letter(ErrorKind.INFERENCE, _event("g1"), 0, event_id="g1"),
            _letter(ErrorKind.DECODE, b"\xff", 1),
        ],
    )
    dry = _replay(broker, dlq, target, "--dry-run", COLUMNS="40")
    assert dry.returncode == 0, dry.stderr
    assert f"would send {dlq}[0]@0 (inference, event g1, " in dry.stdout
    assert f"{dlq}[0]@1" not in dry.stdout
    # One line each, however narrow the terminal.
    assert f"would replay 1 of 2 dead letters to {target} (1 still invalid" in dry.stdout
    assert await _values(broker, target) == []
    assert await committed_offsets(broker, dlq, bookmark_group(dlq, target)) == {0: 0}
    real = _replay(broker, dlq, target)  # the dry run remembered nothing
    assert "replayed 1 of 2" in real.stdout, real.stdout + real.stderr


async def test_unreadable_dead_letters_are_skipped_and_reported(broker, uid):
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    records: list[bytes | None] = [
        b"\xff\xfe garbage",
        b"[" * 5000 + b"]" * 5000,
        _letter(ErrorKind.INFERENCE, None, 2, value_b64="!!! not base64 !!!"),
        None,  # a tombstone on the DLQ
        _letter(ErrorKind.INFERENCE, _event("big"), 4, message="x" * 200_000),
        b'{"kind": "inference", "message": "[/]evil"}',  # no coordinates
        _letter(ErrorKind.INFERENCE, _event("g1"), 6),
    ]
    await produce(broker, dlq, records)
    proc = _replay(broker, dlq, target, "--max-bytes", "10000")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "replayed 1 of 1" in proc.stdout and "6 unreadable skipped" in proc.stdout
    for offset, reason in [
        (0, "not a dead letter"),
        (1, "not a dead letter"),
        (2, "bad base64"),
        (3, "tombstone"),
        (4, "too large"),
        (5, "not a dead letter"),
    ]:
        assert f"skipped {dlq}[0]@{offset}: {reason}" in proc.stderr, proc.stderr
    resent = await collect(broker, [target], 1, 20, quiet_s=1)
    assert [r["id"] for r in resent] == ["g1"]
    inspect = streamclf("dlq", "inspect", dlq, "--json", "-b", broker.bootstrap_servers)
    assert inspect.returncode == 0, inspect.stderr
    assert len(json.loads(inspect.stdout)) == 2  # the big one and g1; the rest skipped


async def test_a_letter_the_broker_refuses_is_reported_and_passed(broker, uid):
    """One dead letter too large to re-send does not stop the replay, nor every later one."""
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    big = json.dumps({"id": "big", "text": "长" * 20_000}, ensure_ascii=False).encode()
    letters = [_event("a"), big, _event("c")]
    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, v, i) for i, v in enumerate(letters)])
    limits = {"STREAMCLF_KAFKA_MAX_MESSAGE_BYTES": "20000"}  # the producer's request limit
    proc = _replay(broker, dlq, target, "--max-bytes", "100000", **limits)
    assert proc.returncode == 0, proc.stderr
    assert "replayed 2 of 3" in proc.stdout and "1 refused by the broker" in proc.stdout
    assert f"skipped {dlq}[0]@1: refused by {target}: MessageSizeTooLargeError" in proc.stderr
    assert [r["id"] for r in await collect(broker, [target], 2, 20, quiet_s=1)] == ["a", "c"]
    assert await committed_equals_high_water(broker, dlq, bookmark_group(dlq, target))


async def test_a_bookmark_past_the_end_starts_over(broker, uid):
    """A DLQ deleted and created again: the old bookmark is beyond its end, and would hide
    every new dead letter; the replay starts from the beginning instead."""
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    await produce(broker, dlq, [_letter(ErrorKind.INFERENCE, _event("n1"), 0)])
    async with open_bookmark(broker, dlq, bookmark_group(dlq, target)) as mark:
        await mark.advance(Chunk([], {0: 1000}))  # what the old topic had reached
    proc = _replay(broker, dlq, target)
    assert "replayed 1 of 1" in proc.stdout, proc.stdout + proc.stderr
