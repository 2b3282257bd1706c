"""The loop in its short form (shipped data only; `make loop` runs the full one): drift after
a domain shift, review requests, reviewers' labels back, a candidate from the feedback round,
its shadow run and the gate's promote, on the real broker."""

from __future__ import annotations

import pytest

from benchmarks.loop import run_loop, short_config

pytestmark = pytest.mark.integration


async def test_the_loop_short_form(broker, tmp_path):
    result = await run_loop(short_config(), broker, tmp_path, say=lambda _: None)
    quiet, shifted = result["drift_before_shift"], result["drift_after_shift"]
    # the stream moved away from what v1 knew, and the gauges say so
    assert shifted["over"], shifted
    assert max(shifted[f] for f in shifted["over"]) > max(quiet[f] or 0 for f in shifted["over"])
    assert shifted["label_psi"] > quiet["label_psi"]  # mostly negative: hard book reviews
    assert not quiet["over"], quiet
    # review requests flowed, more of them from the new domain (half the stream), and came
    # back as labels
    review = result["review"]
    assert review["answered"] > 0 and review["send_exit"] == 0
    assert review["from_new_domain"] > review["requests"] / 2
    # the trainer made a candidate from them; it shadowed v1; the gate decided
    assert result["feedback_round"]["status"] == "succeeded"
    assert result["feedback_round"]["metrics"]["feedback_examples"] >= review["answered"]
    compare = result["shadow"]["compare"]
    assert result["shadow"]["exit"] == 0 and isinstance(compare, dict), compare
    assert result["promote"]["exit"] in (0, 1), result["promote"]
    acc = result["new_domain_accuracy"]
    assert 0 <= acc["before"] <= 1 and 0 <= acc["after"] <= 1
    if result["promote"]["exit"] == 0:
        assert result["new_domain_stream_accuracy"]["after"] is not None
    assert result["worker_exit"] == 0
