"""Reviewed feedback (source "review") is weighted in a feedback round (trainer/feedback.py)."""

from __future__ import annotations

from modelstore.store import ModelStore
from schemas.training import Feedback
from trainer.feedback import FeedbackLog, build_round


def test_reviewed_examples_count_review_weight_times_in_a_round(tmp_path):
    log = FeedbackLog(ModelStore(tmp_path, export_onnx=False))
    log.append("m", Feedback(id="a", text="普通反馈", label=0), 0)
    log.append("m", Feedback(id="b", text="人工审核", label=1, source="review"), 1)
    log.append("m", Feedback(id="c", text="先审核后更正", label=0, source="review"), 0)
    log.append("m", Feedback(id="c", text="先审核后更正", label=1), 1)  # a later plain fix wins
    examples = log.examples("m", 0, log.count("m"), review_weight=3)
    texts = sorted(e.text for e in examples)
    assert texts == ["人工审核"] * 3 + ["先审核后更正", "普通反馈"]
    path, upto, rows, replay = build_round(log, "m", ["neg", "pos"], None, 0, 1, review_weight=3)
    assert (upto, rows, replay) == (4, 5, 0)
    assert len(path.read_text(encoding="utf-8").splitlines()) == 5
