"""Read a streamclf labelled topic with kafka-python, each event id once.

    python examples/kafka_python_consumer.py --topic news.labelled --group my-app

streamclf delivers at least once: after a worker crash, events it had not committed are
classified again and published again with the same `id`. This consumer drops repeats with a
bounded memory of recent ids (a database would use `id` as a unique key instead) and commits
its offsets after handling each batch. Prints one JSON line per new event: id, label, score,
model and version (the fields of schemas/json/LabelledEvent.schema.json it uses).
"""

import argparse
import json
import sys
from collections import OrderedDict

from kafka import KafkaConsumer


class RecentIds:
    """The last `size` ids seen: `add` says whether an id is new."""

    def __init__(self, size):
        self.size = size
        self._ids = OrderedDict()

    def add(self, event_id):
        if event_id in self._ids:
            self._ids.move_to_end(event_id)
            return False
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument("--idle-s", type=float, default=10.0, help="stop after S quiet seconds")
    parser.add_argument("--max-events", type=int, default=None, help="stop after N new events")
    parser.add_argument("--remember", type=int, default=100_000, help="ids kept for de-duplication")
    parser.add_argument("--session-timeout-ms", type=int, default=10_000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=3_000)
    args = parser.parse_args(argv)

    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=args.session_timeout_ms,
        heartbeat_interval_ms=args.heartbeat_interval_ms,
        value_deserializer=json.loads,
    )
    recent, new, repeats, quiet_ms = RecentIds(args.remember), 0, 0, 0
    try:
        while quiet_ms < args.idle_s * 1000 and (args.max_events is None or new < args.max_events):
            batch = consumer.poll(timeout_ms=500)
            quiet_ms = 0 if batch else quiet_ms + 500
            for records in batch.values():
                for record in records:
                    event = record.value
                    if not recent.add(event["id"]):
                        repeats += 1
                        continue
                    new += 1
                    keep = ("id", "label", "score", "model", "version")
                    print(json.dumps({k: event[k] for k in keep}, ensure_ascii=False), flush=True)
            if batch:
                consumer.commit()  # after handling: a crash repeats, never skips
    finally:
        consumer.close()
    print(f"{new} events, {repeats} repeats dropped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
