"""`python -m benchmarks.chaos` (make chaos): the chaos run, its JSON and a one-line summary.

Exit status 0 when every check holds, 1 otherwise; the JSON holds the figures either way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from pathlib import Path

from benchmarks.chaos.run import ChaosConfig, chaos_report
from benchmarks.chaos.verdict import summary
from benchmarks.common import RESULTS_DIR, machine_info, versions
from benchmarks.harness import local_broker


def _args(argv: list[str] | None) -> argparse.Namespace:
    d = ChaosConfig()
    p = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__)
    p.add_argument("--events", type=int, default=d.events, help="good events (poison on top)")
    p.add_argument("--poison-every", type=int, default=d.poison_every)
    p.add_argument("--workers", type=int, default=d.workers)
    p.add_argument("--partitions", type=int, default=d.partitions)
    p.add_argument("--rate", type=float, default=d.rate_per_s, help="events/s produced")
    p.add_argument("--kill-every-s", type=float, default=d.kill_every_s)
    p.add_argument("--min-kills", type=int, default=d.min_kills)
    p.add_argument("--storm-cycles", type=int, default=d.storm_cycles, help="SIGTERMs")
    p.add_argument("--storm-every-s", type=float, default=d.storm_every_s)
    p.add_argument(
        "--control-poison",
        action=argparse.BooleanOptionalAction,
        default=d.control_poison,
        help="poison records on the control topic before the workers start",
    )
    p.add_argument(
        "--trainer-poison",
        action=argparse.BooleanOptionalAction,
        default=d.trainer_poison,
        help="a trainer serve process sent poison on its jobs and feedback topics",
    )
    p.add_argument("--timeout-s", type=float, default=d.timeout_s)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", type=Path, default=RESULTS_DIR / "chaos.json")
    p.add_argument("--keep", action="store_true", help="keep the work dir (worker logs)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    cfg = ChaosConfig(
        events=args.events,
        poison_every=args.poison_every,
        workers=args.workers,
        partitions=args.partitions,
        rate_per_s=args.rate,
        kill_every_s=args.kill_every_s,
        min_kills=args.min_kills,
        storm_cycles=args.storm_cycles,
        storm_every_s=args.storm_every_s,
        control_poison=args.control_poison,
        trainer_poison=args.trainer_poison,
        timeout_s=args.timeout_s,
        seed=args.seed,
    )
    work = Path(tempfile.mkdtemp(prefix="streamclf-chaos-"))
    with local_broker() as broker:
        payload = asyncio.run(chaos_report(cfg, broker, work))
    payload["command"] = "python -m benchmarks.chaos " + " ".join(argv or sys.argv[1:])
    payload["machine"], payload["versions"] = machine_info(), versions()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    print(f"{'PASS' if payload['ok'] else 'FAIL'}: {summary(payload['figures'])} -> {args.out}")
    for name, held in payload["checks"].items():
        print(f"  [{'x' if held else ' '}] {name}")
    if not args.keep and payload["ok"]:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return 0 if payload["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
