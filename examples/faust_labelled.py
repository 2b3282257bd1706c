# ruff: noqa: UP006, UP035, UP045  (faust reads these annotations; keep typing forms)
"""A faust-streaming app that consumes a streamclf labelled topic.

    STREAMCLF_EXAMPLE_TOPIC=news.labelled python examples/faust_labelled.py worker --without-web

`LabelledEvent` below mirrors schemas/json/LabelledEvent.schema.json field for field, so
faust decodes each JSON value into a typed record. The agent prints one line per event and
keeps a count per label. Settings come from the environment:
STREAMCLF_EXAMPLE_BOOTSTRAP (127.0.0.1:19092), STREAMCLF_EXAMPLE_TOPIC, STREAMCLF_EXAMPLE_APP
(the faust app id, which is also the consumer group).
"""

import json
import os
from collections import Counter
from typing import Any, Dict, List, Optional

import faust


class LabelScore(faust.Record):
    label: str
    label_id: int
    score: float


class Timings(faust.Record):
    queue_ms: float = 0.0
    inference_ms: float = 0.0
    batch_size: int = 1


class LabelledEvent(faust.Record, serializer="json"):
    schema_version: int
    id: str
    label: str
    label_id: int
    score: float
    scores: List[LabelScore]
    model: str
    version: str
    source_topic: str
    source_partition: int
    source_offset: int
    cached: bool = False
    truncated: bool = False
    metadata: Optional[Dict[str, Any]] = None
    timings: Optional[Timings] = None
    worker_id: Optional[str] = None
    produced_at_ms: Optional[int] = None


app = faust.App(
    os.environ.get("STREAMCLF_EXAMPLE_APP", "streamclf-faust-example"),
    broker="kafka://" + os.environ.get("STREAMCLF_EXAMPLE_BOOTSTRAP", "127.0.0.1:19092"),
    web_enabled=False,
    consumer_auto_offset_reset="earliest",
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    topic_allow_declare=False,  # the labelled topic exists: streamclf's worker made it
)
labelled = app.topic(
    os.environ.get("STREAMCLF_EXAMPLE_TOPIC", "news.labelled"), value_type=LabelledEvent
)
per_label = Counter()


@app.agent(labelled)
async def show(events):
    async for event in events:
        per_label[event.label] += 1
        top = event.scores[0]
        line = {"id": event.id, "label": event.label, "score": top.score, "version": event.version}
        print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    app.main()
