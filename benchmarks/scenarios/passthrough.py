"""A raw Kafka pass-through with the worker's client settings: consume, decode, produce an
answer with the same `id`, commit after the acks. No model, no cache, no batching logic.

Run as a process: `python -m benchmarks.scenarios.passthrough --bootstrap H:P --in T --out T2`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal

from bus.clients import make_consumer, make_producer
from bus.settings import KafkaSettings


async def pass_through(
    settings: KafkaSettings, topic: str, out: str, group: str, max_records: int
) -> None:
    consumer = make_consumer(settings, topic, group_id=group)
    producer = make_producer(settings)
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100, max_records=max_records)
            futures = []
            for records in batches.values():
                for record in records:
                    event = json.loads(record.value)
                    answer = {"id": event["id"], "label": "pass", "score": 1.0, "cached": False}
                    futures.append(
                        await producer.send(out, json.dumps(answer).encode(), key=record.key)
                    )
            if futures:
                await asyncio.gather(*futures)
                await consumer.commit()
    finally:
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--in", dest="topic", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--group", default="bench-passthrough")
    parser.add_argument("--max-records", type=int, default=32)
    args = parser.parse_args()
    settings = KafkaSettings(bootstrap_servers=args.bootstrap)
    asyncio.run(pass_through(settings, args.topic, args.out, args.group, args.max_records))


if __name__ == "__main__":
    main()
