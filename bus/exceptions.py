"""Errors of the Kafka layer, translated once from the client library's."""


class BusError(Exception):
    """Base class: the broker could not be reached or refused a request."""


class TopicError(BusError):
    """A topic could not be created or described."""
