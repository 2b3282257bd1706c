"""Cached values are untrusted: only a prediction this engine could have made is served."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from worker.cache import MAX_VALUE_BYTES, _loads
from worker.cached import CorruptValue, checked_prediction, to_dict
from worker.inference import Prediction

ID2LABEL = {0: "体育", 1: "财经", 2: "科技"}
GOOD = Prediction("财经", 1, 0.7, [("财经", 1, 0.7), ("体育", 0, 0.2)], truncated=True)


def forged(**changes: Any) -> dict[str, Any]:
    return {**to_dict(GOOD), **changes}


def test_a_value_the_engine_wrote_reads_back_unchanged() -> None:
    value = orjson.loads(orjson.dumps(to_dict(GOOD)))
    assert checked_prediction(value, ID2LABEL, top_k=2) == GOOD
    exact = forged(score=1, scores=[["财经", 1, 1]])  # an integer 1 is a score of 1.0
    assert checked_prediction(exact, ID2LABEL, 5).score == 1.0


@pytest.mark.parametrize(
    "value",
    [
        forged(score="nan"),
        forged(score=math.nan, scores=[["财经", 1, math.nan]]),
        forged(label="外星", label_id=99, score=7.5, scores=[["外星", 99, 7.5]]),
        forged(score=7.5, scores=[["财经", 1, 7.5]]),
        forged(score=-0.1, scores=[["财经", 1, -0.1]]),
        forged(label="体育"),  # the name of another id
        forged(label="财经 ", scores=[["财经 ", 1, 0.7]]),
        forged(scores=[["财经", 1, 0.7]] + [["体育", 0, 0.1]] * 3),  # repeats an id
        forged(scores=[["体育", 0, 0.2], ["财经", 1, 0.7]]),  # not best first
        forged(scores=[["财经", 1, 0.7], ["体育", 0, 0.2], ["科技", 2, 0.1]]),  # over top-k 2
        forged(scores=[["财经", 1, 0.7]] * 200_000),
        forged(scores=[]),
        forged(label_id=True),
        forged(label_id="1"),
        forged(truncated="yes"),
        forged(score=0.6),  # the prediction is not the first score
        {"label": "财经"},
        [1, 2],
        {},
        "财经",
        None,
    ],
)
def test_forged_values_are_corrupt(value: Any) -> None:
    with pytest.raises(CorruptValue):
        checked_prediction(value, ID2LABEL, top_k=2)


def test_values_over_the_byte_bound_or_not_json_are_not_parsed() -> None:
    huge = orjson.dumps(forged(scores=[["财经", 1, 0.7]] * 200_000))
    assert len(huge) > MAX_VALUE_BYTES and _loads(huge) == {}
    assert _loads(b"[" * 5000 + b"]" * 5000) == {}
    assert _loads(b"\xff\xfe not json") == {}
    assert _loads(b"[1]") == {}
    assert _loads(orjson.dumps(to_dict(GOOD)))["label"] == "财经"
