"""Errors of the Kafka layer, translated once from the client library's."""

from __future__ import annotations


class BusError(Exception):
    """Base class: the broker could not be reached or refused a request."""


class TopicError(BusError):
    """A topic could not be created or described."""


class BrokerUnavailable(BusError):
    """No broker answers at the bootstrap address."""

    @classmethod
    def at(cls, bootstrap: str, cause: object = None) -> BrokerUnavailable:
        del cause  # the client's own words ("Unable to bootstrap from [...]") add nothing
        return cls(
            f"no Kafka broker answers at {bootstrap}: start one with `streamclf stack up`, or point --bootstrap /"
            " STREAMCLF_KAFKA_BOOTSTRAP_SERVERS at a running broker"
        )


class IdempotenceRefused(BusError):
    """The broker refused an idempotent producer (it answered InitProducerId with an error)."""

    @classmethod
    def at(cls, bootstrap: str, cause: object) -> IdempotenceRefused:
        return cls(
            f"the broker at {bootstrap} refused an idempotent producer (InitProducerId: "
            f"{type(cause).__name__}); if it cannot do idempotence, set "
            "STREAMCLF_KAFKA_ENABLE_IDEMPOTENCE=false"
        )


class TopicMissing(TopicError):
    """A topic that must exist does not."""

    def __init__(self, message: str, topics: list[str]) -> None:
        super().__init__(message)
        self.topics = topics

    @classmethod
    def on(cls, topics: list[str], bootstrap: str) -> TopicMissing:
        names = " ".join(topics)
        return cls(
            f"topic {', '.join(topics)} does not exist on {bootstrap}: "
            f"create it with `streamclf topics create {names}`",
            topics,
        )
