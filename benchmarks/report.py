"""Markdown of a results JSON, for the README: `python -m benchmarks.report [FILE]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR


def _n(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 1000 else f"{value:,.{digits}f}"


def markdown(payload: dict[str, Any]) -> str:
    m, v = payload["machine"], payload["versions"]
    lines = [
        f"Run `{payload['created_at']}` (`{payload.get('command', '')}`, {payload['wall_s']} s) on "
        f"{m.get('gpu') or m['cpu']}, {m['cpus_usable']} CPUs, {m.get('memory_gb')} GB; torch "
        f"{v['torch']}, transformers {v['transformers']}, aiokafka {v['aiokafka']}, commit "
        f"{v.get('streamclf_commit')}; texts: {payload['settings'].get('text_source')}.",
        "",
        "| scenario | variant | preset | texts or events/s | tokens/s | p50 ms | p95 ms | p99 ms | padding | n | load |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in payload["results"]:
        pad = "-" if r["padding_fraction"] is None else f"{r['padding_fraction']:.1%}"
        load = r["extra"].get("load_avg_1m_after")
        lines.append(
            f"| {r['scenario']} | {r['variant']} | {r['preset']} | {_n(r['texts_per_s'])} | "
            f"{_n(r['tokens_per_s'])} | {_n(r['p50_ms'], 0)} | {_n(r['p95_ms'], 0)} | "
            f"{_n(r['p99_ms'], 0)} | {pad} | {r['count']} | {_n(load)} |"
        )
    lines += ["", "| target | measured | goal | met | figures |", "|---|--:|--:|---|---|"]
    for t in payload["targets"]:
        if t["value"] is None:
            value = "-"
        elif t["unit"] == "x":
            value = f"{t['value']:.2f}×"
        else:
            value = f"{t['value']:,.0f} {t['unit']}"
        goal = f"≥ {t['goal']:g}" + ("×" if t["unit"] == "x" else f" {t['unit']}")
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        lines.append(f"| {t['name']} | {value} | {goal} | {met} | {t['detail']} |")
    if payload.get("failures"):
        lines += [
            "",
            "Failed scenarios: " + "; ".join(f"{k}: {e}" for k, e in payload["failures"].items()),
        ]
    return "\n".join(lines) + "\n"


def main() -> None:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_DIR / "latest.json"
    sys.stdout.write(markdown(json.loads(path.read_text())))


if __name__ == "__main__":
    main()
