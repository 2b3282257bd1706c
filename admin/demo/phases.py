"""The demo's phases once the worker runs: classify, train + gate, shadow, swap, status."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

from admin.context import console
from admin.demo import model as demo_model
from admin.demo import stream
from admin.demo.model import MODEL
from admin.demo.session import Demo, dev_rows, step, wait_ready
from admin.safe_text import esc
from modelstore.store import ModelStore


def run_phases(demo: Demo, worker: subprocess.Popen[bytes]) -> int:
    from trainer.exceptions import PromotionRefused

    phases: dict[str, float] = {}
    demo.summary["phases_s"] = phases
    with timed(phases, "worker_ready"):
        step("2. a worker classifies reviews as they arrive")
        asyncio.run(wait_ready(demo, worker))
    with timed(phases, "classify"):
        classify(demo)
    with timed(phases, "train_second_and_gate"):
        step("3. the trainer makes a new version; the gate compares it on the dev set")
        second = demo_model.second_version(demo.store)
        demo.summary["second_version"] = second.__dict__
        try:
            demo_model.gate(demo.store, second.version)
        except PromotionRefused as exc:
            console.print(f"[yellow]{esc(exc)}[/]: the demo stops before the swap")
            status(demo)
            return 0
    with timed(phases, "shadow"):
        step(f"4. {MODEL}@{second.version} shadows the active version on live events")
        asyncio.run(shadow(demo, second.version))
    with timed(phases, "swap_mid_stream"):
        step(f"5. swap to {MODEL}@{second.version} while events stream in")
        lost = asyncio.run(swap_mid_stream(demo, second.version))
    step("6. streamclf status")
    status(demo)
    return 1 if lost else 0


@contextmanager
def timed(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        phases[name] = round(time.monotonic() - started, 1)


def classify(demo: Demo) -> None:
    showcase = {f"show-{i}": t for i, t in enumerate(stream.SHOWCASE)}
    human = {f"dev-{i}": (label, t) for i, (label, t) in enumerate(_dev(40))}
    texts = showcase | {k: t for k, (_, t) in human.items()}
    asyncio.run(stream.produce(demo.kafka, demo.topic, list(texts.items())))
    out = asyncio.run(stream.outputs(demo.kafka, demo.labelled, set(texts)))
    truth = {k: label for k, (label, _) in human.items()}
    console.print(
        stream.label_table(
            "reviews written for the demo, and the first 8 of 40 from the dev sample",
            texts,
            [o for o in out if o["id"] in showcase or o["id"] in list(human)[:8]],
            truth,
        )
    )
    right = sum(1 for o in out if o["id"] in truth and truth[o["id"]] == o["label"])
    console.print(f"{right} of {len(truth)} dev reviews get their human label")
    demo.summary["first_round"] = {"dev_right": right, "dev_total": len(truth)}


def _dev(n: int, offset: int = 0) -> list[tuple[str, str]]:

    return dev_rows(n, offset)


async def shadow(demo: Demo, version: str) -> None:
    from admin.render import compare_tables
    from admin.rollouts import gather_report, request_rollout, stop_rollout, wait_rollout

    store = ModelStore(demo.store)
    command = await request_rollout(
        demo.kafka, store, "shadow", MODEL, version, 1.0, None, demo.control, "demo"
    )
    console.print(f"$ streamclf models shadow {MODEL} {version} --wait", highlight=False)
    waited = await wait_rollout(demo.kafka, command, 120, 5.0, demo.status)
    console.print(f"shadow: {waited.state}")
    rows = _dev(100, offset=40)
    await stream.produce(demo.kafka, demo.topic, [(f"sh-{i}", t) for i, (_, t) in enumerate(rows)])
    await stream.outputs(demo.kafka, demo.labelled, {f"sh-{i}" for i in range(len(rows))})
    shadow_topics = [f"{demo.topic}.shadow"]  # shadow results are published beside the labelled
    report = await gather_report(demo.kafka, MODEL, version, shadow_topics)
    for _ in range(19):  # 20 reads in all, half a second apart
        if report.events >= len(rows):
            break
        await asyncio.sleep(0.5)
        report = await gather_report(demo.kafka, MODEL, version, shadow_topics)
    demo.summary["shadow"] = {"events": report.events, "agreement": report.agreement}
    console.print(f"$ streamclf models compare {MODEL} {version}", highlight=False)
    for table in compare_tables(report):
        console.print(table)
    await stop_rollout(demo.kafka, store, "shadow", MODEL, None, demo.control, "demo")


async def swap_mid_stream(demo: Demo, version: str) -> int:
    from admin.swapping import wait_for_swap
    from trainer.promote import request_swap

    events = [(f"sw-{i}", t) for i, (_, t) in enumerate(_dev(300))]
    sent: list[str] = []
    producing = asyncio.create_task(stream.trickle(demo.kafka, demo.topic, events, 40.0, sent))
    while len(sent) < len(events) // 3 and not producing.done():
        await asyncio.sleep(0.1)
    console.print(f"{len(sent)} events in; $ streamclf models swap {MODEL} {version} --wait")
    started = time.monotonic()
    command = await request_swap(
        demo.kafka, ModelStore(demo.store), MODEL, version, "demo", None, demo.control
    )
    outcome = await wait_for_swap(
        demo.kafka, MODEL, version, command.requested_at_ms, 120, 5.0, demo.status
    )
    swap_s = time.monotonic() - started
    console.print(f"swap: {outcome.state} after {swap_s:.1f}s, {len(sent)} in")
    await producing
    out = await stream.outputs(demo.kafka, demo.labelled, set(sent))
    d = stream.delivery(sent, out)
    demo.summary["swap"] = {**d, "swap_s": round(swap_s, 2)}
    colour = "green" if d["lost"] == 0 else "red"
    console.print(
        f"[{colour}]in {d['in']}, out {d['out']}, lost {d['lost']}, duplicates "
        f"{d['duplicates']}[/]; answered by {esc(d['by_version'])}"
    )
    return d["lost"]


def status(demo: Demo) -> None:
    from admin.heartbeats import read_workers
    from admin.render import status_view, worker_rows

    workers = asyncio.run(read_workers(demo.kafka, 5.0, 30.0, demo.status))
    rows = [r for r in worker_rows(workers) if r["state"] != "stale"]
    console.print(f"$ streamclf status --status-topic {demo.status}", highlight=False)
    console.print(status_view(rows, demo.status))
