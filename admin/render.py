"""Rendering for the CLI: rich tables and the plain dicts behind `--json`."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from admin.swapping import SwapOutcome
from schemas.status import WorkerStatus


def _age_s(status: WorkerStatus, now_ms: int) -> float:
    return max(0.0, (now_ms - status.at_ms) / 1000)


def worker_row(status: WorkerStatus, stale: bool, now_ms: int | None = None) -> dict[str, Any]:
    """One worker's heartbeat, flattened for `streamclf status --json`."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    last_swap = status.swaps[-1] if status.swaps else None
    return {
        "worker_id": status.worker_id,
        "host": status.host,
        "pid": status.pid,
        "state": "stale" if stale else ("ready" if status.ready else "not-ready"),
        "age_s": round(_age_s(status, now_ms), 1),
        "versions": status.versions,
        "routes": status.routes,
        "lag": sum(status.lag.values()),
        "lag_by_partition": status.lag,
        "events_in": status.events_in,
        "events_out": status.events_out,
        "dead_letters": status.dead_letters,
        "events_per_s": round(status.events_per_s, 1),
        "mean_batch_size": round(status.mean_batch_size, 1),
        "cache_hit_ratio": round(status.cache_hit_ratio, 4),
        "cache_state": status.cache_state,
        "rejected_control": status.rejected_control,
        "last_error": status.last_error,
        "last_swap": last_swap.model_dump() if last_swap else None,
    }


def status_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title)
    for name in ("worker", "state", "age", "versions", "lag", "ev/s", "in/out/dlq", "cache"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("lag", "ev/s") else "left")
    table.add_column("last swap", no_wrap=True)
    table.add_column("errors", ratio=1, overflow="fold")
    for r in rows:
        state = {"ready": "[green]ready[/]", "not-ready": "[yellow]not ready[/]"}.get(
            r["state"], "[dim]stale[/]"
        )
        versions = ", ".join(f"{m}@{v}" for m, v in sorted(r["versions"].items())) or "-"
        swap = r["last_swap"]
        swap_text = "-"
        if swap:
            mark = "ok" if swap["ok"] else "[red]failed[/]"
            swap_text = f"{swap['model']}@{swap['version']} {mark}"
            if swap["ok"]:
                swap_text += f" {swap['duration_s']:.2f}s"
        errors = []
        if r["rejected_control"]:
            errors.append(f"{r['rejected_control']} control rejected")
        if r["last_error"]:
            errors.append(r["last_error"])
        table.add_row(
            f"{r['worker_id']}\n[dim]{r['host']}:{r['pid']}[/]",
            state,
            f"{r['age_s']:.0f}s",
            versions,
            str(r["lag"]),
            f"{r['events_per_s']:.1f}",
            f"{r['events_in']}/{r['events_out']}/{r['dead_letters']}",
            f"{r['cache_hit_ratio']:.0%} {r['cache_state']}",
            swap_text,
            "[red]" + "; ".join(errors) + "[/]" if errors else "-",
        )
    return table


def outcome_dict(outcome: SwapOutcome) -> dict[str, Any]:
    return {
        "model": outcome.model,
        "version": outcome.version,
        "state": outcome.state,
        "reason": outcome.reason(),
        "waited_s": round(outcome.waited_s, 2),
        "workers": [
            {
                "worker_id": w.worker_id,
                "state": w.state,
                "version": w.version,
                "error": w.error,
                "swap_s": None if w.duration_s is None else round(w.duration_s, 3),
            }
            for w in outcome.workers
        ],
    }


def outcome_table(outcome: SwapOutcome) -> Table:
    table = Table(
        "worker",
        "state",
        "serving",
        "swap time",
        "error",
        title=f"swap {outcome.model} -> {outcome.version}",
    )
    colour = {"ok": "green", "failed": "red", "pending": "yellow"}
    for w in outcome.workers:
        table.add_row(
            w.worker_id,
            f"[{colour.get(w.state, 'dim')}]{w.state}[/]",
            w.version or "-",
            "-" if w.duration_s is None else f"{w.duration_s:.2f}s",
            w.error or "",
        )
    return table
