"""Shadow and canary rollouts end to end: CLI, real worker processes, real broker, tiny models."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from bus.rollout import read_to_end
from bus.settings import KafkaSettings
from schemas.control import CanaryModel
from schemas.status import WorkerStatus
from tests.conftest import free_port
from tests.integration.harness import WorkerProcess, collect, make_topics, produce, text_events
from tests.integration.test_hot_swap import cli, make_store, stop_all, topics_env, wait_workers
from worker.rollout import in_canary, in_shadow

pytestmark = pytest.mark.integration
FRACTION = 0.3


def has_rollout(kind: str, version: str | None) -> object:
    """A `wait_workers` check: every worker reports `kind` of `version` in force (None: none)."""

    def check(latest: dict[str, WorkerStatus]) -> bool:
        found = [{r.version for r in s.rollouts if r.kind == kind} for s in latest.values()]
        return all(f == ({version} if version else set()) for f in found)

    return check


def once_each(outputs: list[dict], ids: set[str]) -> dict[str, dict]:
    """Every id exactly once among `outputs` (restricted to `ids`); by id."""
    mine = [o for o in outputs if o["id"] in ids]
    counts = Counter(o["id"] for o in mine)
    assert set(counts) == ids, f"missing {len(ids - set(counts))} ids"
    assert max(counts.values()) == 1, f"duplicates: {[i for i, c in counts.items() if c > 1][:5]}"
    return {o["id"]: o for o in mine}


async def round_of(
    broker: KafkaSettings, topic: str, prefix: str, n: int, keys: list[bytes | None]
) -> set[str]:
    events = text_events(n, prefix)
    await produce(broker, topic, events, keys)
    return {f"{prefix}{i}" for i in range(n)}


async def test_shadow_samples_by_id_compare_and_promote_gate(
    broker: KafkaSettings, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")
    topic, env, n = f"news-{uid}", topics_env(uid), 400
    feedback_topic = f"feedback-{uid}"
    await make_topics(broker, [topic, feedback_topic], 2)
    port = free_port()
    metrics_env = {
        **env,
        "STREAMCLF_METRICS_PORT": str(port),
        "STREAMCLF_METRICS_HOST": "127.0.0.1",
    }
    w1 = WorkerProcess(
        broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1", env=metrics_env
    )
    workers = [w1.start()]
    common = ("--store", str(store), "--json")
    try:
        await wait_workers(broker, uid, workers)
        code, out, err = await cli(
            broker, env, "models", "shadow", "news", "v2", "--fraction", str(FRACTION),
            "--wait", "--timeout", "60", *common,
        )  # fmt: skip
        assert code == 0, f"{out}\n{err}\n{w1.log()}"
        ids = await round_of(broker, topic, "a", n, None)
        first = {i for i in ids if in_shadow(i, FRACTION)}
        await collect(broker, [f"{topic}.shadow"], len(first))  # round a done by the first run
        # a worker that starts later (here: a restart) joins the shadow from the control topic
        stop_all(workers)
        workers = [w1.start()]
        await wait_workers(broker, uid, workers, has_rollout("shadow", "v2"))
        ids |= await round_of(broker, topic, "b", n, None)
        labelled = await collect(broker, [f"{topic}.labelled"], 2 * n, quiet_s=2)
        sampled = {i for i in ids if in_shadow(i, FRACTION)}
        shadowed = await collect(broker, [f"{topic}.shadow"], len(sampled), quiet_s=2)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
        status = await cli(broker, env, "status", "--json")
        # feedback: the active version's label (right for it; wrong for the candidate where
        # they disagree) for 40 sampled events
        answers = {o["id"]: o["label"] for o in labelled}
        judged = sorted(sampled)[:40]
        feedback = [
            json.dumps({"id": i, "model": "news", "text": "x", "label": answers[i]}).encode()
            for i in judged
        ]
        await produce(broker, feedback_topic, feedback)
        code, out, err = await cli(
            broker, env, "models", "compare", "news", "v2", "--topic", f"{topic}.shadow",
            "--feedback-topic", feedback_topic, "--json",
        )  # fmt: skip
        assert code == 0, err
        report = json.loads(out)
        agreement = report["agreement"]
        refused = await cli(
            broker, env, "models", "promote", "news", "v2", "--store", str(store), "--force",
            "--require-agreement", f"{agreement + 0.01:.4f}", "--feedback-topic", feedback_topic,
        )  # fmt: skip
        refused_fb = await cli(
            broker, env, "models", "promote", "news", "v2", "--store", str(store), "--force",
            "--require-feedback-accuracy", "1.0001", "--feedback-topic", feedback_topic,
        )  # fmt: skip
        table = await cli(
            broker, env, "models", "compare", "news", "v2", "--topic", f"{topic}.shadow",
            "--feedback-topic", feedback_topic,
        )  # fmt: skip
        print("\n" + table[1])
        code, out, err = await cli(broker, env, "models", "shadow", "news", "--stop", "--wait")
        assert code == 0, f"{out}\n{err}"
        await wait_workers(broker, uid, workers, has_rollout("shadow", None))
        promoted = await cli(
            broker, env, "models", "promote", "news", "v2", "--store", str(store), "--force",
            "--require-agreement", f"{agreement:.4f}", "--feedback-topic", feedback_topic,
        )  # fmt: skip
        await wait_workers(broker, uid, workers, lambda ss: all(
            s.versions.get("news") == "v2" for s in ss.values()
        ))  # fmt: skip
    finally:
        stop_all(workers)

    by_id = once_each(labelled, ids)
    assert {o["version"] for o in by_id.values()} == {"v1"}  # shadow never serves
    results = {r["id"]: r for r in shadowed}
    assert len(shadowed) == len(results) == len(sampled)  # each sampled event once
    assert set(results) == sampled  # exactly the deterministic sample
    assert abs(len(sampled) / len(ids) - FRACTION) < 0.05
    for i, r in results.items():
        assert (r["active_version"], r["candidate_version"]) == ("v1", "v2")
        assert r["active_label"] == by_id[i]["label"]
        assert r["agree"] == (r["active_label"] == r["candidate_label"])
        assert r["candidate_ms"] > 0 and r["_topic"] == f"{topic}.shadow"
    assert report["events"] == len(sampled)
    assert agreement == round(sum(r["agree"] for r in shadowed) / len(shadowed), 4)
    confusion_total = sum(sum(row.values()) for row in report["confusion"].values())
    assert confusion_total == len(sampled) and report["feedback_events"] == 40
    agreeing = sum(results[i]["agree"] for i in judged)
    assert report["candidate_figures"]["feedback_accuracy"] == round(agreeing / 40, 4)
    assert report["active"][0]["feedback_accuracy"] == 1.0
    assert report["candidate_figures"]["throughput_eps"] > 0
    # the restarted worker's gauge: agreement over the events it shadowed (round b)
    mine = [r for r in shadowed if r["id"].startswith("b")]
    gauge = re.search(r'streamclf_shadow_agreement\{model="news",version="v2"\} (\S+)', metrics)
    assert gauge and float(gauge.group(1)) == pytest.approx(
        sum(r["agree"] for r in mine) / len(mine)
    ), metrics
    assert 'streamclf_rollout_fraction{kind="shadow",model="news",version="v2"} 0.3' in metrics
    rows = json.loads(status[1])
    assert [(r["kind"], r["version"], r["fraction"]) for r in rows[0]["rollouts"]] == [
        ("shadow", "v2", FRACTION)
    ]
    assert rows[0]["rollouts"][0]["events"] == len(mine)
    code, _, err = refused
    assert code == 1 and f"{agreement:.4f}" in err and "below the required" in err, err
    code, _, err = refused_fb
    assert code == 1 and "feedback accuracy" in err and "1.0001" in err, err
    assert promoted[0] == 0, promoted  # the evidence passes at the measured agreement


async def test_canary_keys_stable_across_rounds_restart_rollback_and_swap(
    broker: KafkaSettings, tiny_store: Path, uid: str, tmp_path: Path
) -> None:
    store = make_store(tiny_store, tmp_path / "store")
    topic, env, n = f"news-{uid}", topics_env(uid, key=f"key-{uid}"), 240
    await make_topics(broker, [topic], 4)
    keys: list[bytes | None] = [f"user-{i % 100}".encode() for i in range(n - 40)] + [None] * 40
    w1 = WorkerProcess(broker, store, [f"{topic}=news"], f"g-{uid}", tmp_path, "w1", env=env)
    workers = [w1.start()]
    rounds: dict[str, set[str]] = {}
    try:
        await wait_workers(broker, uid, workers)
        code, out, err = await cli(
            broker, env, "models", "canary", "news", "v2", "--fraction", str(FRACTION),
            "--store", str(store), "--wait", "--timeout", "60",
        )  # fmt: skip
        assert code == 0, f"{out}\n{err}\n{w1.log()}"
        rounds["a"] = await round_of(broker, topic, "a", n, keys)
        rounds["b"] = await round_of(broker, topic, "b", n, keys)
        stop_all(workers)  # restart: the canary is back from the control topic
        workers = [w1.start()]
        await wait_workers(broker, uid, workers, has_rollout("canary", "v2"))
        rounds["c"] = await round_of(broker, topic, "c", n, keys)
        labelled = await collect(broker, [f"{topic}.labelled"], 3 * n, quiet_s=2)
        code, out, err = await cli(broker, env, "models", "rollback", "news", "--wait")
        assert code == 0 and "canary news@v2 ended" in out, f"{out}\n{err}"
        # replaying the first (signed) canary command, an unsigned one and one of a type this
        # version does not know: all ignored, the worker goes on without a canary
        control = await read_to_end(broker, [f"control-{uid}"])
        first = next(r for r in control if r.key == b"news:canary")
        unsigned = CanaryModel(model="news", version="v2", fraction=1.0,
                               requested_at_ms=int(time.time() * 1000), sequence=10**12)  # fmt: skip
        unknown = json.dumps({"type": "teleport", "model": "news", "sequence": 10**12 + 1})
        await produce(
            broker, f"control-{uid}",
            [first.value, unsigned.model_dump_json().encode(), unknown.encode()],
            [first.key, b"news:canary", b"news"],
        )  # fmt: skip
        rejected = await wait_workers(broker, uid, workers, lambda ss: all(
            s.rejected_control >= 2 for s in ss.values()))  # fmt: skip
        assert all(not s.rollouts for s in rejected.values())
        rounds["d"] = await round_of(broker, topic, "d", n, keys)
        code, out, err = await cli(
            broker, env, "models", "canary", "news", "v2", "--fraction", "0.5",
            "--store", str(store), "--wait",
        )  # fmt: skip
        assert code == 0, f"{out}\n{err}"
        code, out, err = await cli(
            broker, env, "models", "swap", "news", "v2", "--store", str(store), "--wait"
        )
        assert code == 0, f"{out}\n{err}"
        await wait_workers(broker, uid, workers, has_rollout("canary", None))
        rounds["e"] = await round_of(broker, topic, "e", n, keys)
        labelled = await collect(broker, [f"{topic}.labelled"], 5 * n, quiet_s=2)
    finally:
        stop_all(workers)

    for prefix in "abc":  # the canary: by key, or by id without one; stable across the restart
        by_id = once_each(labelled, rounds[prefix])
        for i, key in enumerate(keys):
            event_id = f"{prefix}{i}"
            expected = "v2" if in_canary(key, event_id, FRACTION) else "v1"
            assert by_id[event_id]["version"] == expected, (event_id, key)
        per_key: dict[bytes, set[str]] = {}
        for i, key in enumerate(keys):
            if key:
                per_key.setdefault(key, set()).add(by_id[f"{prefix}{i}"]["version"])
        assert all(len(v) == 1 for v in per_key.values())
        share = sum(o["version"] == "v2" for o in by_id.values()) / n
        assert 0.15 < share < 0.45, share
    assert {o["version"] for o in once_each(labelled, rounds["d"]).values()} == {"v1"}
    log = w1.log_path.read_text()
    assert "unknown command type 'teleport'" in log and "stale canary" in log
    assert {o["version"] for o in once_each(labelled, rounds["e"]).values()} == {"v2"}
