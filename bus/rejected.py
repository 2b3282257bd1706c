"""Records a reader skips because they are not a valid message of their topic kind.

Each one is counted in `streamclf_rejected_records_total{topic_kind,reason}` and logged with
its `topic[partition]@offset`, once per process however often it is read again (CLI waits
re-read the status topic). The one counter of this name in any process: the worker's and the
trainer's metrics re-export it.
"""

from __future__ import annotations

import logging
from typing import Literal

from prometheus_client import Counter

from bus.fetching import Unreadable
from schemas.records import Reason, Rejection

TopicKind = Literal["control", "job", "feedback", "status", "shadow", "review", "other"]
REJECTED_RECORDS = Counter(
    "streamclf_rejected_records_total",
    "Records of the control, jobs, feedback, status, shadow and review topics (and of any topic "
    "a CLI reads: other) that were skipped",
    ["topic_kind", "reason"],
)
_SEEN_MAX = 10_000
_seen: set[tuple[str, str]] = set()


def skip(
    log: logging.Logger,
    kind: TopicKind,
    where: str,
    rejection: Rejection,
    level: int = logging.WARNING,
) -> bool:
    """Count and log a skipped record; False (and nothing done) when it was already noted."""
    if (kind, where) in _seen:
        return False
    if len(_seen) >= _SEEN_MAX:
        _seen.clear()
    _seen.add((kind, where))
    REJECTED_RECORDS.labels(kind, rejection.reason.value).inc()
    log.log(
        level, "%s: %s record skipped (%s): %s", where, kind, rejection.reason, rejection.message
    )
    return True


def skip_unreadable(log: logging.Logger, kind: TopicKind, bad: Unreadable) -> bool:
    """`skip` for an offset the client could not parse (`bus.fetching`): reason `header`."""
    return skip(log, kind, bad.where, Rejection(Reason.HEADER, bad.reason))
