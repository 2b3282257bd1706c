"""What a shadow or canary costs while both versions are resident: memory and throughput.

    python -m benchmarks.rollout_cost [--preset roberta-base] [--events 200]

Two randomly initialised versions of one model, a real broker and one `streamclf worker`
subprocess (cache off, so every event is computed). Four phases, each a burst of `--events`
events after the worker settled:

- v1 alone (three times: before, between and after the rollouts, as the reference and to show
  how much the shared machine's load moves the figures);
- shadow: `models shadow` of v2 on `--shadow-fraction` of the events (default all of them);
- canary: `models canary` of v2 on `--canary-fraction` of the keys.

Per phase: the worker's median RSS while idle before the burst (psutil, every 50 ms), and the
labelled throughput (events / time from the first input's broker timestamp to the last
labelled output's), plus for the shadow the time until the last shadow result. Ratios are
within this run, against the mean of the v1-alone phases. Results: printed, and JSON under benchmarks/results/rollout_cost-<preset>.json, with the
shadow phase's `models compare` report (also as the CLI prints it, `...compare.txt`).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from admin.compare import CompareReport
from admin.render import compare_tables
from admin.rollouts import gather_report, request_rollout, stop_rollout, wait_rollout
from benchmarks.common import RESULTS_DIR, machine_info, versions
from benchmarks.harness import (
    Subprocess,
    event_json,
    fresh_name,
    local_broker,
    make_route_topics,
    worker_command,
)
from benchmarks.swap_memory import MB, MODEL, TEXTS, RssSampler, make_versions, wait_ready
from bus.control import ensure_control_topics
from bus.producing import produce_many
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from modelstore.store import ModelStore
from worker.rollout import in_shadow

SEEN: dict[str, int] = {}  # outputs per topic so far (every phase reads from the beginning)


# v1 alone before, between and after the rollouts: the machine is shared, so the spread of
# these three says how far the load around moved the figures
PHASES = [
    ("v1-alone-1", None),
    ("shadow", "shadow"),
    ("v1-alone-2", None),
    ("canary", "canary"),
    ("v1-alone-3", None),
]


async def burst(
    kafka: KafkaSettings, topic: str, prefix: str, n: int, shadow_fraction: float = 0.0
) -> dict[str, Any]:
    """Produce `n` events; labelled events/s (and shadow results/s while shadowing)."""
    shadow = sum(in_shadow(f"{prefix}{i}", shadow_fraction) for i in range(n))
    records = [
        (f"k{i}".encode(), event_json(f"{prefix}{i}", f"{TEXTS[i % len(TEXTS)]}{prefix}{i}"))
        for i in range(n)
    ]
    started_ms = int(time.time() * 1000)
    await produce_many(kafka, topic, records)
    row: dict[str, Any] = {"events": n}
    for name, out, due in (
        ("labelled", f"{topic}.labelled", n),
        ("shadow", f"{topic}.shadow", shadow),
    ):
        if not due:
            continue
        expected = SEEN.get(out, 0) + due
        got = await read_until_quiet(kafka, [out], quiet_s=0, expected=expected, timeout_s=900,
                                     wait_for_topics_s=30)  # fmt: skip
        SEEN[out] = len(got)
        mine = [r for r in got if json.loads(r.value or b"{}").get("id", "").startswith(prefix)]
        if len(mine) < due:
            raise RuntimeError(f"{name}: {len(mine)} of {due} outputs of {prefix}")
        took_s = (max(r.timestamp_ms for r in mine) - started_ms) / 1000
        row[f"{name}_s"] = round(took_s, 2)
        row[f"{name}_events_per_s"] = round(due / took_s, 2)
        if name == "shadow":
            values = [json.loads(r.value or b"{}") for r in mine]
            row["shadow_agreement"] = round(sum(v["agree"] for v in values) / len(values), 4)
    return row


async def phase(
    name: str, kafka: KafkaSettings, topic: str, sampler: RssSampler, args: Any, shadow: float
) -> dict[str, Any]:
    await asyncio.sleep(args.settle)
    now = time.monotonic()
    idle = sampler.between(now - args.settle + 1, now)
    row = {"phase": name, "rss_idle_mb": round(statistics.median(idle) / MB, 1)}
    t0 = time.monotonic()
    row |= await burst(kafka, topic, f"{name}-", args.events, shadow)
    row["rss_peak_burst_mb"] = round(max(sampler.between(t0, time.monotonic())) / MB, 1)
    print(json.dumps(row))
    return row


async def command(kafka: KafkaSettings, store: ModelStore, kind: str, fraction: float | None,
                  control: str, status: str) -> None:  # fmt: skip
    """Start (fraction) or stop (None) a rollout and wait until the worker applied it."""
    if fraction is None:
        cmd = await stop_rollout(kafka, store, kind, MODEL, None, control, "rollout_cost")
    else:
        cmd = await request_rollout(
            kafka, store, kind, MODEL, "v2", fraction, None, control, "rollout_cost"
        )
    outcome = await wait_rollout(kafka, cmd, 600, 5.0, status)
    if outcome.state != "ok":
        raise RuntimeError(f"{kind} {fraction}: {outcome}")


async def run(args: argparse.Namespace, store_root: Path) -> dict[str, Any]:
    store = ModelStore(store_root)
    create_s = make_versions(store, args.preset)
    with local_broker() as kafka:
        topic = fresh_name("rollcost")
        control, status = f"{topic}.control", f"{topic}.status"
        await make_route_topics(kafka, topic)
        await ensure_control_topics(kafka, control, status)
        env = {
            "STREAMCLF_CONTROL_TOPIC": control,
            "STREAMCLF_STATUS_TOPIC": status,
            "STREAMCLF_STATUS_INTERVAL_S": "1",
            "STREAMCLF_DEVICE": args.device,
            "STREAMCLF_CACHE_ENABLED": "false",
            # fp32 torch, as documented: `auto` would load and time every backend at start,
            # which inflates the resident memory this script compares
            "STREAMCLF_ENGINE": "torch",
            "STREAMCLF_DTYPE": "fp32",
        }
        argv = [
            *worker_command(),
            "--route", f"{topic}={MODEL}", "--group", f"{topic}-g", "--store", str(store_root),
            "-b", kafka.bootstrap_servers, "--worker-id", "rollcost",
        ]  # fmt: skip
        worker = Subprocess(argv, env, RESULTS_DIR / "logs" / "rollout_cost-worker.log").start()
        sampler = RssSampler(worker.pid).start()
        rows: list[dict[str, Any]] = []
        try:
            await wait_ready(kafka, status, worker, 300)
            for name, kind in PHASES:
                if kind:
                    fraction = getattr(args, f"{kind}_fraction")
                    await command(kafka, store, kind, fraction, control, status)
                shadow = args.shadow_fraction if kind == "shadow" else 0.0
                rows.append(await phase(name, kafka, topic, sampler, args, shadow))
                if kind == "shadow":
                    report = await gather_report(
                        kafka, MODEL, "v2", [f"{topic}.shadow"], f"{topic}.feedback"
                    )
                if kind:
                    await command(kafka, store, kind, None, control, status)
        finally:
            sampler.stop()
            worker.stop()
    return summary(args, rows, store, create_s) | {"compare": report.model_dump()}


def summary(args: Any, rows: list[dict[str, Any]], store: ModelStore, create_s: float) -> dict:
    alone = [r for r in rows if r["phase"].startswith("v1-alone")]
    ref_rss = statistics.mean(r["rss_idle_mb"] for r in alone)
    ref_eps = statistics.mean(r["labelled_events_per_s"] for r in alone)
    for row in rows:
        row["rss_vs_v1_alone_mb"] = round(row["rss_idle_mb"] - ref_rss, 1)
        row["throughput_vs_v1_alone"] = round(row["labelled_events_per_s"] / ref_eps, 3)
    spread = [r["throughput_vs_v1_alone"] for r in alone]
    weights = (store.version_dir(MODEL, "v1") / "model.safetensors").stat().st_size / MB
    return {
        "benchmark": "rollout_cost",
        "preset": args.preset,
        "device": args.device,
        "weights_mb": round(weights, 1),
        "create_versions_s": round(create_s, 1),
        "events_per_phase": args.events,
        "shadow_fraction": args.shadow_fraction,
        "canary_fraction": args.canary_fraction,
        "phases": rows,
        "v1_alone_throughput_spread": [min(spread), max(spread)],
        "machine": machine_info(),
        "versions": versions(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def compare_text(report: CompareReport) -> str:
    """`streamclf models compare` as the CLI prints it, for the docs to quote."""
    console = Console(record=True, width=100, file=io.StringIO())
    for table in compare_tables(report):
        console.print(table)
    return console.export_text()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="roberta-base", help="roberta-base | tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--events", type=int, default=200, help="events per phase")
    parser.add_argument("--shadow-fraction", type=float, default=1.0)
    parser.add_argument("--canary-fraction", type=float, default=0.5)
    parser.add_argument("--settle", type=float, default=4.0, help="idle seconds before a burst")
    parser.add_argument("--out", type=Path, help="JSON path (default results/rollout_cost-P.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rollcost-store-") as tmp:
        payload = asyncio.run(run(args, Path(tmp)))
    out = args.out or RESULTS_DIR / f"rollout_cost-{args.preset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(payload["phases"], indent=2))
    print(f"wrote {out}")
    table = out.with_suffix(".compare.txt")
    table.write_text(compare_text(CompareReport.model_validate(payload["compare"])))
    print(table.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
