"""The fast path's bytes are the contract: they parse to the same LabelledEvent as the pydantic
path builds, for odd text, ids and metadata too (whatever the decoder accepts)."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.decoding import decode_event
from schemas.events import LabelledEvent, Timings
from worker.inference import Prediction
from worker.outputs import BatchEncoder, labelled_event

TIMINGS = Timings(queue_ms=0.0, inference_ms=12.5, batch_size=7)
PRED = Prediction(
    "mainland China politics",
    0,
    0.7211663722991943,
    [("mainland China politics", 0, 0.7211663722991943), ("sports", 6, 1e-300), ("x", 2, 0.0)],
    truncated=True,
)


def both(
    event_id: str, metadata: dict[str, Any] | None, pred: Prediction = PRED, cached: bool = False
) -> tuple[LabelledEvent, LabelledEvent]:
    encoder = BatchEncoder("news", "v2", "worker-ü", TIMINGS)
    fast = encoder.encode(event_id, pred, cached, "in.topic", 3, 2**40, metadata, 1_700_000_000_000)
    slow = labelled_event(
        event_id,
        pred,
        cached,
        "news",
        "v2",
        "worker-ü",
        TIMINGS,
        ("in.topic", 3, 2**40),
        metadata,
        1_700_000_000_000,
    )
    return LabelledEvent.model_validate_json(fast), slow


def test_fast_bytes_parse_to_the_pydantic_event() -> None:
    odd = {
        "emoji": "😀",
        "cjk": "北京",
        "nul": "\x00",
        "zw": "\u200b\ufeff",
        "rtl": "\u202e",
        "big": 2**64 - 1,
        "neg": -(2**63),
        "float": 1e308,
        "tiny": 5e-324,
        "nested": [[[{"a": None, "b": True}]]],
        "": "",
    }
    fast, slow = both('id "quoted" \\ \n\t 😀', odd, cached=True)
    assert fast == slow
    assert fast.model_dump_json() == slow.model_dump_json()


def test_without_metadata_and_with_the_prediction_shared_in_a_batch() -> None:
    encoder = BatchEncoder("news", "v2", "w", TIMINGS)
    a = encoder.encode("a", PRED, False, "t", 0, 1, None, None)
    b = encoder.encode("b", PRED, True, "t", 0, 2, {}, 0)
    assert orjson.loads(a)["scores"] == orjson.loads(b)["scores"]
    assert LabelledEvent.model_validate_json(a).metadata is None
    assert LabelledEvent.model_validate_json(b).metadata == {}


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_value = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    event_id=st.text(min_size=1, max_size=40),
    text=st.text(min_size=1, max_size=40),
    metadata=st.none() | st.dictionaries(st.text(max_size=8), json_value, max_size=5),
)
def test_anything_the_decoder_accepts_serialises_to_the_same_event(
    event_id: str, text: str, metadata: dict[str, Any] | None
) -> None:
    raw = json.dumps({"id": event_id, "text": text, "metadata": metadata}).encode()
    event = decode_event(raw, max_bytes=1_000_000)
    if not hasattr(event, "metadata"):
        return  # refused (lone surrogates, invisible text): never serialised
    fast, slow = both(event.id, event.metadata)
    assert fast == slow
