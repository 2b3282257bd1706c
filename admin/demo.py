"""`make demo`: the whole flow on the embedded local stack, from a fresh checkout.

Brings the broker up, creates two demo models, runs a worker with two routes, produces a
handful of Chinese news headlines and reviews, prints the labelled events as a table (twice:
the second round comes from the cache), then brings everything down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

from admin.localstack import LocalBroker, StackError
from bus.producing import produce_many
from bus.reading import read_until_quiet
from bus.settings import KafkaSettings
from bus.topics import create_topics
from modelstore.labels import PRESET_LABELS
from modelstore.presets import init_model
from modelstore.store import ModelStore

console = Console()
HEADLINES = [
    "北京上个月召开了两会",
    "国足世预赛客场两球不敌对手",
    "央行宣布下调存款准备金率0.5个百分点",
    "香港特区政府公布新一年施政报告",
    "新电影上映三天票房突破十亿元",
    "联合国大会通过关于气候变化的决议",
]
REVIEWS = [
    "这家酒店的服务非常好，房间干净，下次还会再来。",
    "质量太差了，用了两天就坏了，不推荐购买。",
    "物流很快，包装完好，宝贝和描述的一样。",
    "味道一般，价格偏贵，服务员态度也不好。",
]


def _redis_url() -> str | None:
    url = os.environ.get("STREAMCLF_REDIS_URL", "redis://127.0.0.1:6379/0")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
        return url
    except redis.RedisError:
        console.print(
            f"[yellow]Redis at {url} does not answer: the worker uses its in-process cache"
        )
        return None


async def _produce(settings: KafkaSettings, topic: str, texts: list[str], round_: int) -> None:
    events = [{"id": f"{topic}-{round_}-{i}", "text": text} for i, text in enumerate(texts)]
    records = [(e["id"].encode(), json.dumps(e, ensure_ascii=False).encode()) for e in events]
    await produce_many(settings, topic, records)


async def _collect(
    settings: KafkaSettings, topics: list[str], n: int, timeout_s: float
) -> list[dict]:
    records = await read_until_quiet(
        settings, topics, quiet_s=0, expected=n, timeout_s=timeout_s, wait_for_topics_s=timeout_s
    )
    return [json.loads(r.value or b"null") for r in records]


def _table(title: str, texts: dict[str, str], events: list[dict]) -> Table:
    table = Table("route", "text", "label", "score", "version", "cached", "batch", title=title)
    for e in sorted(events, key=lambda e: e["id"]):
        table.add_row(
            e["source_topic"].split(".")[1],
            texts.get(e["id"], "?"),
            e["label"].split(" (")[0],
            f"{e['score']:.3f}",
            e["version"],
            "yes" if e["cached"] else "no",
            str((e.get("timings") or {}).get("batch_size", "")),
        )
    return table


def main() -> int:
    state = Path(os.environ.get("STREAMCLF_STATE_DIR", ".streamclf"))
    port = int(os.environ.get("STREAMCLF_DEMO_PORT", "19092"))
    broker = LocalBroker(state, port=port)
    started_here = not broker.state().running
    try:
        broker.start()
    except StackError as exc:
        console.print(f"[red]cannot start the broker: {exc}")
        return 3
    console.print(f"[green]broker[/] on {broker.address}")
    settings = KafkaSettings(bootstrap_servers=broker.address)
    store = ModelStore(state / "demo-models")
    for name, labels in (("news", "chinanews"), ("reviews", "jd-binary")):
        if not store.versions(name):
            version = init_model(store, name, PRESET_LABELS[labels], "tiny", seed=7)
            console.print(
                f"created demo model {name}@{version} (tiny preset, random weights: "
                "its labels are arbitrary until you train or import real weights)"
            )
    run_id = uuid.uuid4().hex[:6]
    news, reviews = f"demo.news.{run_id}", f"demo.reviews.{run_id}"
    asyncio.run(create_topics(settings, [news, reviews], partitions=2))
    env = {
        **os.environ,
        "STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.address,
        "STREAMCLF_MODEL_STORE": str(store.root),
        "STREAMCLF_GROUP_ID": f"demo-{run_id}",
        "STREAMCLF_CACHE_PREFIX": f"demo-{run_id}",
        "STREAMCLF_LOG_LEVEL": "WARNING",
    }
    redis_url = _redis_url()
    if redis_url:
        env["STREAMCLF_REDIS_URL"] = redis_url
    cmd = [
        sys.executable,
        "-m",
        "admin.cli",
        "worker",
        "--route",
        f"{news}=news",
        "--route",
        f"{reviews}=reviews",
    ]
    console.print("starting worker: " + " ".join(cmd[2:]))
    worker = subprocess.Popen(cmd, env=env)
    texts = {f"{news}-{r}-{i}": t for r in (1, 2) for i, t in enumerate(HEADLINES)}
    texts |= {f"{reviews}-{r}-{i}": t for r in (1, 2) for i, t in enumerate(REVIEWS)}
    outputs = [f"{news}.labelled", f"{reviews}.labelled"]
    code = 0
    try:
        total = len(HEADLINES) + len(REVIEWS)
        for round_ in (1, 2):
            asyncio.run(_produce(settings, news, HEADLINES, round_))
            asyncio.run(_produce(settings, reviews, REVIEWS, round_))
            events = asyncio.run(_collect(settings, outputs, total * round_, 90))
            mine = [e for e in events if e["id"].split("-")[-2] == str(round_)]
            title = "round 1: classified" if round_ == 1 else "round 2: same texts again"
            console.print(_table(title, texts, mine))
            if len(mine) < total:
                console.print(f"[red]only {len(mine)} of {total} events came back")
                code = 1
                break
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        if started_here:
            broker.stop()
            console.print("broker stopped")
    return code or worker.returncode


if __name__ == "__main__":
    sys.exit(main())
