"""Topics are created honestly (each topic's own outcome) and with a fitting replication."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from admin.cli import app
from bus.control import ensure_control_topics
from bus.creating import default_replication
from bus.exceptions import TopicError
from bus.topics import list_topics

pytestmark = pytest.mark.integration


def test_topics_create_reports_each_topics_outcome(broker, uid: str) -> None:
    env = {"STREAMCLF_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers}

    def create(*args: str) -> tuple[int, dict[str, dict]]:
        result = CliRunner().invoke(app, ["topics", "create", *args, "--json"], env=env)
        rows = json.loads(result.stdout) if result.stdout.strip() else []
        return result.exit_code, {r["topic"]: r for r in rows}

    good, bad, long = f"good-{uid}", f"bad name {uid}!", f"long-{uid}-" + "x" * 250
    code, rows = create(good, bad, long, "-p", "2")
    assert code == 1, rows
    assert rows[good]["state"] == "created"
    assert rows[bad]["state"] == "failed" and "illegal name" in rows[bad]["error"]
    assert rows[long]["state"] == "failed"
    assert create(good) == (0, {good: {"topic": good, "state": "exists", "error": None}})

    # The local broker is one broker: three replicas cannot be placed.
    code, rows = create(f"rf3-{uid}", "--replication-factor", "3")
    assert code == 1 and "larger than the 1 available brokers" in rows[f"rf3-{uid}"]["error"]
    assert create(f"rf1-{uid}", "--replication-factor", "1")[0] == 0
    topics = asyncio.run(list_topics(broker))
    assert good in topics and f"rf1-{uid}" in topics
    assert not {bad, long, f"rf3-{uid}"} & set(topics), "a refused topic exists anyway"


async def test_control_and_status_topics_use_the_replication_setting(broker, uid: str) -> None:
    assert [default_replication(n) for n in (1, 2, 3, 7)] == [1, 2, 3, 3]
    three = broker.model_copy(update={"replication_factor": 3})
    with pytest.raises(TopicError, match="replication factor 3 is larger than the 1"):
        await ensure_control_topics(three, f"control-{uid}", f"status-{uid}")
    await ensure_control_topics(broker, f"control-{uid}", f"status-{uid}")  # min(3, 1) = 1
    assert {f"control-{uid}", f"status-{uid}"} <= set(await list_topics(broker))
