"""`streamclf review send` and `review label` against the real broker: answers become
`Feedback` (source "review") on the feedback topic; bad lines and records are skipped."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from schemas.records import decode_feedback
from schemas.review import ReviewRequest
from schemas.training import Feedback
from tests.cli import ROOT, cli_env, streamclf
from tests.integration.harness import collect, make_topics, produce

pytestmark = pytest.mark.integration


def _request(i: int, text: str) -> bytes:
    return ReviewRequest(
        id=f"r{i}", model="sentiment", version="v1", text=text, label="positive",
        label_id=1, score=0.51, margin=0.02, reason="low_margin", source_topic="in",
        source_partition=0, source_offset=i,
    ).model_dump_json().encode()  # fmt: skip


async def _feedback(broker, topic: str, expected: int) -> list[Feedback]:
    rows = await collect(broker, [topic], expected, 30, quiet_s=1)
    out = []
    for row in rows:
        raw = json.dumps({k: v for k, v in row.items() if not k.startswith("_")}).encode()
        decoded = decode_feedback(raw)
        assert isinstance(decoded, Feedback), decoded
        out.append(decoded)
    return out


async def test_review_send_looks_texts_up_and_skips_bad_lines(broker, uid, tmp_path):
    review, feedback = f"rev-{uid}", f"fb-{uid}"
    await make_topics(broker, [review, feedback], 1)
    await produce(
        broker, review, [_request(1, "[bold]书[/bold]不错"), b"{not json", _request(2, "差")]
    )
    answers = tmp_path / "answers.jsonl"
    full = json.loads(_request(3, "整条请求"))
    answers.write_text(
        "\n".join(
            [
                json.dumps({"id": "r1", "label": "negative"}),
                "not json at all",
                json.dumps({"id": "nope", "label": 0}),
                json.dumps({**full, "label": 0}, ensure_ascii=False),
                json.dumps({"id": "r2", "label": "positive"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    proc = await asyncio.to_thread(
        streamclf, "review", "send", str(answers), "--review-topic", review,
        "--feedback-topic", feedback, "-b", broker.bootstrap_servers,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # two lines skipped, the rest sent
    assert "Traceback" not in proc.stderr
    assert "line 2: skipped (decode)" in proc.stderr
    assert "line 3: skipped: no text and no review request 'nope'" in proc.stderr
    got = {f.id: f for f in await _feedback(broker, feedback, 3)}
    assert set(got) == {"r1", "r2", "r3"}
    assert got["r1"].text == "[bold]书[/bold]不错" and got["r1"].label == "negative"
    assert got["r3"].text == "整条请求" and got["r3"].label == 0
    assert {f.source for f in got.values()} == {"review"}
    assert {f.model for f in got.values()} == {"sentiment"}


async def test_review_label_reads_keys_and_sends_the_answers(broker, uid):
    review, feedback = f"rev-{uid}", f"fb-{uid}"
    await make_topics(broker, [review, feedback], 1)
    await produce(broker, review, [_request(i, f"[red]文本{i}[/red]") for i in range(3)])
    cmd = [sys.executable, "-m", "admin.cli", "review", "label", "--review-topic", review,
           "--labels", "negative,positive", "--feedback-topic", feedback,
           "-b", broker.bootstrap_servers]  # fmt: skip
    proc = await asyncio.to_thread(
        subprocess.run, cmd, input="x\n2\ns\n1\n", capture_output=True, text=True,
        timeout=120, env=cli_env(), cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "[red]文本0[/red]" in proc.stdout  # shown as it is, not as markup
    assert "type 1..2, s or q" in proc.stderr
    got = {f.id: f.label for f in await _feedback(broker, feedback, 2)}
    assert got == {"r0": "positive", "r2": "negative"}
