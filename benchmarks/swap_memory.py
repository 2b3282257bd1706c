"""Hot swap under load: swap time, and the worker's resident memory before, during and after.

    python -m benchmarks.swap_memory [--preset roberta-base] [--swaps 2] [--rate 5]

Creates two randomly initialised versions of one model in a temporary store, starts a real
broker and one `streamclf worker` subprocess, keeps a steady trickle of events flowing, and
swaps v1 -> v2 (-> v1 ...) through the admin path (`request_swap` + `wait_for_swap`). The
worker's RSS is sampled every 50 ms with psutil. Per swap:

- before: median RSS over the `--window` seconds before the request;
- during: peak RSS from the request until the worker reports the new version;
- after: median RSS over the last `--window` seconds of `--settle` seconds after that (the old
  engine is released by the first batch after the switch, hence the trickle of events).

At the end every produced id is checked to have come out exactly once, and the versions of
each partition's outputs to change monotonically. Results: printed, and JSON under
benchmarks/results/swap_memory-<preset>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from admin.swapping import request_swap, wait_for_swap
from benchmarks.common import RESULTS_DIR, machine_info, versions
from benchmarks.harness import (
    Subprocess,
    event_json,
    fresh_name,
    local_broker,
    make_route_topics,
    worker_command,
)
from bus.control import ensure_control_topics, read_status
from bus.producing import sender
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore

MODEL = "swapbench"
MB = 2**20
TEXTS = ["北京上个月召开了两会", "这家酒店的服务非常好", "国足再次输球，球迷失望", "央行宣布降准"]


class RssSampler:
    """Samples one process's resident set size in a thread: [(monotonic time, bytes)]."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.every_s = every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), self.proc.memory_info().rss))
            except psutil.Error:
                return
            self._stop.wait(self.every_s)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def between(self, start: float, end: float) -> list[int]:
        return [rss for t, rss in self.samples if start <= t <= end]


def make_versions(store: ModelStore, preset: str) -> float:
    started = time.perf_counter()
    labels = PRESET_LABELS["chinanews"]
    for seed in (0, 1):
        init_model(store, MODEL, labels, preset, seed=seed)
    store.set_active(MODEL, "v1")
    return time.perf_counter() - started


async def trickle(kafka: KafkaSettings, topic: str, rate: float, stop: asyncio.Event) -> int:
    """Produce `rate` events per second until `stop`; returns how many were sent."""
    sent = 0
    async with sender(kafka) as out:
        while not stop.is_set():
            text = f"{TEXTS[sent % len(TEXTS)]}{sent}"
            await out.send(topic, event_json(f"s{sent}", text), key=str(sent).encode())
            sent += 1
            await asyncio.sleep(1 / rate)
    return sent


async def wait_ready(
    kafka: KafkaSettings, status_topic: str, worker: Subprocess, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        worker.check_alive()
        latest = await read_status(kafka, int((time.time() - 3) * 1000), status_topic)
        if any(s.ready for s in latest.values()):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"worker not ready after {timeout_s}s")


async def outputs(kafka: KafkaSettings, topic: str, expected: int, timeout_s: float) -> list[dict]:
    records = await read_until_quiet(
        kafka, [topic], quiet_s=0, expected=expected, timeout_s=timeout_s
    )
    return [json.loads(r.value or b"null") for r in records]


def check_outputs(out: list[dict[str, Any]], sent: int) -> dict[str, Any]:
    ids = Counter(o["id"] for o in out)
    by_partition: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for o in out:
        by_partition[o["source_partition"]].append(o)
    switches = {}
    for partition, items in sorted(by_partition.items()):
        vs = [o["version"] for o in sorted(items, key=lambda o: o["source_offset"])]
        switches[partition] = sum(1 for a, b in itertools.pairwise(vs) if a != b)
    return {
        "sent": sent,
        "received_unique": len(ids),
        "lost": len({f"s{i}" for i in range(sent)} - set(ids)),
        "duplicates": sum(c - 1 for c in ids.values()),
        "version_switches_per_partition": switches,
    }


async def run(args: argparse.Namespace, store_root: Path) -> dict[str, Any]:
    store = ModelStore(store_root)
    create_s = make_versions(store, args.preset)
    print(f"created {MODEL} v1, v2 ({args.preset}) in {create_s:.1f}s")
    with local_broker() as kafka:
        topic = fresh_name("swapmem")
        control, status = f"{topic}.control", f"{topic}.status"
        labelled = await make_route_topics(kafka, topic)
        await ensure_control_topics(kafka, control, status)
        env = {
            "STREAMCLF_CONTROL_TOPIC": control,
            "STREAMCLF_STATUS_TOPIC": status,
            "STREAMCLF_STATUS_INTERVAL_S": "1",
            "STREAMCLF_DEVICE": args.device,
        }
        argv = [
            *worker_command(),
            "--route", f"{topic}={MODEL}", "--group", f"{topic}-g", "--store", str(store_root),
            "-b", kafka.bootstrap_servers, "--worker-id", "swapbench",
        ]  # fmt: skip
        worker = Subprocess(argv, env, RESULTS_DIR / "logs" / "swap_memory-worker.log").start()
        sampler = RssSampler(worker.pid).start()
        stop = asyncio.Event()
        producing = asyncio.create_task(trickle(kafka, topic, args.rate, stop))
        swaps: list[dict[str, Any]] = []
        try:
            await wait_ready(kafka, status, worker, 300)
            await asyncio.sleep(args.settle)  # steady state on v1
            current = "v1"
            for _ in range(args.swaps):
                target = "v2" if current == "v1" else "v1"
                t_req, wall_req = time.monotonic(), time.time()
                command = await request_swap(
                    kafka, store, MODEL, target, "swap_memory", None, control
                )
                outcome = await wait_for_swap(
                    kafka, MODEL, target, command.requested_at_ms, 600, 5.0, status
                )
                t_done = time.monotonic()
                if outcome.state != "ok":
                    raise RuntimeError(f"swap to {target}: {outcome.state}: {outcome.reason()}")
                await asyncio.sleep(args.settle)
                t_end = time.monotonic()
                before = sampler.between(t_req - args.window, t_req)
                during = sampler.between(t_req, t_done)
                after = sampler.between(t_end - args.window, t_end)
                row = {
                    "from": current,
                    "to": target,
                    "swap_s": outcome.workers[0].duration_s,
                    "cli_checks_s": round(command.requested_at_ms / 1000 - wall_req, 3),
                    "request_to_confirmed_s": round(t_done - t_req, 3),
                    "rss_before_mb": round(statistics.median(before) / MB, 1),
                    "rss_peak_during_mb": round(max(during) / MB, 1),
                    "rss_after_mb": round(statistics.median(after) / MB, 1),
                }
                swaps.append(row)
                print(json.dumps(row))
                current = target
        finally:
            stop.set()
            sent = await producing
            sampler.stop()
        out = await outputs(kafka, labelled, sent, 120)
        worker.check_alive()
        worker.stop()
    weights_mb = (store.version_dir(MODEL, "v1") / "model.safetensors").stat().st_size / MB
    return {
        "benchmark": "swap_memory",
        "preset": args.preset,
        "device": args.device,
        "weights_mb": round(weights_mb, 1),
        "create_versions_s": round(create_s, 1),
        "rate_events_per_s": args.rate,
        "settle_s": args.settle,
        "window_s": args.window,
        "swaps": swaps,
        "delivery": check_outputs(out, sent),
        "rss_timeline_mb": [
            (round(t - sampler.samples[0][0], 2), round(rss / MB, 1))
            for t, rss in sampler.samples[:: max(1, len(sampler.samples) // 600)]
        ],
        "machine": machine_info(),
        "versions": versions(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="roberta-base", help="roberta-base | tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--swaps", type=int, default=2, help="v1->v2, v2->v1, ...")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second meanwhile")
    parser.add_argument("--settle", type=float, default=12.0, help="seconds after each swap")
    parser.add_argument("--window", type=float, default=5.0, help="seconds for before/after")
    parser.add_argument("--store", type=Path, help="store directory (default: a temp dir)")
    parser.add_argument("--out", type=Path, help="JSON path (default results/swap_memory-P.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="swapmem-store-") as tmp:
        payload = asyncio.run(run(args, args.store or Path(tmp)))
    out = args.out or RESULTS_DIR / f"swap_memory-{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({k: payload[k] for k in ("preset", "swaps", "delivery")}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
