"""A thin layer over aiokafka: settings, clients, topics and lag. The only module that knows Kafka."""

from bus.exceptions import BusError, TopicError
from bus.settings import KafkaSettings

__all__ = ["BusError", "KafkaSettings", "TopicError"]
