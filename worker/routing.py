"""Routes: which model classifies an input topic, and where its outputs and dead letters go."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelstore.names import validate_name

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,249}$")


class RouteError(ValueError):
    pass


@dataclass(frozen=True)
class Route:
    in_topic: str
    model: str
    out_topic: str
    dlq_topic: str


def _topic(name: str, spec: str) -> str:
    if not _TOPIC.match(name):
        raise RouteError(f"route {spec!r}: {name!r} is not a valid topic name")
    return name


def parse_route(spec: str, labelled_suffix: str = ".labelled", dlq_suffix: str = ".dlq") -> Route:
    """Parse `IN_TOPIC=MODEL[:OUT_TOPIC]`."""
    if "=" not in spec:
        raise RouteError(f"route {spec!r}: expected IN_TOPIC=MODEL[:OUT_TOPIC]")
    in_topic, rest = (part.strip() for part in spec.split("=", 1))
    model, _, out_topic = rest.partition(":")
    try:
        validate_name(model.strip(), "model name")
    except ValueError as exc:
        raise RouteError(f"route {spec!r}: {exc}") from exc
    _topic(in_topic, spec)
    out = _topic(out_topic.strip(), spec) if out_topic.strip() else in_topic + labelled_suffix
    if out == in_topic:
        raise RouteError(f"route {spec!r}: output topic must differ from the input topic")
    return Route(in_topic, model.strip(), out, in_topic + dlq_suffix)


class Router:
    """Topic -> Route lookup for the worker's subscribed topics."""

    def __init__(self, routes: list[Route]) -> None:
        self._by_topic: dict[str, Route] = {}
        for route in routes:
            if route.in_topic in self._by_topic:
                raise RouteError(f"topic {route.in_topic!r} is routed twice")
            self._by_topic[route.in_topic] = route

    def __getitem__(self, topic: str) -> Route:
        return self._by_topic[topic]

    @property
    def topics(self) -> list[str]:
        return list(self._by_topic)

    @property
    def models(self) -> list[str]:
        return sorted({r.model for r in self._by_topic.values()})

    @property
    def routes(self) -> list[Route]:
        return list(self._by_topic.values())
