"""Events in and labelled events out for the demo, and the tables it prints."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, TypedDict

from rich.table import Table

from admin.safe_text import cell
from bus.producing import sender
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings

# Written for the demo (not from the training data).
SHOWCASE = [
    "这家酒店的服务非常好，房间干净，下次还会再来。",
    "质量太差了，用了两天就坏了，不推荐购买。",
    "物流很快，包装完好，宝贝和描述的一样。",
    "味道一般，价格偏贵，服务员态度也不好。",
    "屏幕很清晰，运行速度快，性价比很高。",
    "房间又小又吵，空调还坏了，非常失望。",
    "这本书写得很精彩，一口气读完了。",
    "客服态度恶劣，退货拖了一个月。",
]


def event(event_id: str, text: str) -> tuple[bytes, bytes]:
    body = json.dumps({"id": event_id, "text": text}, ensure_ascii=False).encode()
    return event_id.encode(), body


async def produce(kafka: KafkaSettings, topic: str, events: Sequence[tuple[str, str]]) -> None:
    async with sender(kafka) as out:
        await out.send_many(topic, [event(i, t) for i, t in events])


async def trickle(
    kafka: KafkaSettings, topic: str, events: Sequence[tuple[str, str]], per_s: float,
    sent: list[str],
) -> None:  # fmt: skip
    """Produce `events` at about `per_s` events/s (in small acknowledged batches); append each
    id to `sent` once the broker acknowledged it."""
    step = max(1, int(per_s / 10))
    async with sender(kafka) as out:
        for start in range(0, len(events), step):
            chunk = events[start : start + step]
            await out.send_many(topic, [event(i, t) for i, t in chunk])
            sent.extend(i for i, _ in chunk)
            await asyncio.sleep(step / per_s)


# "in" is a keyword, hence the functional form.
Delivery = TypedDict(
    "Delivery",
    {"in": int, "out": int, "lost": int, "duplicates": int, "by_version": dict[str, int]},
)


async def outputs(
    kafka: KafkaSettings, topic: str, ids: set[str], timeout_s: float = 120
) -> list[dict[str, Any]]:
    """Labelled events of `topic` whose id is in `ids`, once all arrived (or at the timeout)."""
    records = await read_until_quiet(
        kafka, [topic], quiet_s=0.5, timeout_s=timeout_s, wait_for_topics_s=timeout_s,
        expected=len(ids),
    )  # fmt: skip
    found = [json.loads(r.value or b"null") for r in records]
    return [o for o in found if o and o["id"] in ids]


def label_table(
    title: str, texts: dict[str, str], events: list[dict[str, Any]], truth: dict[str, str]
) -> Table:
    table = Table(title=title)
    # The short columns keep their width in an 80-column terminal; the text gives way.
    for name, width in (("label", 10), ("score", 5), ("human", 8), ("ver", 3), ("cached", 6)):
        table.add_column(name, no_wrap=True, min_width=width)
    table.add_column("text", max_width=44)  # wraps rather than pushing the table past the edge
    for e in sorted(events, key=lambda e: (not e["id"].startswith("show"), e["id"])):
        human = truth.get(e["id"], "")
        mark = "" if not human else (" ✓" if human == e["label"] else " ✗")
        table.add_row(
            cell(e["label"] + mark), f"{e['score']:.3f}", cell(human or "-"), cell(e["version"]),
            "yes" if e["cached"] else "no", cell(_short(" ".join(texts[e["id"]].split()))),
        )  # fmt: skip
    return table


def _short(text: str, chars: int = 40) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def delivery(sent: list[str], out: list[dict[str, Any]]) -> Delivery:
    """In = out: every acknowledged id came back exactly once; which versions answered."""
    ids = Counter(o["id"] for o in out)
    return {
        "in": len(sent),
        "out": len(ids),
        "lost": len(set(sent) - set(ids)),
        "duplicates": sum(n - 1 for n in ids.values()),
        "by_version": dict(sorted(Counter(o["version"] for o in out).items())),
    }
