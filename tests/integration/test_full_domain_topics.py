"""The full-domain generator of the input topic, aimed at the control, jobs, feedback and status
topics while a worker, `trainer serve` and `streamclf status` run (issue 17).

Records: everything `json_text.payloads` writes (escapes over the whole code-point range, lone
surrogates, deep nesting, huge and non-finite numbers, duplicate keys, raw bytes, invalid UTF-8,
tombstones), plus near-misses of each topic's own message (fields dropped, replaced by values
from the same domain, unknown and duplicate keys); control records also come with a forged
signature header or a valid one over bytes that are not a command. The invariant: every process
stays up, every bad record is counted once in `streamclf_rejected_records_total`, the trainer
commits past everything, `status --json` prints valid JSON, and valid commands sent afterwards
are honoured.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bus.producing import sender
from modelstore.presets import init_model
from modelstore.store import ModelStore
from schemas.records import Rejection, decode_feedback, decode_job
from schemas.signing import SIGNATURE_HEADER, sign_value
from tests.conftest import free_port
from tests.fixtures.trainer_data import LABELS
from tests.integration.harness import WorkerProcess, committed_equals_high_water, make_topics
from tests.integration.json_text import json_strings, json_values, payloads, scalars, spaces
from tests.integration.test_hot_swap import cli, make_store, stop_all, topics_env, wait_workers
from tests.integration.test_poison_records import TrainerProcess, metric, wait_until

pytestmark = pytest.mark.integration
EXAMPLES = 20  # each draws up to 4 records per topic: about 150 records in all
NOW_MS = int(time.time() * 1000)
SWAP = {"type": "swap", "model": "news", "version": "v2", "sha256": "0" * 64,
        "requested_at_ms": NOW_MS, "sequence": 10**15}  # fmt: skip
CANARY = {"type": "canary", "model": "news", "version": "v2", "fraction": 1.0,
          "requested_at_ms": NOW_MS, "sequence": 10**15}  # fmt: skip
JOB = {"job_id": "fuzz-job", "model": "sent", "train": "missing.tsv", "dev": "missing.tsv",
       "hyperparameters": {}}  # fmt: skip
FEEDBACK = {"id": "fuzz-fb", "model": "sent", "text": "服务很好", "label": "positive"}
# Heartbeats keep an `at_ms` a minute old: shown as stale, so that they never hold a swap's
# --wait or make `status` exit 1 (future heartbeats are another fix: issue 17, item 3).
STATUS = {"worker_id": "fuzz-w", "host": "h", "pid": 1, "at_ms": NOW_MS - 60_000, "ready": True,
          "routes": {"t": "news"}, "versions": {"news": "v9"}, "lag": {"t[0]": 1}}  # fmt: skip


@st.composite
def near(draw: st.DrawFn, valid: dict[str, Any], fixed: frozenset[str] = frozenset()) -> bytes:
    """`valid` written as JSON text with members dropped, replaced, added and repeated (all
    but the `fixed` ones)."""
    members = []
    for key, value in valid.items():
        choice = draw(st.integers(0, 5)) if key not in fixed else 5
        if choice == 0:
            continue
        text = json.dumps(value, ensure_ascii=False)
        members.append((json.dumps(key), draw(json_values | scalars) if choice == 1 else text))
    if draw(st.integers(0, 3)) == 0:
        members.append((draw(json_strings), draw(json_values)))
    free = [m for m in members if json.loads(m[0]) not in fixed]
    if free and draw(st.booleans()):
        key, _ = draw(st.sampled_from(free))
        members.append((key, draw(scalars)))
    members = draw(st.permutations(members))
    sep = draw(spaces)
    return ("{" + ("," + sep).join(f"{k}:{sep}{v}" for k, v in members) + "}").encode()


def records(*valid: dict[str, Any], fixed: frozenset[str] = frozenset()) -> Any:
    return st.one_of(payloads, *(near(v, fixed) for v in valid))


HEADERS = st.sampled_from(["none", "forged", "valid"])
control_records = st.one_of(
    st.tuples(payloads, HEADERS),  # a valid signature over bytes that are no command
    st.tuples(records(SWAP, CANARY), st.sampled_from(["none", "forged"])),
)


def _headers(kind: str, value: bytes | None, key: str) -> list[tuple[str, bytes]] | None:
    if kind == "none" or value is None:
        return None
    return [(SIGNATURE_HEADER, b"0" * 64 if kind == "forged" else sign_value(key, value))]


async def _send(broker: Any, sent: dict[str, list[Any]], topics: dict[str, str], key: str) -> None:
    async with sender(broker) as out:
        for i, (value, kind) in enumerate(sent["control"]):
            await out.send_many(topics["control"], [(b"fuzz-%d" % i, value)],
                                _headers(kind, value, key))  # fmt: skip
        for name in ("jobs", "feedback", "status"):
            keys = [b"fuzz-%d" % i for i in range(len(sent[name]))]  # a tombstone needs a key
            await out.send_many(topics[name], list(zip(keys, sent[name], strict=True)))


def test_the_whole_domain_on_control_jobs_feedback_and_status_stops_nothing(
    broker, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")  # news: v1 active, v2
    init_model(ModelStore(store), "sent", LABELS, "tiny", seed=0)
    key = f"key-{uid}-0123456789"
    env = topics_env(uid, key)
    port = free_port()
    topic = f"news-{uid}"
    trainer = TrainerProcess(broker, store, tmp_path / "data", uid, tmp_path,
                             env={"STREAMCLF_CONTROL_KEY": key})  # fmt: skip
    topics = {"control": f"control-{uid}", "jobs": trainer.jobs, "feedback": trainer.feedback,
              "status": f"status-{uid}"}  # fmt: skip
    (tmp_path / "data").mkdir()
    asyncio.run(make_topics(broker, [topic, trainer.jobs, trainer.feedback, trainer.results], 1))
    worker = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1",
                           env=env | {"STREAMCLF_METRICS_PORT": str(port)})  # fmt: skip
    sent: dict[str, list[Any]] = {"control": [], "jobs": [], "feedback": [], "status": []}

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(
        control=st.lists(control_records, max_size=4),
        jobs=st.lists(records(JOB), max_size=4),
        feedback=st.lists(records(FEEDBACK), max_size=4),
        status=st.lists(records(STATUS, fixed=frozenset({"at_ms"})), max_size=4),
    )
    def draw(control: list, jobs: list, feedback: list, status: list) -> None:
        for name, batch in (("control", control), ("jobs", jobs), ("feedback", feedback),
                            ("status", status)):  # fmt: skip
            sent[name] += batch

    try:
        worker.start()
        trainer.start()
        asyncio.run(wait_workers(broker, uid, [worker], timeout_s=120))
        draw()
        asyncio.run(_send(broker, sent, topics, key))

        # The trainer answers and commits every record; the worker keeps serving and counting.
        after = {"id": "f-after", "model": "sent", "text": "服务很好，推荐。", "label": "positive"}
        asyncio.run(_send(broker, {"control": [], "jobs": [], "feedback": [json.dumps(after)
                                   .encode()], "status": []}, topics, key))  # fmt: skip
        for name in ("jobs", "feedback"):
            wait_until(
                lambda t=topics[name]: asyncio.run(
                    committed_equals_high_water(broker, t, trainer.group)
                ),
                180,
                f"the trainer's commits on {name}",
                trainer,
            )
        code, out, err = asyncio.run(cli(broker, env, "status", "--json"))
        assert code == 0, f"{out}\n{err}"
        rows = json.loads(out)
        assert "w1" in {r["worker_id"] for r in rows}, rows

        swap = asyncio.run(cli(broker, env, "models", "swap", "news", "v2", "--store",
                               str(store), "--wait", "--timeout", "60"))  # fmt: skip
        assert swap[0] == 0, swap
        final = asyncio.run(wait_workers(broker, uid, [worker], lambda s: s["w1"].versions ==
                                         {"news": "v2"}))  # fmt: skip
        control_counted = sum(
            metric(port, "streamclf_rejected_records_total", topic_kind="control", reason=r)
            for r in ("tombstone", "too_large", "decode", "schema", "unknown_type", "unsigned",
                      "bad_signature")
        )  # fmt: skip
        counted = {
            kind: sum(
                metric(trainer.port, "streamclf_rejected_records_total", topic_kind=kind, reason=r)
                for r in ("tombstone", "too_large", "decode", "schema")
            )
            for kind in ("job", "feedback")
        }
        assert worker.alive() and trainer.alive(), trainer.log()
    finally:
        stop_all([worker])
        trainer.stop()
    assert final["w1"].ready
    # With a key, no record of the fuzz is a command: every one but a tombstone is counted.
    assert control_counted == sum(v is not None for v, _ in sent["control"]), worker.log()
    assert counted == {
        "job": sum(isinstance(decode_job(v), Rejection) for v in sent["jobs"]),
        "feedback": sum(isinstance(decode_feedback(v), Rejection) for v in sent["feedback"]),
    }
    assert counted["job"] and counted["feedback"] and control_counted
    lines = (store / ".feedback" / "sent" / "feedback.jsonl").read_text(encoding="utf-8")
    assert "f-after" in {json.loads(line)["id"] for line in lines.splitlines()}
