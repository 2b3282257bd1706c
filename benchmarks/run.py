"""`python -m benchmarks.run [--quick] [--scenarios a,b] [--preset P] [--out DIR]`.

Runs the scenarios in order, prints a table of figures and of the targets (ratios
between figures of this same run, as the machine is shared and noisy), and writes
`bench-<timestamp>.json`, `latest.json` and their PNG plots under the output folder.
"""

from __future__ import annotations

import os

# As the worker does (worker/__init__.py), before torch loads, so that the seed and the
# ceilings run under the same OpenMP wait policy as the worker they are compared with.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.common import RESULTS_DIR, Result, machine_info, model_label, versions
from benchmarks.context import BenchContext
from benchmarks.targets import Target, compute

ORDER = ("ceiling", "seed", "batching", "e2e", "e2e-pinned", "e2e-tiny", "cache")


def scenario_fn(name: str) -> Callable[[BenchContext], list[Result]]:
    from benchmarks.scenarios import batching, cache, ceiling, e2e, seed

    return {
        "seed": seed.run,
        "ceiling": ceiling.run,
        "batching": batching.run,
        "e2e": e2e.run,
        "e2e-pinned": e2e.run_pinned,
        "e2e-tiny": e2e.run_tiny,
        "cache": cache.run,
    }[name]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="benchmarks.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (under 2 minutes)")
    parser.add_argument("--scenarios", default=",".join(ORDER), help=f"comma-separated of {ORDER}")
    parser.add_argument(
        "--preset", default=None, help="roberta-base (default) | tiny (default with --quick)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--dtype", default="auto", help="the worker's STREAMCLF_DTYPE (auto: chosen at load)"
    )
    parser.add_argument(
        "--engine", default="auto", choices=("auto", "torch", "onnx"),
        help="the worker's STREAMCLF_ENGINE in e2e runs (auto: measured at load)",
    )  # fmt: skip
    parser.add_argument(
        "--worker-max-batch", type=int, default=None, help="STREAMCLF_MAX_BATCH (32)"
    )
    parser.add_argument(
        "--worker-torch-threads", type=int, default=None, help="STREAMCLF_TORCH_THREADS"
    )
    parser.add_argument(
        "--worker-max-batch-tokens", type=int, default=None, help="STREAMCLF_MAX_BATCH_TOKENS"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy profile of the e2e workers")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    args = parser.parse_args(argv)
    args.preset = args.preset or ("tiny" if args.quick else "roberta-base")
    names = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in ORDER]
    if unknown:
        parser.error(f"unknown scenarios {unknown}; choose from {ORDER}")
    args.scenarios = [s for s in ORDER if s in names]
    return args


def _num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.{digits}f}"


def results_table(results: list[Result]) -> Table:
    table = Table(
        "scenario",
        "variant",
        "preset",
        "texts|events/s",
        "tokens/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "padding",
        "n",
        title="streamclf bench",
    )
    for r in results:
        table.add_row(
            r.scenario, r.variant, r.preset, _num(r.texts_per_s), _num(r.tokens_per_s),
            _num(r.p50_ms, 0), _num(r.p95_ms, 0), _num(r.p99_ms, 0),
            "-" if r.padding_fraction is None else f"{r.padding_fraction:.1%}", str(r.count),
        )  # fmt: skip
    return table


def targets_table(targets: list[Target]) -> Table:
    table = Table("target", "measured", "goal", "met", "figures", title="targets (same-run ratios)")
    for t in targets:
        unit = "×" if t.unit == "x" else f" {t.unit}"
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: "n/a"}[t.met]
        value = (
            "-"
            if t.value is None
            else (f"{t.value:.2f}{unit}" if t.unit == "x" else f"{t.value:,.0f}{unit}")
        )
        sign = "≤" if t.op == "<=" else "≥"
        table.add_row(t.name, value, f"{sign} {t.goal:g}{unit}", met, t.detail)
    return table


def write(payload: dict[str, Any], out: Path, stamp: str) -> Path:
    from benchmarks.plot import plot

    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bench-{stamp}.json"
    path.write_text(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    shutil.copyfile(path, out / "latest.json")
    png = plot(payload, path.with_suffix(".png"))
    shutil.copyfile(png, out / "latest.png")
    return path


def recheck_after(ctx: BenchContext, name: str, scenarios: list[str]) -> list[Result]:
    """After e2e (and e2e-pinned), the ceiling of the backend that worker ran, measured again:
    the machine's load drifts, and the target takes the higher of the two ceilings."""
    from benchmarks.scenarios.ceiling import recheck

    chosen = ctx.shared.get("e2e_engine") or {}
    if name == "e2e" and "ceiling" in scenarios and chosen:
        return recheck(ctx, chosen["backend"], chosen["precision"])
    pinned = ctx.shared.get("ceiling_fastest")
    if (
        name == "e2e-pinned"
        and pinned
        and pinned != (chosen.get("backend"), chosen.get("precision"))
    ):
        return recheck(ctx, *pinned)
    return []


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    ctx = BenchContext(
        args.preset,
        args.device,
        args.dtype,
        args.quick,
        args.worker_max_batch,
        args.worker_max_batch_tokens,
        console=console,
        engine=args.engine,
    )
    ctx.shared["profile"] = args.profile
    ctx.shared["out"] = args.out
    args.out.mkdir(parents=True, exist_ok=True)  # profiles are written there during the run
    ctx.shared["worker_torch_threads"] = args.worker_torch_threads
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results: list[Result] = []
    failures: dict[str, str] = {}
    for name in args.scenarios:
        console.rule(f"{name} ({args.preset if name != 'e2e-tiny' else 'tiny'})")
        t0 = time.perf_counter()
        try:
            rows = scenario_fn(name)(ctx)
        except Exception as exc:  # one scenario failing must not lose the others
            failures[name] = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]{name} failed:[/] {exc}")
            console.print(traceback.format_exc(limit=4))
            continue
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        for row in rows:  # others share this machine: say how busy it was
            row.extra["load_avg_1m_after"] = load
        results += rows
        if name == "ceiling":
            ctx.shared["ceiling_texts_per_s"] = max(r.texts_per_s or 0 for r in rows)
        results += recheck_after(ctx, name, args.scenarios)
        console.log(f"{name}: {time.perf_counter() - t0:.0f}s")
    targets = compute(results, ctx.on_gpu)
    console.print(results_table(results))
    console.print(targets_table(targets))
    payload = {
        "created_at": stamp,
        "command": " ".join(
            ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
        ),
        "machine": machine_info(),
        "versions": versions(),
        "settings": {
            "preset": args.preset,
            "quick": args.quick,
            "device": ctx.device,
            "engine": ctx.engine,
            "dtype": ctx.dtype,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "sizes": ctx.sizes.__dict__,
            "text_source": ctx.shared.get("text_source"),
            "model": model_label(ctx.preset),
        },
        "results": [r.to_json() for r in results],
        "targets": [t.to_json() for t in targets],
        "failures": failures,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    path = write(payload, args.out, stamp)
    console.print(f"wrote {path} (+ latest.json, PNG) in {payload['wall_s']}s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
