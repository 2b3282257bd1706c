"""Rendering for the CLI: rich tables and the plain dicts behind `--json`.

Every string that came from a topic or a file is drawn through `admin.safe_text` (`cell`,
`printable`): shown literally, never parsed as markup, no terminal control characters.
"""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Column, Table
from rich.text import Text

from admin.compare import CompareReport
from admin.heartbeats import Workers
from admin.safe_text import cell, printable
from admin.swapping import SwapOutcome
from schemas.deadletter import DeadLetter
from schemas.status import WorkerStatus

CANDIDATE_FIELDS = {"backend", "precision", "texts_per_s", "agreement", "accuracy",
                    "accuracy_delta", "accepted", "reason"}  # fmt: skip


def _age_s(status: WorkerStatus, now_ms: int) -> float:
    return max(0.0, (now_ms - status.at_ms) / 1000)


def worker_row(
    status: WorkerStatus, stale: bool, now_ms: int | None = None, skewed: bool = False
) -> dict[str, Any]:
    """One worker's heartbeat, flattened for `streamclf status --json`.

    `skewed`: stamped beyond the clock-skew bound (admin/heartbeats.py); its state is
    `clock-skew` and its age negative (how far ahead it claims to be), never fresh.
    """
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    last_swap = status.swaps[-1] if status.swaps else None
    state = "ready" if status.ready else "not-ready"
    age_s = _age_s(status, now_ms)
    if stale:
        state = "stale"
    if skewed:
        state, age_s = "clock-skew", (now_ms - status.at_ms) / 1000
    return {
        "worker_id": status.worker_id,
        "host": status.host,
        "pid": status.pid,
        "state": state,
        "age_s": round(age_s, 1),
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
        "drift": {m: d.model_dump() for m, d in status.drift.items()},
    }


def worker_rows(workers: Workers) -> list[dict[str, Any]]:
    """Live, then stale workers, then heartbeats from the future (`clock-skew`)."""
    now = workers.now_ms
    return [
        *(worker_row(s, False, now) for s in workers.live),
        *(worker_row(s, True, now) for s in workers.stale),
        *(worker_row(s, False, now, skewed=True) for s in workers.future),
    ]


def is_live(row: dict[str, Any]) -> bool:
    return row["state"] in ("ready", "not-ready")


_STATES = {
    "ready": ("ready", "green"),
    "not-ready": ("not ready", "yellow"),
    "stale": ("stale", "dim"),
    "clock-skew": ("clock-skew", "bold red"),
}


def _state(row: dict[str, Any]) -> Text:
    text, style = _STATES.get(row["state"], (row["state"], "dim"))
    return cell(text, style)


def _age(age_s: float) -> str:
    """12s, 5m, 3h, 41d; negative for a heartbeat stamped ahead of this clock."""
    sign, left = ("-" if age_s < 0 else ""), abs(age_s)
    for unit, size, upto in (("s", 1, 100), ("m", 60, 100 * 60), ("h", 3600, 48 * 3600)):
        if left < upto:
            return f"{sign}{left / size:.0f}{unit}"
    return f"{sign}{left / 86400:.0f}d"


def _serving(row: dict[str, Any], engines: bool) -> Text:
    """`model@version` per line (with the engine, dimmed, when `engines`)."""
    out = Text()
    for model, version in sorted(row["versions"].items()):
        if out:
            out.append("\n")
        out.append(printable(f"{model}@{version}"))
        if engines and model in row.get("engines", {}):
            out.append(f" {printable(row['engines'][model])}", style="dim")
    return out or Text("-")


def _errors(row: dict[str, Any]) -> list[str]:
    errors = []
    if row["rejected_control"]:
        errors.append(f"{row['rejected_control']} control rejected")
    if row["last_error"]:
        errors.append(printable(row["last_error"]))
    return errors


def _title(title: str | None) -> Text | None:
    return None if title is None else cell(title)


def status_view(
    rows: list[dict[str, Any]], title: str | None = None, wide: bool = False
) -> RenderableType:
    """`streamclf status`: the short table that fits 80 columns (worker, state, age, what it
    serves, lag, events/s) with problems listed beneath it; `wide` is the full table."""
    if wide:
        return status_table(rows, title)
    table = Table(title=_title(title), box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("worker", overflow="fold", min_width=12)
    table.add_column("state", no_wrap=True)
    table.add_column("age", no_wrap=True, justify="right")
    table.add_column("serving", overflow="fold", min_width=10)
    table.add_column("lag", no_wrap=True, justify="right")
    table.add_column("ev/s", no_wrap=True, justify="right")
    notes: list[Text] = []
    for r in rows:
        table.add_row(
            cell(r["worker_id"]),
            _state(r),
            _age(r["age_s"]),
            _serving(r, engines=False),
            str(r["lag"]),
            f"{r['events_per_s']:.1f}",
        )
        notes.extend(_notes(r))
    hint = Text("--wide: host, engines, in/out/dlq, cache, last swap, rollouts", style="dim")
    return Group(table, *notes, hint)


def _notes(row: dict[str, Any]) -> list[Text]:
    """The lines under the short table for one worker: errors, a failed swap, clock skew."""
    who = printable(row["worker_id"], 60)
    if row["state"] == "clock-skew":  # nothing else it says is taken either
        return [
            Text(
                f"{who}: a heartbeat stamped {_age(-row['age_s'])} ahead of this clock "
                "(beyond STREAMCLF_STATUS_MAX_SKEW_S) is not taken as its state",
                style="red",
            )
        ]
    notes = [Text(f"{who}: {error}", style="red") for error in _errors(row)]
    swap = row["last_swap"]
    if swap and not swap["ok"]:
        what = printable(f"{swap['model']}@{swap['version']} failed: {swap['error'] or '?'}")
        notes.append(Text(f"{who}: swap {what}", style="red"))
    return notes


def status_table(rows: list[dict[str, Any]], title: str | None = None) -> Table:
    """Every column of `streamclf status --wide`."""
    table = Table(title=_title(title))
    for name in ("worker", "state", "age", "versions", "lag", "ev/s", "in/out/dlq", "cache"):
        table.add_column(name, no_wrap=True, justify="right" if name in ("lag", "ev/s") else "left")
    table.add_column("last swap", no_wrap=True)
    table.add_column("rollouts", no_wrap=True)
    table.add_column("errors", ratio=1, overflow="fold")
    for r in rows:
        worker = cell(r["worker_id"])
        worker.append(f"\n{printable(r['host'])}:{r['pid']}", style="dim")
        swap = r["last_swap"]
        swap_text = Text("-")
        if swap:
            swap_text = cell(f"{swap['model']}@{swap['version']} ")
            swap_text.append("ok" if swap["ok"] else "failed", style="" if swap["ok"] else "red")
            if swap["ok"]:
                swap_text.append(f" {swap['duration_s']:.2f}s")
        errors = _errors(r)
        table.add_row(
            worker,
            _state(r),
            _age(r["age_s"]),
            _serving(r, engines=True),
            str(r["lag"]),
            f"{r['events_per_s']:.1f}",
            f"{r['events_in']}/{r['events_out']}/{r['dead_letters']}",
            cell(f"{r['cache_hit_ratio']:.0%} {r['cache_state']}"),
            swap_text,
            rollouts_text(r["rollouts"]),
            Text("; ".join(errors), style="red") if errors else Text("-"),
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
        title=Text(printable(f"swap {outcome.model} -> {outcome.version}")),
    )
    colour = {"ok": "green", "failed": "red", "pending": "yellow"}
    for w in outcome.workers:
        table.add_row(
            cell(w.worker_id),
            cell(w.state, colour.get(w.state, "dim")),
            cell(w.version or "-"),
            "-" if w.duration_s is None else f"{w.duration_s:.2f}s",
            cell(w.error or ""),
        )
    return table


def rollouts_text(rollouts: list[dict[str, Any]]) -> Text:
    """`shadow news@v2 10% agree 93%` per rollout, for the status table."""
    out = Text()
    for r in rollouts:
        if out:
            out.append("\n")
        text = f"{r['kind']} {r['model']}@{r['version']} {r['fraction']:.0%}"
        if r.get("agreement") is not None:
            text += f" agree {r['agreement']:.0%}"
        out.append(printable(f"{text} n={r['events']}"))
        if r.get("error"):
            out.append(f" {printable(r['error'])}", style="red")
    return out or Text("-")


def _headed(*headers: object, title: str) -> Table:
    """A table whose headers and title are shown literally (they may be label names)."""
    return Table(*(Column(header=cell(h, limit=40)) for h in headers), title=cell(title))


def compare_tables(report: CompareReport) -> list[Table]:
    """Per version (latency, throughput, feedback accuracy), per class, and the confusion."""
    agreement = "-" if report.agreement is None else f"{report.agreement:.2%}"
    figures = [*(("active", a) for a in report.active)]
    if report.candidate_figures is not None:
        figures.append(("candidate", report.candidate_figures))
    summary = _headed(
        "version", "role", "events", "p50 ms", "p95 ms", "events/s", "feedback acc",
        title=f"{report.model}@{report.candidate} shadow: {report.events} events, "
        f"agreement {agreement}, {report.feedback_events} with feedback",
    )  # fmt: skip

    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for role, fig in figures:
        summary.add_row(
            cell(fig.version),
            role,
            str(sum(fig.per_class.values())),
            fmt(fig.latency_p50_ms, ".1f"),
            fmt(fig.latency_p95_ms, ".1f"),
            fmt(fig.throughput_eps, ".0f"),
            fmt(fig.feedback_accuracy, ".2%"),
        )
    classes = sorted({c for _, fig in figures for c in fig.per_class})
    per_class = _headed(
        "class", *(f"{role} {fig.version}" for role, fig in figures), title="per class"
    )
    for c in classes:
        per_class.add_row(cell(c), *(str(fig.per_class.get(c, 0)) for _, fig in figures))
    labels = sorted({c for row in report.confusion.values() for c in row})
    confusion = _headed("active \\ candidate", *labels, title="label confusion")
    for active, row in report.confusion.items():
        confusion.add_row(cell(active), *(str(row.get(c, 0)) for c in labels))
    return [summary, per_class, confusion]


def dead_letters_table(topic: str, letters: list[DeadLetter]) -> Table:
    """`dlq inspect`: where each dead letter came from, its kind, reason and value's start."""
    table = Table(
        "source", "kind", "message", "value (start)", title=cell(f"{topic}: {len(letters)}")
    )
    for letter in letters:
        try:
            raw = letter.value_bytes()
        except ValueError:  # not base64: a forged dead letter
            raw = b"(value is not base64)"
        preview = "null" if raw is None else raw[:40].decode("utf-8", "replace")
        table.add_row(
            cell(letter.where), cell(letter.kind.value), cell(letter.message, limit=80),
            cell(preview, limit=40),
        )  # fmt: skip
    return table


def unsigned_warning(rows: list[dict[str, Any]]) -> str | None:
    """A loud warning naming the live workers that accept unsigned control commands (plain
    text: print it with markup off)."""
    unsigned = [printable(r["worker_id"]) for r in rows if is_live(r) and not r["control_signed"]]
    if not unsigned:
        return None
    return (
        f"WARNING: {len(unsigned)} live worker(s) run WITHOUT a control key and accept UNSIGNED "
        f"control commands: {', '.join(unsigned)}. Anyone who can write the control topic can "
        "swap their models. Set STREAMCLF_CONTROL_KEY (and STREAMCLF_REQUIRE_CONTROL_KEY=true) "
        "on every worker, trainer and operator."
    )
