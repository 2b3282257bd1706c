"""Hostile strings through the CLI's renderers: shown literally, no control sequences, 80 columns;
and which heartbeat speaks for a worker when one claims to come from the future."""

from __future__ import annotations

import base64
import io

import pytest
from rich.console import Console

from admin.compare import build_report
from admin.heartbeats import DEFAULT_MAX_SKEW_S, MAX_SKEW_ENV, fold, max_skew_s, split
from admin.render import (
    compare_tables,
    dead_letters_table,
    outcome_table,
    rollouts_text,
    status_view,
    unsigned_warning,
    worker_row,
    worker_rows,
)
from admin.safe_text import SHOWN_CHARS, cell, esc, printable
from admin.swapping import SwapOutcome, WorkerOutcome
from schemas.deadletter import DeadLetter, ErrorKind
from schemas.rollout import ShadowResult
from schemas.status import RolloutStatus, SwapResult, WorkerStatus

NOW = 1_800_000_000_000
TEN_YEARS_MS = 10 * 365 * 86400 * 1000
HOSTILE = [
    "[/]evil",
    "[bold red]x[/bold red]",
    "\x1b[2J\x1b[H",  # clear the screen
    "\x9b31m",  # a one-byte CSI
    "a\rb\x07c\x08\x00",
    "\u202eevil\u2066",  # bidi override / isolate
    "line\u2028break",
    "trailing\\",
]
RAW_CONTROLS = ["\x1b", "\x9b", "\r", "\x07", "\x08", "\x00", "\u202e", "\u2066", "\u2028"]


def render(renderable: object, width: int = 80) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def assert_clean(text: str) -> None:
    for raw in RAW_CONTROLS:
        assert raw not in text, (raw, text)


@pytest.mark.parametrize("value", HOSTILE)
def test_printable_makes_controls_visible_and_keeps_the_rest(value: str) -> None:
    shown = printable(value)
    assert_clean(shown)
    assert "\n" not in shown and "\t" not in printable("a\tb\nc")
    assert render(cell(value)).strip() == shown  # a cell is never parsed as markup
    assert render(f"[bold]{esc(value)}[/]").strip() == shown  # nor an escaped f-string part


def test_printable_names_what_it_replaced_and_keeps_chinese() -> None:
    assert printable("\x1b[2J") == "\\x1b[2J"
    assert printable("\u202e") == "\\u202e"
    assert printable("北京两会 [news]") == "北京两会 [news]"


def test_a_very_long_id_is_cut_saying_by_how_much() -> None:
    shown = printable("w" * 10_000)
    assert shown == "w" * SHOWN_CHARS + f"…(+{10_000 - SHOWN_CHARS})"
    assert printable("w" * SHOWN_CHARS) == "w" * SHOWN_CHARS


def heartbeat(worker_id: str, at_ms: int = NOW - 2000, **fields: object) -> WorkerStatus:
    base: dict[str, object] = {
        "worker_id": worker_id, "host": "vm", "pid": 4242, "at_ms": at_ms, "ready": True,
        "versions": {"news": "v12", "sentiment": "v3"}, "lag": {"news[0]": 7},
        "events_per_s": 123.4,
    }  # fmt: skip
    return WorkerStatus.model_validate(base | fields)


def hostile_heartbeat() -> WorkerStatus:
    return heartbeat(
        "[/]evil\x1b[2J",
        host="[bold]h\x1b]0;title\x07",
        versions={"[/]m\x1b[31m": "[/]v"},
        last_error="[/]boom\r\x1b[2K",
        swaps=[SwapResult(model="[/]m", version="v\x1b", ok=False, error="[red]x")],
        rollouts=[
            RolloutStatus(
                model="[/]m", kind="shadow", version="[/]v", fraction=0.1, error="\x1b[2J[/]"
            )
        ],
        control_signed=False,
    )


def test_the_status_views_show_hostile_heartbeats_literally_within_80_columns() -> None:
    rows = [
        worker_row(heartbeat("vm-4242"), False, NOW),
        worker_row(hostile_heartbeat(), False, NOW),
        worker_row(heartbeat("x" * 5000), True, NOW),
    ]
    short = render(status_view(rows, "streamclf.status"))
    assert_clean(short)
    assert all(len(line) <= 80 for line in short.splitlines()), short
    assert "…" not in short.replace(f"…(+{5000 - SHOWN_CHARS})", "")  # only the 5000-char id
    assert "vm-4242" in short and "news@v12" in short and "sentiment@v3" in short
    assert "[/]evil\\x1b[2J" in short and "[/]boom\\x0d\\x1b[2K" in short
    wide = render(status_view(rows, "streamclf.status", wide=True), width=400)
    assert_clean(wide)
    assert "[bold]h\\x1b]0;title\\x07:4242" in wide and "[/]m@v\\x1b failed" in wide
    assert "shadow [/]m@[/]v 10%" in wide and "[/]m\\x1b[31m@[/]v" in wide
    warning = unsigned_warning(rows) or ""
    assert "[/]evil\\x1b[2J" in warning and "\x1b" not in warning


def test_the_short_view_keeps_key_fields_whole_at_80_columns() -> None:
    ids = ["vm-4242", "streamclf-worker-0-12345", "node-7.example.org-31337"]
    rows = [worker_row(heartbeat(i), False, NOW) for i in ids]
    rows.append(worker_row(heartbeat("stale-one", NOW - 60_000), True, NOW))
    text = render(status_view(rows, "streamclf.status (stale after 15s)"))
    assert all(len(line) <= 80 for line in text.splitlines()), text
    assert "…" not in text
    for worker_id in [*ids, "stale-one"]:
        assert worker_id in text, text
    assert text.count("ready") == 3 and "stale" in text and text.count("news@v12") == 4


def test_compare_outcome_rollouts_and_dead_letters_show_markup_literally() -> None:
    results = [
        ShadowResult(
            id=f"e{i}",
            model="news",
            active_version="[/]v1",
            candidate_version="v2",
            active_label="[/]a\x1b[2J",
            active_label_id=0,
            active_score=0.9,
            candidate_label="[bold]b",
            candidate_label_id=1,
            candidate_score=0.8,
            agree=False,
            active_ms=1.0,
            active_batch=1,
            candidate_ms=1.0,
            candidate_batch=1,
            source_topic="in",
            source_partition=0,
            source_offset=i,
        )
        for i in range(3)
    ]
    text = "".join(render(t, 200) for t in compare_tables(build_report("news", "v2", results, {})))
    assert_clean(text)
    assert "[/]a\\x1b[2J" in text and "[bold]b" in text and "[/]v1" in text
    outcome = SwapOutcome("[/]m", "v2", "failed", [WorkerOutcome("[/]w", "failed", "[/]v", "[/]e")])
    assert all(s in render(outcome_table(outcome), 200) for s in ("[/]w", "[/]e", "[/]m -> v2"))
    roll = render(
        rollouts_text(
            [
                {
                    "kind": "canary",
                    "model": "[/]m",
                    "version": "v",
                    "fraction": 0.5,
                    "events": 3,
                    "error": "[/]x\x1b",
                }
            ]
        )
    )
    assert "canary [/]m@v 50% n=3 [/]x\\x1b" in roll
    letters = [
        DeadLetter(
            kind=ErrorKind.DECODE,
            message="[/]bad \x1b[2J",
            source_topic="in",
            source_partition=0,
            source_offset=1,
            value_b64=base64.b64encode(b"[/]v\x1b[31m").decode(),
        ),
        DeadLetter(
            kind=ErrorKind.DECODE,
            message="m",
            value_b64="%%% not base64",
            source_topic="in",
            source_partition=0,
            source_offset=2,
        ),
    ]
    table = render(dead_letters_table("in.dlq", letters), 200)
    assert_clean(table)
    assert "[/]bad \\x1b[2J" in table and "[/]v\\x1b[31m" in table and "not base64" in table


# -- which heartbeat speaks for a worker ---------------------------------------------------
def test_a_heartbeat_from_the_future_is_set_aside_and_hides_nothing() -> None:
    real = heartbeat("w1", NOW - 60_000)  # its worker died a minute ago
    forged = heartbeat("w1", NOW + TEN_YEARS_MS)
    for order in ([real, forged], [forged, real]):
        heard = fold(order, NOW, 30)
        assert heard.latest == {"w1": real} and heard.future == {"w1": forged}
        workers = split(heard, NOW, stale_s=15)
        assert (workers.live, workers.stale, workers.future) == ([], [real], [forged])
        rows = worker_rows(workers)
        assert [(r["state"], r["age_s"]) for r in rows] == [
            ("stale", 60.0), ("clock-skew", -TEN_YEARS_MS / 1000)
        ]  # fmt: skip
        assert unsigned_warning(rows) is None  # neither is live
        assert "clock-skew" in render(status_view(rows))


def test_a_heartbeat_within_the_skew_bound_is_taken_and_the_latest_credible_wins() -> None:
    older, ahead = heartbeat("w1", NOW - 5000), heartbeat("w1", NOW + 20_000, ready=False)
    heard = fold([ahead, older], NOW, 30)
    assert heard.latest == {"w1": ahead} and heard.future == {}
    assert worker_rows(split(heard, NOW, 15)) == [worker_row(ahead, False, NOW)]
    assert worker_row(ahead, False, NOW)["age_s"] == 0.0  # a little ahead: age 0, not negative


def test_the_skew_bound_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_SKEW_ENV, "5")
    assert max_skew_s() == 5.0
    for bad in ("soon", "-1", "inf", "nan"):
        monkeypatch.setenv(MAX_SKEW_ENV, bad)
        assert max_skew_s() == DEFAULT_MAX_SKEW_S


def test_tail_shows_control_characters_visibly_on_a_terminal() -> None:
    from admin.commands.stream import _shown

    value = '{"id": "1", "text": "北京\x1b[2J\r"}'
    assert _shown(value) == '{"id": "1", "text": "北京\\x1b[2J\\x0d"}'
    assert _shown("x" * 5000) == "x" * 5000  # a terminal line is never cut
