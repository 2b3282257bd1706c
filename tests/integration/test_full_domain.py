"""Property test over the whole input domain, against a running worker on the real broker.

Records are JSON text written escape by escape (full code-point range, lone surrogates,
controls, NUL, surrogate pairs), deep nesting, huge and non-finite numbers, duplicate keys,
the same inside `text_pair` and `metadata`, plus raw random bytes and invalid UTF-8.
The invariant: every offset ends as exactly one labelled event or dead letter (the one a
strict reference parser expects), the worker is still serving afterwards, and a worker
restarted in the same group has nothing left to redo.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmarks.chaos.ledger import account, outcome
from tests.integration.harness import (
    WorkerProcess,
    collect,
    committed_equals_high_water,
    make_topics,
    produce,
)
from tests.integration.json_text import expected_outcome, payloads

pytestmark = pytest.mark.integration
EXAMPLES = 40  # batches of up to 12 records: a few hundred records in all


def _sentinel(name: str) -> bytes:
    return json.dumps({"id": name, "text": "北京上个月召开了两会"}, ensure_ascii=False).encode()


def test_every_record_of_the_whole_domain_ends_exactly_once(broker, tiny_store, uid, tmp_path):
    topic, group = f"dom-{uid}", f"g-{uid}"
    outs = [f"{topic}.labelled", f"{topic}.dlq"]
    asyncio.run(make_topics(broker, [topic, *outs], 2))
    route = [f"{topic}=news"]
    env = {"STREAMCLF_COMMIT_INTERVAL_MS": "200"}
    first = WorkerProcess(broker, tiny_store, route, group, tmp_path, "first", env).start()
    sent: dict[tuple[int, int], bytes | None] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(batch=st.lists(payloads, min_size=1, max_size=12))
    def send(batch: list[bytes | None]) -> None:
        keys = [str(len(sent) + i).encode() for i in range(len(batch))]
        coords = asyncio.run(produce(broker, topic, batch, keys=keys))
        sent.update(zip(coords, batch, strict=True))

    try:
        send()
        # Still serving: a valid event sent after everything else gets labelled.
        (after,) = asyncio.run(produce(broker, topic, [_sentinel("after")], keys=[b"s1"]))
        out = asyncio.run(collect(broker, outs, len(sent) + 1, 180, quiet_s=2))
        assert first.alive(), first.log()
    finally:
        assert first.stop() == 0, first.log()
    assert any(o.get("id") == "after" and o["_topic"] == outs[0] for o in out), first.log()
    ids = {c: None for c in sent} | {after: "after"}
    ledger = account(ids, out)
    assert not ledger.lost, f"{len(ledger.lost)} offsets never answered: {ledger.lost[:10]}"
    assert ledger.duplicates == 0 and not ledger.unexpected, ledger.figures()

    by_coord = {(o["source_partition"], o["source_offset"]): outcome(o) for o in out}
    wrong = []
    for coord, raw in sent.items():
        want, got = expected_outcome(raw), by_coord[coord]
        if want != "any" and (want == "labelled") != (got == "labelled"):
            wrong.append((coord, want, got, raw if raw is None else raw[:200]))
    assert not wrong, f"{len(wrong)} records got the wrong outcome, e.g. {wrong[:5]}"
    outcomes = Counter(by_coord[c] for c in sent)
    assert outcomes["labelled"] and len(outcomes) > 3, outcomes  # the domain was covered

    # Nothing left to redo: the group's commits reach the end, and a worker restarted in the
    # same group answers only what is new.
    assert asyncio.run(committed_equals_high_water(broker, topic, group))
    second = WorkerProcess(broker, tiny_store, route, group, tmp_path, "second", env).start()
    try:
        asyncio.run(produce(broker, topic, [_sentinel("restart")], keys=[b"s2"]))
        again = asyncio.run(collect(broker, outs, len(out) + 1, 120, quiet_s=3))
        assert second.alive(), second.log()
    finally:
        assert second.stop() == 0, second.log()
    redone = [o for o in again if o.get("worker_id") == "second" and o.get("id") != "restart"]
    assert not redone, f"restarted worker redid {len(redone)} records"
    assert len(again) == len(out) + 1
    assert asyncio.run(committed_equals_high_water(broker, topic, group))
