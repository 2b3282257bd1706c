"""`streamclf review send FILE` and `streamclf review label`: reviewers' labels back to the
trainer, as `Feedback` (source "review") on the feedback topic.

`send` reads a JSON-lines file of answers: `{"id", "label"}` (the text is looked up on the
review topic) or a whole review request with `label` set to the right one. `label` shows the
review requests one at a time and reads a key per label. A bad line or record is one line
on stderr and is skipped; the rest is sent.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer
from rich.markup import escape

from admin.context import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    BootstrapOpt,
    console,
    err_console,
    fail,
    kafka_settings,
    run,
)
from bus.exceptions import BusError
from bus.settings import KafkaSettings
from schemas.records import Rejection, decode_answer, decode_review
from schemas.review import ReviewRequest
from schemas.training import Feedback

log = logging.getLogger(__name__)
app = typer.Typer(help="Send reviewers' labels for review requests to the trainer.")
REVIEW_SOURCE = "review"
FeedbackTopicOpt = typer.Option(
    "streamclf.train.feedback",
    "--feedback-topic",
    envvar="STREAMCLF_TRAINER_FEEDBACK_TOPIC",
    show_envvar=True,
)
ReviewTopicOpt = typer.Option(
    None, "--review-topic", envvar="STREAMCLF_REVIEW_TOPIC", show_envvar=True,
    help="Where the workers send review requests (to look texts up by id)",
)  # fmt: skip


async def read_requests(
    kafka: KafkaSettings, topic: str, quiet_s: float = 2.0
) -> dict[str, ReviewRequest]:
    """Every valid review request on `topic` by id (the latest wins); bad records skipped."""
    from bus.reading import read_until_quiet
    from bus.rejected import skip

    found: dict[str, ReviewRequest] = {}
    for r in await read_until_quiet(kafka, [topic], quiet_s=quiet_s, timeout_s=60):
        request = decode_review(r.value)
        if isinstance(request, Rejection):
            skip(log, "review", f"{r.topic}[{r.partition}]@{r.offset}", request)
            continue
        found[request.id] = request
    return found


def _send(kafka: KafkaSettings, topic: str, rows: list[Feedback]) -> None:
    from bus.producing import produce_many

    records = [(f.id.encode(), f.model_dump_json().encode()) for f in rows]
    run(produce_many(kafka, topic, records))


@app.command("send")
def send(
    path: Path = typer.Argument(..., help="JSON lines: {id, label} or review requests with label"),
    model: str | None = typer.Option(None, "--model", help="Model, when a line names none"),
    review_topic: str | None = ReviewTopicOpt,
    feedback_topic: str = FeedbackTopicOpt,
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Send labelled answers as feedback. Exit 0 when every line was sent, 1 when some were
    skipped (each named on stderr), 2 when none could be."""
    kafka = kafka_settings(bootstrap)
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", EXIT_USAGE)
    answers = []
    skipped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        answer = decode_answer(line)
        if isinstance(answer, Rejection):
            err_console.print(escape(f"line {number}: skipped ({answer.reason}): {answer.message}"))
            skipped += 1
            continue
        answers.append((number, answer))
    lookup: dict[str, ReviewRequest] = {}
    if review_topic and any(a.text is None for _, a in answers):
        try:
            lookup = run(read_requests(kafka, review_topic))
        except BusError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
    rows = []
    for number, a in answers:
        request = lookup.get(a.id)
        text = a.text or (request.text if request else None)
        pair = a.text_pair if a.text else (request.text_pair if request else None)
        name = a.model or (request.model if request else None) or model
        why = None
        if not text:
            where = f"on {review_topic}" if review_topic else "(no --review-topic)"
            why = f"no text and no review request {a.id!r} {where}"
        elif not name:
            why = "names no model (give --model)"
        if why:
            err_console.print(escape(f"line {number}: skipped: {why}"))
            skipped += 1
            continue
        rows.append(
            Feedback(
                id=a.id, model=name, text=text, text_pair=pair, label=a.label, source=REVIEW_SOURCE
            )
        )
    if not rows:
        fail(f"nothing to send from {path} ({skipped} lines skipped)", EXIT_USAGE)
    try:
        _send(kafka, feedback_topic, rows)
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    console.print(escape(f"sent {len(rows)} reviewed labels to {feedback_topic}"))
    raise typer.Exit(EXIT_FAILED if skipped else EXIT_OK)


@app.command("label")
def label(
    review_topic: str = typer.Option(
        ..., "--review-topic", envvar="STREAMCLF_REVIEW_TOPIC", show_envvar=True
    ),
    model: str | None = typer.Option(None, "--model", help="Only this model's requests"),
    labels: str | None = typer.Option(
        None, "--labels", help="Comma-separated label names, in key order (default: the model's)"
    ),
    limit: int = typer.Option(20, "--limit", min=1, help="Requests to show at most"),
    feedback_topic: str = FeedbackTopicOpt,
    bootstrap: str | None = BootstrapOpt,
) -> None:
    """Show review requests one at a time and read a label key (1..N), s to skip, q to stop;
    then send the answers as feedback."""
    kafka = kafka_settings(bootstrap)
    try:
        requests = list(run(read_requests(kafka, review_topic)).values())
    except BusError as exc:
        fail(str(exc), EXIT_UNAVAILABLE)
    requests = [r for r in requests if model is None or r.model == model][:limit]
    if not requests:
        fail(f"no review requests on {review_topic}", EXIT_UNAVAILABLE)
    rows: list[Feedback] = []
    for i, request in enumerate(requests, 1):
        names = _labels(request, labels)
        console.print(
            f"[bold]{i}/{len(requests)}[/] {escape(request.model)}@{escape(request.version)} "
            f"said [bold]{escape(request.label)}[/] ({request.score:.2f}, {request.reason})"
        )
        console.print(escape(request.text), highlight=False)
        keys = "  ".join(f"{k}={escape(n)}" for k, n in enumerate(names, 1))
        console.print(f"{keys}  s=skip  q=stop", highlight=False)
        answer = _read_key(len(names))
        if answer == "q":
            break
        if answer == "s":
            continue
        rows.append(
            Feedback(
                id=request.id,
                model=request.model,
                text=request.text,
                text_pair=request.text_pair,
                label=names[int(answer) - 1],
                source=REVIEW_SOURCE,
            )
        )
    if rows:
        try:
            _send(kafka, feedback_topic, rows)
        except BusError as exc:
            fail(str(exc), EXIT_UNAVAILABLE)
    console.print(escape(f"sent {len(rows)} reviewed labels to {feedback_topic}"))


def _labels(request: ReviewRequest, given: str | None) -> list[str]:
    if given:
        return [n.strip() for n in given.split(",") if n.strip()]
    try:
        from admin.context import model_store

        store = model_store(None)
        return list(store.card(request.model, request.version).labels)
    except Exception:  # not in this machine's store: the labels the request names
        return [s.label for s in sorted(request.scores, key=lambda s: s.label_id)]


def _read_key(count: int) -> str:
    """A label number, "s" or "q" from stdin (asked again on anything else; EOF stops)."""
    while True:
        line = sys.stdin.readline()
        if not line:
            return "q"
        key = line.strip().lower()
        if key in ("s", "q") or (key.isdigit() and 1 <= int(key) <= count):
            return key
        err_console.print(f"type 1..{count}, s or q")
