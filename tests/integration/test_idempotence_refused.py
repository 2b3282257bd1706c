"""A broker that refuses idempotent producers (it answers InitProducerId with an error): every
command that writes ends in one line naming the setting that fixes it, not a traceback.

The embedded broker (tansu 0.6, memory storage) really refuses InitProducerId; its clients
only produce because they turn idempotence off for it. Asking for idempotence explicitly,
as a client of a broker started from another state directory does, meets the refusal.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bus.settings import KafkaSettings
from tests.cli import one_line_error, streamclf
from tests.integration.harness import make_topics

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("STREAMCLF_TEST_BOOTSTRAP")),
        reason="an external broker (Kafka) gives idempotent producers their id",
    ),
]
IDEMPOTENT = {"STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE": "true"}


def _refused(args: list[str], **env: str) -> str:
    proc = streamclf(*args, **IDEMPOTENT, **env)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    line = one_line_error(proc)
    assert "refused an idempotent producer" in line, line
    assert "STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE=false" in line, line
    return line


async def test_produce_and_swap(
    broker: KafkaSettings, tiny_store: Path, tmp_path: Path, uid: str
) -> None:
    topic = f"idem.{uid}"
    await make_topics(broker, [topic], 1)
    texts = tmp_path / "texts.txt"
    texts.write_text("北京上个月召开了两会\n", encoding="utf-8")
    _refused(["produce", topic, "-f", str(texts), "-b", broker.bootstrap_servers])
    control = f"control.{uid}"
    _refused(
        ["models", "swap", "news", "v1", "--store", str(tiny_store), "-b", broker.bootstrap_servers,
         "--control-topic", control]
    )  # fmt: skip


async def test_worker(broker: KafkaSettings, tiny_store: Path, uid: str) -> None:
    topic = f"idem.{uid}"
    await make_topics(broker, [topic], 1)
    _refused(
        ["worker", "-b", broker.bootstrap_servers, "--store", str(tiny_store),
         "--route", f"{topic}=news", "--group", f"g-{uid}"],
        STREAMCLF_CONTROL_TOPIC=f"control.{uid}", STREAMCLF_STATUS_TOPIC=f"status.{uid}",
    )  # fmt: skip


def test_trainer_serve(broker: KafkaSettings, tmp_path: Path, uid: str) -> None:
    _refused(
        ["trainer", "serve", "-b", broker.bootstrap_servers, "--store", str(tmp_path)],
        STREAMCLF_TRAINER_JOBS_TOPIC=f"jobs.{uid}",
        STREAMCLF_TRAINER_RESULTS_TOPIC=f"results.{uid}",
        STREAMCLF_TRAINER_FEEDBACK_TOPIC=f"feedback.{uid}",
        STREAMCLF_TRAINER_GROUP_ID=f"g-{uid}",
    )
