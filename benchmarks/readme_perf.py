"""The README's performance table, generated from a results file (never typed by hand).

`python -m benchmarks.readme_perf [FILE] --write` rewrites the section of README.md between
the markers from FILE (default benchmarks/results/latest.json); `--check` exits 1 when it is
stale. `make bench` runs `--write` after each run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from benchmarks import sections
from benchmarks.common import REPO_ROOT, RESULTS_DIR

README = REPO_ROOT / "README.md"
MARKERS = ("<!-- performance:start -->", "<!-- performance:end -->")


def _n(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _first(rows: list[dict[str, Any]], scenario: str, variant_start: str) -> dict[str, Any] | None:
    return next(
        (r for r in rows if r["scenario"] == scenario and r["variant"].startswith(variant_start)),
        None,
    )


def _ceilings(rows: list[dict[str, Any]], preset: str) -> list[str]:
    """One line per backend/precision: its best batch size, speed and agreement."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in rows:
        if r["scenario"] != "ceiling" or r["preset"] != preset or "chars" in r["settings"]:
            continue
        spec = (r["settings"].get("backend", "torch"), r["settings"].get("dtype", "?"))
        if spec not in best or (r["texts_per_s"] or 0) > (best[spec]["texts_per_s"] or 0):
            best[spec] = r
    lines = []
    for (backend, precision), r in best.items():
        agree, delta = r["extra"].get("agreement"), r["extra"].get("accuracy_delta")
        note = "reference" if (backend, precision) == ("torch", "fp32") else (
            f"top-1 agreement with fp32 {agree:.1%}" if agree is not None else "agreement -"
        )  # fmt: skip
        if delta is not None and (backend, precision) != ("torch", "fp32"):
            note += f", accuracy {delta * 100:+.2f} points"
        settings = r["settings"]
        if "batch_size" in settings:  # runs before issue 21: fixed batch sizes
            batching = f"batch {settings.get('batch_size')}"
        else:  # the worker's batching: sorted, cut by its padded-token budget
            batching = f"sorted, {settings.get('max_padded_tokens')} tok"
        cpu = r["extra"].get("cpu_us_per_text")
        lines.append(
            f"| ceiling [{preset}]: {backend} {precision}, {batching} ({note}) | "
            f"{_n(r['texts_per_s'])} texts/s" + (f", {_n(cpu)} µs CPU/text |" if cpu else " |")
        )
    return lines


def _latency(rows: list[dict[str, Any]], scenario: str, variant: str) -> str:
    offered = _first(rows, scenario, variant.replace("full load", "50% offered"))
    return f" (p50 {_n(offered['p50_ms'])} ms at 50 % load)" if offered else ""


def table(payload: dict[str, Any]) -> str:
    rows, preset = payload["results"], payload["settings"]["preset"]
    lines = ["| scenario | figure |", "| --- | --: |", *_ceilings(rows, preset)]
    seed = _first(rows, "seed", "")
    if seed:
        lines.append(f"| seed: `pipeline('text-classification')`, one text per call | "
                     f"{_n(seed['texts_per_s'])} texts/s |")  # fmt: skip
    runs = (("e2e", preset, "worker, full load"), ("e2e", preset, "worker pinned, full load"),
            ("e2e-tiny", "tiny", "worker, full load"))  # fmt: skip
    for scenario, what, variant in runs:
        worker = _first(rows, scenario, variant)
        if worker:
            cpu = worker["extra"].get("cpu_us_per_event")
            settings = worker["settings"]
            spec = f"{settings.get('backend') or 'torch'} {settings.get('precision') or settings.get('dtype')}"
            engine = f"{settings.get('engine', 'torch')}: {spec}"
            if "pinned" in variant:
                engine = f"pinned to {spec}, agreement not enforced"
            delta = worker["extra"].get("engine_choice", {}).get("accuracy_delta")
            if delta is not None:
                engine += f", accuracy {delta * 100:+.2f} points vs fp32"
            model = settings.get("model")
            what = f"{what}: {model}" if model else what
            lines.append(
                f"| {scenario}: Kafka → worker ({what}, {engine}) → Kafka, full load | "
                f"{_n(worker['texts_per_s'])} events/s{_latency(rows, scenario, variant)}, {_n(cpu)} µs CPU/event |"
            )
    lines += _ceilings(rows, "tiny") if preset != "tiny" else []
    passthrough = _first(rows, "e2e-tiny", "pass-through, full load")
    if passthrough:
        lines.append(f"| raw Kafka pass-through (no model, no cache) | {_n(passthrough['texts_per_s'])} "
                     f"events/s, {_n(passthrough['extra'].get('cpu_us_per_event'))} µs CPU/event |")  # fmt: skip
    hits = _first(rows, "cache", "second pass")
    if hits:
        lines.append(f"| cache: all repeats (warm Redis) | {_n(hits['texts_per_s'])} events/s, "
                     f"{_n(hits['extra'].get('cpu_us_per_event'))} µs CPU/event |")  # fmt: skip
    lines += [
        "",
        "| target (same-run ratios) | measured | goal | met |",
        "| --- | --: | --: | --- |",
    ]
    for t in payload["targets"]:
        unit = "×" if t["unit"] == "x" else f" {t['unit']}"
        value = "-" if t["value"] is None else (
            f"{t['value']:.2f}{unit}" if t["unit"] == "x" else f"{t['value']:,.0f}{unit}"
        )  # fmt: skip
        sign = "≤" if t.get("op") == "<=" else "≥"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {value} | {sign} {t['goal']:g}{unit} | {met} |")
    return "\n".join(lines)


def section(payload: dict[str, Any], source: str = "benchmarks/results/latest.json") -> str:
    m, v = payload["machine"], payload["versions"]
    head = (
        f"Run `{payload['created_at']}` (`{payload.get('command', '')}`) on "
        f"{m.get('gpu') or m['cpu']}, {m['cpus_usable']} CPUs, torch {v['torch']}, commit "
        f"{v.get('streamclf_commit')}; texts: {payload['settings'].get('text_source')}."
    )
    first, last = MARKERS
    return (
        f"{first}\n<!-- generated by `python -m benchmarks.readme_perf --write` from {source}; "
        f"do not edit by hand -->\n{head}\n\n{table(payload)}\n{last}"
    )


def replace(text: str, new: str) -> str:
    return sections.replace_section(text, new, MARKERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.readme_perf")
    parser.add_argument("file", nargs="?", type=Path, default=RESULTS_DIR / "latest.json")
    parser.add_argument("--readme", type=Path, default=README)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true")
    mode.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    payload = json.loads(args.file.read_text())
    if not (args.write or args.check):
        print(section(payload))
        return 0
    return sections.sync_section(
        args.readme,
        section(payload),
        MARKERS,
        check=args.check,
        what="performance table",
        fix="python -m benchmarks.readme_perf --write",
    )


if __name__ == "__main__":
    raise SystemExit(main())
