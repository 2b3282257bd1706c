"""Hot swap from the operator's side: check a version, publish the command, wait for workers.

`request_swap` refuses unknown versions and bad weights *before* anything is published, then
uses `trainer.promote.request_swap` to publish a `SwapModel` (signed when a key is given) and
move the store's active pointer. `wait_for_swap` follows the workers' heartbeats until every live worker serving the
model reports the version, or one reports that it failed to load it.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import socket
import time
from dataclasses import dataclass, field

from admin.heartbeats import from_future, max_skew_s, read_workers
from bus.control import CONTROL_TOPIC, STATUS_TOPIC, iter_status
from bus.settings import KafkaSettings
from modelstore.exceptions import ModelStoreError
from modelstore.store import ModelStore
from schemas.control import SwapModel
from schemas.status import WorkerStatus


class SwapRefused(Exception):
    """The swap was not published; `unknown` is True when the version does not exist."""

    def __init__(self, message: str, unknown: bool = False) -> None:
        super().__init__(message)
        self.unknown = unknown


def default_requester() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def check_version(store: ModelStore, model: str, version: str) -> str:
    """The weights' sha256 once the version exists and its weights load; else `SwapRefused`."""
    try:
        known = store.versions(model)
    except ValueError as exc:  # invalid model name
        raise SwapRefused(str(exc), unknown=True) from exc
    try:
        exists = bool(known) and store.exists(model, version)
    except ValueError as exc:  # invalid version name
        raise SwapRefused(str(exc), unknown=True) from exc
    if not known:
        raise SwapRefused(f"model {model!r} has no versions in store {store.root}", unknown=True)
    if not exists:
        raise SwapRefused(
            f"model {model!r} has no version {version!r} (known: {', '.join(known)})",
            unknown=True,
        )
    from modelstore.integrity import verify_version
    from modelstore.loading import load_classifier

    try:
        path = store.version_dir(model, version)
        verified = verify_version(path)  # every file against the card
        load_classifier(path, verified=verified)
        sha256 = verified.weights_sha256
    except ModelStoreError as exc:
        raise SwapRefused(str(exc)) from exc
    except Exception as exc:  # tokenizer files or config that do not load
        raise SwapRefused(f"{model}@{version}: cannot load: {type(exc).__name__}: {exc}") from exc
    return sha256


async def request_swap(
    kafka: KafkaSettings,
    store: ModelStore,
    model: str,
    version: str,
    requested_by: str | None = None,
    key: str | None = None,
    topic: str = CONTROL_TOPIC,
) -> SwapModel:
    """Check `model@version` (exists, weights load), then hand over to the trainer's swap request.

    A store written before active pointers existed, with a single version, serves that one; it
    is recorded as active first, so that the command names it as `previous` and a rollback has
    somewhere to go.
    """
    from trainer.promote import request_swap as publish_swap

    check_version(store, model, version)
    if store.active(model) is None:
        with contextlib.suppress(ModelStoreError):  # several versions, none active: no previous
            store.set_active(model, store.default_version(model))
    return await publish_swap(
        kafka, store, model, version, requested_by or default_requester(), key, topic
    )


def rollback_target(store: ModelStore, model: str) -> str:
    """The version that was active before the current one (`SwapRefused` when none)."""
    history = store.history(model)
    current = store.active(model)
    for version in reversed(history):
        if version != current and store.exists(model, version):
            return version
    raise SwapRefused(f"model {model!r} has no previously active version to roll back to")


# -- waiting for the workers ---------------------------------------------------------------


@dataclass
class WorkerOutcome:
    worker_id: str
    state: str  # ok | failed | pending | stale
    version: str | None = None  # the version it reports for the model
    error: str | None = None
    duration_s: float | None = None
    age_s: float = 0.0


@dataclass
class SwapOutcome:
    model: str
    version: str
    state: str  # ok | failed | timeout | no-workers
    workers: list[WorkerOutcome] = field(default_factory=list)
    waited_s: float = 0.0

    @property
    def failed(self) -> list[WorkerOutcome]:
        return [w for w in self.workers if w.state == "failed"]

    @property
    def pending(self) -> list[WorkerOutcome]:
        return [w for w in self.workers if w.state == "pending"]

    def reason(self) -> str:
        if self.state == "ok":
            return f"{len(self.workers)} live workers serve {self.model}@{self.version}"
        if self.state == "failed":
            return "; ".join(f"{w.worker_id}: {w.error}" for w in self.failed)
        if self.state == "no-workers":
            return (
                f"no live worker serves {self.model}; workers started later load "
                f"{self.version} from the control topic"
            )
        names = ", ".join(f"{w.worker_id} (on {w.version})" for w in self.pending)
        return f"timed out after {self.waited_s:.0f}s; still waiting for {names}"


def serves(status: WorkerStatus, model: str) -> bool:
    return model in status.routes.values() or model in status.versions


def judge(
    status: WorkerStatus, model: str, version: str, since_ms: int, now_ms: int, stale_s: float
) -> WorkerOutcome:
    """Where one worker stands on the swap of `model` to `version` requested at `since_ms`."""
    age_s = max(0.0, (now_ms - status.at_ms) / 1000)
    current = status.versions.get(model)
    results = [
        r for r in status.swaps if r.model == model and r.version == version and r.at_ms >= since_ms
    ]
    out = WorkerOutcome(status.worker_id, "pending", current, age_s=age_s)
    if results:
        out.duration_s = results[-1].duration_s
    if current == version:
        out.state = "ok"
    elif results and not results[-1].ok:
        out.state, out.error = "failed", results[-1].error or "swap failed"
    if age_s > stale_s and out.state == "pending":
        out.state = "stale"
    return out


def evaluate(
    latest: dict[str, WorkerStatus],
    model: str,
    version: str,
    since_ms: int,
    stale_s: float,
    now_ms: int | None = None,
) -> SwapOutcome:
    """The swap's state from the latest heartbeat of each worker (stale ones are left out)."""
    now_ms = now_ms if now_ms is not None else int(time.time() * 1000)
    workers = [
        judge(s, model, version, since_ms, now_ms, stale_s)
        for s in sorted(latest.values(), key=lambda s: s.worker_id)
        if serves(s, model)
    ]
    live = [w for w in workers if w.state != "stale"]
    if not live:
        state = "no-workers"
    elif any(w.state == "pending" for w in live):
        state = "pending"
    elif any(w.state == "failed" for w in live):
        state = "failed"
    else:
        state = "ok"
    return SwapOutcome(model, version, state, live)


async def wait_for_swap(
    kafka: KafkaSettings,
    model: str,
    version: str,
    since_ms: int,
    timeout_s: float,
    stale_s: float,
    status_topic: str = STATUS_TOPIC,
) -> SwapOutcome:
    """Follow heartbeats until every live worker of `model` is on `version` or has failed.

    Heartbeats are read from `stale_s` before the request, so workers that were alive then
    are known; the state is judged only once the reader has caught up with the present.
    """
    started = time.monotonic()
    wait_from_ms = int(time.time() * 1000)
    latest: dict[str, WorkerStatus] = {}
    outcome = SwapOutcome(model, version, "pending")
    caught_up = False
    skew_s = max_skew_s()

    def done() -> bool:
        return outcome.state in ("ok", "failed") or (caught_up and outcome.state == "no-workers")

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            stream = iter_status(
                kafka, since_ms - int(stale_s * 1000), status_topic, timeout_s=stale_s
            )
            async with contextlib.aclosing(stream) as statuses:
                async for status in statuses:
                    if from_future(status, int(time.time() * 1000), skew_s):
                        continue  # never taken as fresh (admin/heartbeats.py)
                    latest[status.worker_id] = status
                    caught_up = caught_up or status.at_ms >= wait_from_ms
                    if caught_up:
                        outcome = evaluate(latest, model, version, since_ms, stale_s)
                        if done():
                            break
    outcome = evaluate(latest, model, version, since_ms, stale_s)
    if outcome.state == "pending":
        outcome.state = "timeout"
    outcome.waited_s = time.monotonic() - started
    return outcome


async def live_workers(
    kafka: KafkaSettings, stale_s: float, lookback_s: float, status_topic: str = STATUS_TOPIC
) -> tuple[list[WorkerStatus], list[WorkerStatus]]:
    """(live, stale) workers by their latest credible heartbeat within `lookback_s`."""
    workers = await read_workers(kafka, stale_s, lookback_s, status_topic)
    return workers.live, workers.stale
