"""Rendering for the CLI: rich tables and the plain dicts behind `--json`."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from admin.compare import CompareReport
from admin.swapping import SwapOutcome
from schemas.status import WorkerStatus

CANDIDATE_FIELDS = {"backend", "precision", "texts_per_s", "agreement", "accuracy",
                    "accuracy_delta", "accepted", "reason"}  # fmt: skip


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
        "engines": {m: f"{c.backend} {c.precision}" for m, c in status.engines.items()},
        "engine_choices": {
            m: c.model_dump(exclude={"candidates"}) for m, c in status.engines.items()
        },
        "engine_candidates": {  # every backend measured at load: speed, agreement, accuracy
            m: [x.model_dump(include=CANDIDATE_FIELDS) for x in c.candidates]
            for m, c in status.engines.items()
        },
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
        "control_signed": status.control_signed,
        "last_error": status.last_error,
        "last_swap": last_swap.model_dump() if last_swap else None,
        "rollouts": [r.model_dump() for r in status.rollouts],
    }


def status_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    table = Table(title=title)
    for name in ("worker", "state", "age", "versions", "lag", "ev/s", "in/out/dlq", "cache"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("lag", "ev/s") else "left")
    table.add_column("last swap", no_wrap=True)
    table.add_column("rollouts", no_wrap=True)
    table.add_column("errors", ratio=1, overflow="fold")
    for r in rows:
        state = {"ready": "[green]ready[/]", "not-ready": "[yellow]not ready[/]"}.get(
            r["state"], "[dim]stale[/]"
        )
        engines = r.get("engines", {})
        versions = ", ".join(
            f"{m}@{v}" + (f" [dim]{engines[m]}[/]" if m in engines else "")
            for m, v in sorted(r["versions"].items())
        ) or "-"  # fmt: skip
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
            rollouts_text(r["rollouts"]),
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


def rollouts_text(rollouts: list[dict[str, Any]]) -> str:
    """`shadow news@v2 10% agree 93%` per rollout, for the status table."""
    parts = []
    for r in rollouts:
        text = f"{r['kind']} {r['model']}@{r['version']} {r['fraction']:.0%}"
        if r.get("agreement") is not None:
            text += f" agree {r['agreement']:.0%}"
        text += f" n={r['events']}"
        if r.get("error"):
            text += f" [red]{r['error']}[/]"
        parts.append(text)
    return "\n".join(parts) or "-"


def compare_tables(report: CompareReport) -> list[Table]:
    """Per version (latency, throughput, feedback accuracy), per class, and the confusion."""
    agreement = "-" if report.agreement is None else f"{report.agreement:.2%}"
    figures = [*(("active", a) for a in report.active)]
    if report.candidate_figures is not None:
        figures.append(("candidate", report.candidate_figures))
    summary = Table(
        "version", "role", "events", "p50 ms", "p95 ms", "events/s", "feedback acc",
        title=f"{report.model}@{report.candidate} shadow: {report.events} events, "
        f"agreement {agreement}, {report.feedback_events} with feedback",
    )  # fmt: skip

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for role, fig in figures:
        summary.add_row(
            fig.version,
            role,
            str(sum(fig.per_class.values())),
            fmt(fig.latency_p50_ms, ".1f"),
            fmt(fig.latency_p95_ms, ".1f"),
            fmt(fig.throughput_eps, ".0f"),
            fmt(fig.feedback_accuracy, ".2%"),
        )
    classes = sorted({c for _, fig in figures for c in fig.per_class})
    per_class = Table(
        "class", *(f"{role} {fig.version}" for role, fig in figures), title="per class"
    )
    for c in classes:
        per_class.add_row(c, *(str(fig.per_class.get(c, 0)) for _, fig in figures))
    labels = sorted({c for row in report.confusion.values() for c in row})
    confusion = Table("active \\ candidate", *labels, title="label confusion")
    for active, row in report.confusion.items():
        confusion.add_row(active, *(str(row.get(c, 0)) for c in labels))
    return [summary, per_class, confusion]


def unsigned_warning(rows: list[dict[str, Any]]) -> str | None:
    """A loud warning naming the live workers that accept unsigned control commands."""
    unsigned = [r["worker_id"] for r in rows if r["state"] != "stale" and not r["control_signed"]]
    if not unsigned:
        return None
    return (
        f"WARNING: {len(unsigned)} live worker(s) run WITHOUT a control key and accept UNSIGNED "
        f"control commands: {', '.join(unsigned)}. Anyone who can write the control topic can "
        "swap their models. Set STREAMCLF_CONTROL_KEY (and STREAMCLF_REQUIRE_CONTROL_KEY=true) "
        "on every worker, trainer and operator."
    )
