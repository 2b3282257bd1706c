"""`streamclf dlq inspect` and `dlq replay` against the real broker."""

from __future__ import annotations

import json
import subprocess

import pytest

from schemas.deadletter import DeadLetter, ErrorKind
from tests.integration.harness import STREAMCLF, collect, make_topics, produce

pytestmark = pytest.mark.integration


def _letter(kind: ErrorKind, value: bytes | None, offset: int) -> bytes:
    return (
        DeadLetter(
            kind=kind,
            message="test",
            key_b64=DeadLetter.encode_bytes(b"k%d" % offset),
            value_b64=DeadLetter.encode_bytes(value),
            source_topic="in",
            source_partition=0,
            source_offset=offset,
        )
        .model_dump_json()
        .encode()
    )


async def test_inspect_and_replay(broker, uid):
    dlq, target = f"in-{uid}.dlq", f"in-{uid}"
    await make_topics(broker, [dlq, target], 1)
    good = json.dumps({"id": "g1", "text": "北京两会"}, ensure_ascii=False).encode()
    await produce(
        broker,
        dlq,
        [
            _letter(ErrorKind.INFERENCE, good, 0),
            _letter(ErrorKind.DECODE, b"\xff", 1),
            _letter(ErrorKind.TOMBSTONE, None, 2),
        ],
    )
    base = [STREAMCLF, "dlq"]
    bootstrap = ["-b", broker.bootstrap_servers]
    shown = subprocess.run(
        [*base, "inspect", dlq, "--json", *bootstrap],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    letters = json.loads(shown.stdout)
    assert [letter["kind"] for letter in letters] == ["inference", "decode", "tombstone"]
    table = subprocess.run(
        [*base, "inspect", dlq, *bootstrap], capture_output=True, text=True, check=True, timeout=60
    )
    assert "inference: 1" in table.stdout and "in[0]@1" in table.stdout
    replay = subprocess.run(
        [*base, "replay", dlq, "--to", target, *bootstrap],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "replayed 1 of 3" in replay.stdout
    resent = await collect(broker, [target], 1, 20, quiet_s=1)
    assert resent == [{"id": "g1", "text": "北京两会", "_topic": target, "_key": b"k0"}]
