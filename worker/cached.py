"""Cached predictions are untrusted input: checked like an event before they are served.

A value read from the cache becomes a `Prediction` only when it is what the engine under its
key could have computed: bounded in size before parsing (`worker.cache.MAX_VALUE_BYTES`), of the
right types (strict: no strings for numbers, no booleans for ids), `label_id` in the label
map with `label` its name, every score finite and in [0, 1], at most top-k entries with
distinct ids, best first, the first one being the prediction. Anything else raises
`CorruptValue`: the pipeline counts it (`streamclf_cache_corrupt_total`) and recomputes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from worker.inference import Prediction

MAX_ENTRIES = 1024  # parsing bound; the label map and top-k bound it further


class CorruptValue(ValueError):
    """A cached value that is not a prediction of this engine."""


class CachedValue(BaseModel):
    """The stored form (`prediction_to_dict`), checked for types only."""

    model_config = ConfigDict(extra="ignore")

    label: StrictStr
    label_id: StrictInt
    score: StrictFloat
    scores: list[tuple[StrictStr, StrictInt, StrictFloat]] = Field(
        min_length=1, max_length=MAX_ENTRIES
    )
    truncated: StrictBool = False


def to_dict(p: Prediction) -> dict[str, Any]:
    """What is stored in the cache for a computed prediction."""
    return {
        "label": p.label,
        "label_id": p.label_id,
        "score": p.score,
        "scores": [list(s) for s in p.scores],
        "truncated": p.truncated,
    }


def checked_prediction(value: Any, id2label: Mapping[int, str], top_k: int) -> Prediction:
    """The cached `value` as a `Prediction` of an engine with this label map and top-k."""
    try:
        v = CachedValue.model_validate(value)
    except ValidationError as exc:
        raise CorruptValue(f"not a prediction ({exc.error_count()} errors)") from None
    k = min(top_k, len(id2label))
    if len(v.scores) > k:
        raise CorruptValue(f"{len(v.scores)} scores, more than top-k {k}")
    seen: set[int] = set()
    previous = math.inf
    for label, label_id, score in v.scores:
        _check_entry(label, label_id, score, id2label)
        if label_id in seen or score > previous:
            raise CorruptValue("scores repeat an id or are not best first")
        seen.add(label_id)
        previous = score
    _check_entry(v.label, v.label_id, v.score, id2label)
    if (v.label, v.label_id, v.score) != v.scores[0]:
        raise CorruptValue("the prediction is not the first score")
    return Prediction(v.label, v.label_id, v.score, list(v.scores), v.truncated)


def _check_entry(label: str, label_id: int, score: float, id2label: Mapping[int, str]) -> None:
    if id2label.get(label_id) != label:
        raise CorruptValue(f"label_id {label_id} / label {label[:40]!r} not in the label map")
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise CorruptValue(f"score {score} outside [0, 1]")
