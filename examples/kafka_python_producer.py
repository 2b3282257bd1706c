"""Send texts to a streamclf input topic with kafka-python.

    python examples/kafka_python_producer.py --topic news "北京上个月召开了两会" "国足客场两球不敌对手"
    cat texts.txt | python examples/kafka_python_producer.py --topic news

Each text becomes a TextEvent (schemas/json/TextEvent.schema.json): {"id", "text"} plus the
optional "text_pair" and "metadata". The id is the record key too, so every event of one id
goes to the same partition. Prints "id<TAB>text" per event once the broker acknowledged it.
"""

import argparse
import json
import sys
import uuid

from kafka import KafkaProducer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092")
    parser.add_argument("--topic", required=True)
    parser.add_argument("--id-prefix", default="", help="ids are PREFIX + N instead of random")
    parser.add_argument("texts", nargs="*", help="texts (default: one per line on stdin)")
    args = parser.parse_args(argv)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]

    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap,
        acks="all",  # counted as sent once every in-sync replica has it
        key_serializer=str.encode,
        value_serializer=lambda event: json.dumps(event, ensure_ascii=False).encode(),
    )
    sent = []
    for n, text in enumerate(texts):
        event = {"id": f"{args.id_prefix}{n}" if args.id_prefix else uuid.uuid4().hex, "text": text}
        sent.append((event, producer.send(args.topic, key=event["id"], value=event)))
    producer.flush()
    for event, future in sent:
        future.get(timeout=30)  # raises if the broker refused the record
        print(f"{event['id']}\t{event['text']}", flush=True)
    producer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
