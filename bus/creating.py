"""Creating topics honestly: each topic's own outcome, and a replication factor that fits.

The broker's answer is read per topic (created, already there, or refused and why) instead
of assuming success. Names Kafka would refuse, and a replication factor above the number of
brokers, are refused here with the same words, because some Kafka-protocol brokers accept
them silently. The replication factor is `--replication-factor`, else
`STREAMCLF_KAFKA_REPLICATION_FACTOR`, else min(3, brokers); with 3 or more replicas a topic
also gets `min.insync.replicas=2`, so an acknowledged write survives the loss of a broker.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from bus.exceptions import TopicError
from bus.settings import KafkaSettings

_LEGAL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


@dataclass(frozen=True)
class TopicOutcome:
    name: str
    state: Literal["created", "exists", "failed"]
    error: str | None = None


def default_replication(brokers: int) -> int:
    return max(1, min(3, brokers))


def legal_topic_name(name: str) -> bool:
    """1-249 of letters, digits, '.', '_' and '-', and not '.' or '..' (Kafka's rule)."""
    return bool(_LEGAL_NAME.match(name)) and name not in (".", "..")


def _refusal(name: str, replication: int, brokers: int) -> str | None:
    if not legal_topic_name(name):
        return "illegal name: use 1-249 of letters, digits, '.', '_' and '-'"
    if replication > brokers:
        return f"replication factor {replication} is larger than the {brokers} available brokers"
    return None


async def create_topics_report(
    settings: KafkaSettings,
    names: list[str],
    partitions: int = 1,
    configs: dict[str, str] | None = None,
    replication: int | None = None,
) -> list[TopicOutcome]:
    """Create the topics that do not exist yet; one outcome per name, in order."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    try:
        await admin.start()
        brokers = len((await admin.describe_cluster())["brokers"])
        rf = replication or settings.replication_factor or default_replication(brokers)
        existing = set(await admin.list_topics())
        outcomes: dict[str, TopicOutcome] = {}
        wanted: list[str] = []
        for name in dict.fromkeys(names):
            why = None if name in existing else _refusal(name, rf, brokers)
            if name in existing:
                outcomes[name] = TopicOutcome(name, "exists")
            elif why:
                outcomes[name] = TopicOutcome(name, "failed", why)
            else:
                wanted.append(name)
        if wanted:
            topic_configs = dict(configs or {})
            if rf >= 3:
                topic_configs.setdefault("min.insync.replicas", "2")
            new = [NewTopic(n, partitions, rf, topic_configs=topic_configs) for n in wanted]
            response = await admin.create_topics(new)
            for name, code, *message in response.topic_errors:
                outcomes[name] = _outcome(name, code, message[0] if message else None)
        return [outcomes[name] for name in dict.fromkeys(names)]
    except KafkaError as exc:
        raise TopicError(
            f"cannot create topics {names} on {settings.bootstrap_servers}: {exc}"
        ) from exc
    finally:
        await admin.close()


def _outcome(name: str, code: int, message: str | None) -> TopicOutcome:
    if code == 0:
        return TopicOutcome(name, "created")
    if code == TopicAlreadyExistsError.errno:  # created by someone else meanwhile
        return TopicOutcome(name, "exists")
    error = for_code(code).__name__ + (f": {message}" if message else "")
    return TopicOutcome(name, "failed", error)


async def create_topics(
    settings: KafkaSettings,
    names: list[str],
    partitions: int = 1,
    configs: dict[str, str] | None = None,
    replication: int | None = None,
) -> list[str]:
    """Create the topics that do not exist yet; return those created; TopicError naming every
    topic the broker (or the checks above) refused."""
    outcomes = await create_topics_report(settings, names, partitions, configs, replication)
    failed = [o for o in outcomes if o.state == "failed"]
    if failed:
        raise TopicError(
            "cannot create " + "; ".join(f"topic {o.name!r}: {o.error}" for o in failed)
        )
    return [o.name for o in outcomes if o.state == "created"]
