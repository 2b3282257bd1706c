"""Which heartbeat speaks for each worker, with heartbeats from the future set aside.

Anyone who can write the status topic can publish a heartbeat under a real worker's id. One
stamped far ahead (`at_ms` ten years from now) would otherwise be the worker's latest forever
and show a dead worker fresh. A heartbeat more than `max_skew_s` ahead of this machine's clock
is therefore never taken as the worker's state: it is kept apart (shown as `clock-skew`), and
the worker is judged by its latest credible heartbeat, which goes stale as usual.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from bus.control import STATUS_TOPIC, iter_status
from bus.settings import KafkaSettings
from schemas.status import WorkerStatus

MAX_SKEW_ENV = "STREAMCLF_STATUS_MAX_SKEW_S"
DEFAULT_MAX_SKEW_S = 30.0


def max_skew_s() -> float:
    """How far ahead of this clock a heartbeat may be stamped (`STREAMCLF_STATUS_MAX_SKEW_S`,
    default 30 s; an unreadable or negative value means the default)."""
    try:
        value = float(os.environ.get(MAX_SKEW_ENV, DEFAULT_MAX_SKEW_S))
    except ValueError:
        return DEFAULT_MAX_SKEW_S
    return value if 0 <= value < float("inf") else DEFAULT_MAX_SKEW_S


def from_future(status: WorkerStatus, now_ms: int, skew_s: float) -> bool:
    return status.at_ms > now_ms + skew_s * 1000


@dataclass
class Heartbeats:
    """Per worker id: the latest credible heartbeat, and the latest one from the future."""

    latest: dict[str, WorkerStatus] = field(default_factory=dict)
    future: dict[str, WorkerStatus] = field(default_factory=dict)

    def add(self, status: WorkerStatus, now_ms: int, skew_s: float) -> None:
        kept = self.future if from_future(status, now_ms, skew_s) else self.latest
        prev = kept.get(status.worker_id)
        if prev is None or status.at_ms >= prev.at_ms:
            kept[status.worker_id] = status


def fold(statuses: Iterable[WorkerStatus], now_ms: int, skew_s: float) -> Heartbeats:
    heard = Heartbeats()
    for status in statuses:
        heard.add(status, now_ms, skew_s)
    return heard


@dataclass
class Workers:
    """Workers by their latest credible heartbeat, plus the heartbeats from the future."""

    live: list[WorkerStatus]
    stale: list[WorkerStatus]
    future: list[WorkerStatus]
    now_ms: int


def split(heard: Heartbeats, now_ms: int, stale_s: float) -> Workers:
    ordered = sorted(heard.latest.values(), key=lambda s: s.worker_id)
    return Workers(
        live=[s for s in ordered if now_ms - s.at_ms <= stale_s * 1000],
        stale=[s for s in ordered if now_ms - s.at_ms > stale_s * 1000],
        future=sorted(heard.future.values(), key=lambda s: s.worker_id),
        now_ms=now_ms,
    )


async def read_workers(
    kafka: KafkaSettings,
    stale_s: float,
    lookback_s: float,
    topic: str = STATUS_TOPIC,
    skew_s: float | None = None,
) -> Workers:
    """The workers heard from within `lookback_s`, live or stale, and any future heartbeats."""
    skew_s = max_skew_s() if skew_s is None else skew_s
    since_ms = int(time.time() * 1000) - int(lookback_s * 1000)
    heard = Heartbeats()
    async for status in iter_status(kafka, since_ms, topic, follow=False):
        heard.add(status, int(time.time() * 1000), skew_s)
    return split(heard, int(time.time() * 1000), stale_s)
